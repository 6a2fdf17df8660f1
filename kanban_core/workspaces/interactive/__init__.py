"""Workspaces: records, worktree sets, sessions, approvals and the service that ties them."""
