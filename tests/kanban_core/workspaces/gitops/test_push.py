"""plan_push and push against real bare remotes: refusals, rejections, explicit leases."""

from __future__ import annotations

from pathlib import Path

import pytest

from kanban_core.workspaces.gitops.push import (
    PushPlan,
    PushRefused,
    PushRejected,
    classify_push_error,
    plan_push,
    push,
)
from kanban_core.workspaces.gitops.runner import GitOpError
from tests.gitrepos import commit, git, head, write
from tests.kanban_core.workspaces.gitops.conftest import BRANCH, Workspace


def remote_tip(bare: Path, branch: str = BRANCH) -> str:
    return git(bare, "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}", check=False)


def refused(wt: Path, branch: str = BRANCH, **kw: object) -> str:
    with pytest.raises(PushRefused) as err:
        plan_push(wt, branch=branch, **kw)  # type: ignore[arg-type]
    return err.value.kind


def race_ahead(workspace: Workspace, other: Path, name: str) -> str:
    """Another clone pushes a commit onto the workspace branch on the remote."""
    git(other, "fetch", "-q", "origin")
    git(other, "switch", "-q", "-C", BRANCH, f"origin/{BRANCH}")
    oid = commit(other, name, f"{name}\n")
    git(other, "push", "-q", "origin", BRANCH)
    return oid


def test_plan_lists_the_commits_to_push_newest_first(wt: Path) -> None:
    first = commit(wt, "a.txt", message="spirit(x): first")
    second = commit(wt, "b.txt", message="spirit(x): second \u202eevil")
    plan = plan_push(wt, branch=BRANCH)
    assert plan == PushPlan(
        remote="origin",
        branch=BRANCH,
        commits=((second[:7], "spirit(x): second evil"), (first[:7], "spirit(x): first")),
        count=2,
        remote_oid=None,
    )


def test_plan_checks_required_branches_with_the_same_remote_call(wt: Path) -> None:
    commit(wt, "a.txt")
    assert plan_push(wt, branch=BRANCH, require=["main"]).count == 1
    with pytest.raises(GitOpError, match="the base branch release does not exist on origin"):
        plan_push(wt, branch=BRANCH, require=["release"])


def test_a_missing_base_is_reported_before_nothing_to_push(wt: Path) -> None:
    with pytest.raises(GitOpError, match="base branch release does not exist"):
        plan_push(wt, branch=BRANCH, require=["release"])
    assert refused(wt, require=["main"]) == "nothing_to_push"


def test_plan_lists_at_most_twenty_but_counts_all(wt: Path) -> None:
    for i in range(23):
        commit(wt, f"f{i}.txt")
    plan = plan_push(wt, branch=BRANCH)
    assert (plan.count, len(plan.commits), plan.commits[0][1]) == (23, 20, "add f22.txt")


def test_push_reaches_the_bare_remote_and_sets_upstream(
    workspace: Workspace, locks_dir: Path
) -> None:
    oid = commit(workspace.path, "a.txt")
    pushed = push(workspace.path, plan_push(workspace.path, branch=BRANCH), locks_dir=locks_dir)
    assert pushed == oid == remote_tip(workspace.remote)
    upstream = git(workspace.path, "rev-parse", "--abbrev-ref", f"{BRANCH}@{{upstream}}")
    assert upstream == f"origin/{BRANCH}"
    assert refused(workspace.path) == "nothing_to_push"
    newer = commit(workspace.path, "b.txt")
    plan = plan_push(workspace.path, branch=BRANCH)
    assert (plan.count, plan.remote_oid, plan.commits[0][0]) == (1, oid, newer[:7])


def test_nothing_to_push_on_a_fresh_branch(wt: Path) -> None:
    assert refused(wt) == "nothing_to_push"


def test_the_base_checked_out_in_the_worktree_is_protected(workspace: Workspace) -> None:
    git(workspace.repo, "switch", "-q", "--detach")
    git(workspace.path, "switch", "-q", "main")
    commit(workspace.path, "a.txt")
    assert refused(workspace.path) == "protected"
    assert refused(workspace.path, branch="main") == "protected"


@pytest.mark.parametrize("name", ["release/1.0", "develop", "master"])
def test_protected_patterns(wt: Path, name: str) -> None:
    git(wt, "switch", "-q", "-c", name)
    commit(wt, "a.txt")
    assert refused(wt, branch=name) == "protected"


def test_custom_protection_patterns(wt: Path) -> None:
    commit(wt, "a.txt")
    assert refused(wt, protected=["kanban/*"]) == "protected"
    assert plan_push(wt, branch=BRANCH, protected=()).count == 1


def test_wrong_branch_and_detached_are_refused(wt: Path) -> None:
    commit(wt, "a.txt")
    git(wt, "switch", "-q", "-c", "side")
    assert refused(wt) == "wrong_branch"
    git(wt, "switch", "-q", "--detach")
    assert refused(wt) == "detached"


def test_a_rebase_in_progress_is_refused(workspace: Workspace) -> None:
    commit(workspace.path, "c.txt", "ours\n")
    commit(workspace.repo, "c.txt", "theirs\n")
    git(workspace.path, "rebase", "main", check=False)
    assert refused(workspace.path) == "in_progress"


def test_no_remote_is_refused(repo: Path, tmp_path: Path) -> None:
    path = tmp_path / "lonely"
    git(repo, "worktree", "add", "-q", "-b", BRANCH, str(path))
    commit(path, "a.txt")
    assert refused(path) == "no_remote"


