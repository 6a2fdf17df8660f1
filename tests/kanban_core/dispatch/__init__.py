"""Tests of kanban_core.dispatch."""
