"""Places to work: scratch and dir workspaces, worktrees, git operations, interactive workspaces."""
