"""Tests of kanban_core.workspace: layout, branches, worktree sets, orphans."""
