"""Push a workspace branch: preflight to a plan, explicit refspecs, leases never bare force."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path

from kanban_core.workspaces.gitops.runner import (
    NETWORK_TIMEOUT_S,
    GitOpError,
    common_dir,
    first_error,
    repo_lock,
    run_git,
)
from kanban_core.workspaces.gitops.secrets import clean_display, scrub_urls
from kanban_core.workspaces.gitops.status import current_branch, in_progress

DEFAULT_PROTECTED = ("main", "master", "develop", "release/*")
PLAN_LISTED = 20

# (kind, lowercase stderr fragments, remedy); first match wins, so specific kinds come first.
_CLASSES: tuple[tuple[str, tuple[str, ...], str], ...] = (
    (
        "workflow_scope",
        ("without `workflow` scope", "without `workflows` permission", "refusing to allow"),
        "the token lacks the workflow scope needed to change .github/workflows",
    ),
    (
        "protected",
        ("protected branch", "gh006", "gh013", "protected ref"),
        "the remote protects this branch; push another branch and open a PR",
    ),
    (
        "non_fast_forward",
        ("stale info",),
        "the remote moved again since the lease was taken; run /push again to see its new state",
    ),
    (
        "non_fast_forward",
        ("non-fast-forward", "fetch first", "updates were rejected"),
        "remote has new commits; /push --force-with-lease asks for an approval",
    ),
    (
        "auth",
        (
            "authentication failed",
            "could not read username",
            "could not read password",
            "permission denied",
            "denied to",
            "terminal prompts disabled",
            "invalid username or password",
            "repository not found",
            "http 401",
            "http 403",
            "returned error: 403",
            "returned error: 401",
        ),
        "the remote refused our credentials; configure credentials for this remote",
    ),
)


@dataclass(frozen=True, slots=True)
class PushPlan:
    """What a push would do, for the confirmation card."""

    remote: str
    branch: str
    commits: tuple[tuple[str, str], ...]
    count: int
    remote_oid: str | None


class PushRefused(GitOpError):
    """The push was not attempted; ``kind`` says why."""

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


class PushRejected(GitOpError):
    """The remote or git refused the push; ``kind`` classifies it, the message has a remedy."""

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


def classify_push_error(stderr: str) -> tuple[str, str]:
    """(kind, remedy) for git's LC_ALL=C push or ls-remote stderr."""
    lowered = stderr.lower()
    for kind, needles, remedy in _CLASSES:
        if any(n in lowered for n in needles):
            return kind, remedy
    return "other", "see git's message"


def push_remote(worktree: Path) -> str | None:
    """``remote.pushDefault``, else the first configured remote, else None."""
    default = run_git(worktree, "config", "--get", "remote.pushDefault", check=False).text.strip()
    if default:
        return default
    remotes = run_git(worktree, "remote").text.split()
    return remotes[0] if remotes else None


def plan_push(
    worktree: Path,
    *,
    branch: str,
    protected: Sequence[str] = DEFAULT_PROTECTED,
    require: Sequence[str] = (),
) -> PushPlan:
    """Check the worktree may push ``branch`` and list what would go (asks the remote once).

    ``require`` names branches the remote must have (a pull request's base), checked by the
    same remote call.
    """
    _preflight(worktree, branch, protected)
    remote = push_remote(worktree)
    if remote is None:
        raise PushRefused("the repository has no remote to push to", "no_remote")
    heads = _remote_heads(worktree, remote, [branch, *require])
    for name in require:
        if name not in heads:
            raise GitOpError(f"the base branch {name} does not exist on {remote}")
    remote_oid = heads.get(branch)
    local = run_git(worktree, "rev-parse", "--verify", f"refs/heads/{branch}").text.strip()
    if remote_oid is not None and _have_commit(worktree, remote_oid):
        exclude = [f"^{remote_oid}"]
    else:
        # A new branch, or a remote tip we never fetched: count what no ref of that remote has.
        exclude = ["--not", f"--remotes={remote}"]
    count = int(run_git(worktree, "rev-list", "--count", local, *exclude).text.strip())
    if count == 0 or local == remote_oid:
        raise PushRefused(f"nothing to push: {remote} already has {branch}", "nothing_to_push")
    log = run_git(
        worktree, "log", "-z", f"--max-count={PLAN_LISTED}", "--format=%h%x1f%s", local, *exclude
    ).text
    commits = tuple(
        (oid, clean_display(subject))
        for oid, _, subject in (rec.partition("\x1f") for rec in log.split("\0") if rec)
    )
    return PushPlan(
        remote=remote, branch=branch, commits=commits, count=count, remote_oid=remote_oid
    )


