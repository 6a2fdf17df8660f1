"""Tests of kanban_core.workspaces.interactive: layout, branches, worktree sets, orphans."""
