"""Tests of kanban_core.storage."""
