"""Git operations for workspaces: a hardened git runner, status and diffs, commit, push, PRs."""
