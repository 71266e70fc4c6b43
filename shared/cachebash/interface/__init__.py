"""The wire: MCP tools and HTTP routes, translating to and from the services."""
