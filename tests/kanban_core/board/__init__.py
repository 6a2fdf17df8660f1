"""Tests of kanban_core.board."""
