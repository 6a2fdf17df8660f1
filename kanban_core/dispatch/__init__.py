"""Dispatch: ready tasks to workers, the worker supervisor, spawning, health and the MCP door."""
