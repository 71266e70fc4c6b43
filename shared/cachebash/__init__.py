"""CacheBash: a coordination server that lets AI coding agents share tasks, messages and state."""

__version__ = "0.1.0"
