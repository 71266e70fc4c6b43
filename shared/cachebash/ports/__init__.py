"""Small interfaces the services are written against; adapters implement them."""