def push(worktree: Path, plan: PushPlan, *, locks_dir: Path, force_with_lease: bool = False) -> str:
    """Push ``refs/heads/<branch>`` to the plan's remote and set its upstream; return the oid.

    With ``force_with_lease`` the remote is overwritten only if it is still at
    ``plan.remote_oid`` (an explicit lease; never a bare ``--force``).
    """
    branch = plan.branch
    lease: list[str] = []
    if force_with_lease:
        if plan.remote_oid is None:
            raise PushRefused(
                f"{branch} does not exist on {plan.remote}; push it without --force-with-lease",
                "no_lease",
            )
        lease = [f"--force-with-lease=refs/heads/{branch}:{plan.remote_oid}"]
    with repo_lock(common_dir(worktree), locks_dir):
        # The plan may have waited on an approval: the worktree must still be as it was.
        _preflight(worktree, branch, ())
        oid = run_git(worktree, "rev-parse", "--verify", f"refs/heads/{branch}").text.strip()
        res = run_git(
            worktree,
            "push",
            "--porcelain",
            "--set-upstream",
            *lease,
            "--",
            plan.remote,
            f"refs/heads/{branch}:refs/heads/{branch}",
            timeout=NETWORK_TIMEOUT_S,
            check=False,
        )
    if res.returncode != 0:
        # --porcelain puts the per-ref verdict ("! … [rejected] (fetch first)") on stdout.
        output = f"{res.stderr}\n{res.text}"
        kind, remedy = classify_push_error(output)
        raise PushRejected(
            f"push of {branch} to {plan.remote} rejected: {remedy} (git: {_verdict(output)})", kind
        )
    return oid


def _preflight(worktree: Path, branch: str, protected: Sequence[str]) -> None:
    op = in_progress(worktree)  # before the branch check: a rebase detaches HEAD
    if op:
        raise PushRefused(f"{op} in progress — /abort or resolve before pushing", "in_progress")
    current = current_branch(worktree)
    if current is None:
        raise PushRefused(f"HEAD is detached; check out {branch} to push it", "detached")
    for name in (current, branch):
        if any(fnmatchcase(name, pattern) for pattern in protected):
            raise PushRefused(
                f"{name} is a protected branch; it is never pushed from a workspace", "protected"
            )
    if current != branch:
        raise PushRefused(f"the worktree is on {current}, not {branch}", "wrong_branch")


def _remote_heads(worktree: Path, remote: str, branches: Sequence[str]) -> dict[str, str]:
    """{branch: oid} for those of ``branches`` the remote has."""
    res = run_git(
        worktree,
        "ls-remote",
        "--heads",
        "--",
        remote,
        *(f"refs/heads/{name}" for name in branches),
        timeout=NETWORK_TIMEOUT_S,
        check=False,
    )
    if res.returncode != 0:
        kind, remedy = classify_push_error(res.stderr)
        hint = remedy if kind == "auth" else scrub_urls(first_error(res.stderr))
        raise GitOpError(f"cannot reach remote {remote}: {hint}")
    wanted = {f"refs/heads/{name}": name for name in branches}
    heads = {}
    for line in res.text.splitlines():
        oid, _, ref = line.partition("\t")
        if ref in wanted:  # exact: ls-remote patterns also match longer names ending the same
            heads[wanted[ref]] = oid
    return heads


def _have_commit(worktree: Path, oid: str) -> bool:
    return run_git(worktree, "cat-file", "-e", f"{oid}^{{commit}}", check=False).returncode == 0


def _verdict(output: str) -> str:
    """The rejected ref's line from --porcelain output, else git's error line."""
    for line in output.splitlines():
        if line.startswith("!"):
            return scrub_urls(" ".join(line.split())[:300])
    return scrub_urls(first_error(output))