def test_remote_push_default_wins(workspace: Workspace, tmp_path: Path, locks_dir: Path) -> None:
    backup = tmp_path / "backup.git"
    git(tmp_path, "init", "-q", "--bare", str(backup))
    git(workspace.repo, "remote", "add", "backup", str(backup))
    git(workspace.repo, "config", "remote.pushDefault", "backup")
    commit(workspace.path, "a.txt")
    plan = plan_push(workspace.path, branch=BRANCH)
    assert (plan.remote, plan.count) == ("backup", 2)  # backup has nothing, not even main
    push(workspace.path, plan, locks_dir=locks_dir)
    assert remote_tip(backup) == head(workspace.path)
    assert remote_tip(workspace.remote) == ""


def test_non_fast_forward_then_an_explicit_lease(
    workspace: Workspace, other_clone: Path, locks_dir: Path
) -> None:
    wt = workspace.path
    commit(wt, "a.txt")
    push(wt, plan_push(wt, branch=BRANCH), locks_dir=locks_dir)
    theirs = race_ahead(workspace, other_clone, "theirs.txt")
    ours = commit(wt, "ours.txt")
    plan = plan_push(wt, branch=BRANCH)
    assert plan.remote_oid == theirs  # learned from ls-remote, never fetched
    with pytest.raises(PushRejected) as err:
        push(wt, plan, locks_dir=locks_dir)
    assert err.value.kind == "non_fast_forward"
    assert "remote has new commits; /push --force-with-lease asks for an approval" in str(err.value)
    assert remote_tip(workspace.remote) == theirs
    assert push(wt, plan, locks_dir=locks_dir, force_with_lease=True) == ours
    assert remote_tip(workspace.remote) == ours


def test_a_lease_fails_safely_when_the_remote_moved_again(
    workspace: Workspace, other_clone: Path, locks_dir: Path
) -> None:
    wt = workspace.path
    commit(wt, "a.txt")
    push(wt, plan_push(wt, branch=BRANCH), locks_dir=locks_dir)
    race_ahead(workspace, other_clone, "first.txt")
    commit(wt, "ours.txt")
    plan = plan_push(wt, branch=BRANCH)
    again = race_ahead(workspace, other_clone, "second.txt")
    with pytest.raises(PushRejected) as err:
        push(wt, plan, locks_dir=locks_dir, force_with_lease=True)
    assert err.value.kind == "non_fast_forward"
    assert "moved again" in str(err.value)
    assert remote_tip(workspace.remote) == again


def test_a_lease_needs_a_known_remote_oid(wt: Path, locks_dir: Path) -> None:
    commit(wt, "a.txt")
    plan = plan_push(wt, branch=BRANCH)
    with pytest.raises(PushRefused) as err:
        push(wt, plan, locks_dir=locks_dir, force_with_lease=True)
    assert err.value.kind == "no_lease"


def test_push_rechecks_the_worktree_after_the_plan(workspace: Workspace, locks_dir: Path) -> None:
    commit(workspace.path, "a.txt")
    plan = plan_push(workspace.path, branch=BRANCH)
    git(workspace.path, "switch", "-q", "-c", "elsewhere")
    with pytest.raises(PushRefused) as err:
        push(workspace.path, plan, locks_dir=locks_dir)
    assert err.value.kind == "wrong_branch"
    assert remote_tip(workspace.remote) == ""


def test_a_remote_hook_protecting_the_branch_is_classified(
    workspace: Workspace, locks_dir: Path
) -> None:
    hook = write(
        workspace.remote / "hooks" / "pre-receive",
        "#!/bin/sh\necho 'GH006: Protected branch update failed for refs/heads/x.' >&2\nexit 1\n",
    )
    hook.chmod(0o755)
    commit(workspace.path, "a.txt")
    with pytest.raises(PushRejected) as err:
        push(workspace.path, plan_push(workspace.path, branch=BRANCH), locks_dir=locks_dir)
    assert err.value.kind == "protected"


def test_auth_failures_are_classified(
    workspace: Workspace, unauthorized_url: str, locks_dir: Path
) -> None:
    git(workspace.repo, "remote", "set-url", "origin", unauthorized_url)
    commit(workspace.path, "a.txt")
    with pytest.raises(GitOpError, match="cannot reach remote origin: the remote refused"):
        plan_push(workspace.path, branch=BRANCH)
    plan = PushPlan("origin", BRANCH, (), 1, None)
    with pytest.raises(PushRejected) as err:
        push(workspace.path, plan, locks_dir=locks_dir)
    assert err.value.kind == "auth"
    assert "configure credentials" in str(err.value)


@pytest.mark.parametrize(
    ("stderr", "kind"),
    [
        (
            " ! [rejected]        b -> b (fetch first)\nerror: failed to push some refs",
            "non_fast_forward",
        ),
        (" ! [rejected]        b -> b (non-fast-forward)", "non_fast_forward"),
        (" ! [rejected]        b -> b (stale info)", "non_fast_forward"),
        (
            " ! [remote rejected] b -> b (refusing to allow a Personal Access Token to create or "
            "update workflow `.github/workflows/ci.yml` without `workflow` scope)",
            "workflow_scope",
        ),
        ("remote: error: GH006: Protected branch update failed for refs/heads/main.", "protected"),
        ("fatal: Authentication failed for 'https://github.com/o/r.git/'", "auth"),
        ("git@github.com: Permission denied (publickey).", "auth"),
        (
            "fatal: could not read Username for 'https://github.com': terminal prompts disabled",
            "auth",
        ),
        ("error: RPC failed; curl 56 Recv failure", "other"),
    ],
)
def test_classify_push_error(stderr: str, kind: str) -> None:
    assert classify_push_error(stderr)[0] == kind
