"""Tests of kanban_core.workspaces.places."""
