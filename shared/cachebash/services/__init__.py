"""Use cases, written once over the ports and shared by both runtimes."""
