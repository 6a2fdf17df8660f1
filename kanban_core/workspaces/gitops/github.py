"""GitHub pull requests through the REST API (httpx) or the gh CLI, behind one small protocol."""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote, urlsplit

import httpx

from kanban_core.workspaces.gitops.runner import (
    NETWORK_TIMEOUT_S,
    GitOpError,
    GitTimeout,
    git_env,
    run_git,
)
from kanban_core.workspaces.gitops.secrets import clean_display, scrub_urls

_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
_HOST = re.compile(r"^[A-Za-z0-9.-]+(?::\d+)?$")
_SCP = re.compile(r"^(?:[^@/:\s]+@)?(?P<host>[A-Za-z0-9.-]+):(?P<path>[^/].*)$")
_PR_URL = re.compile(
    r"^https?://(?P<host>[^/\s]+)/(?P<owner>[^/\s]+)/(?P<name>[^/\s]+)"
    r"/pull/(?P<number>\d{1,9})(?:[/?#]\S*)?$"
)
_PR_NUMBER = re.compile(r"^#?(?P<number>\d{1,9})$")
_GH_FIELDS = "number,url,state,headRefName,baseRefName,title"
_GH_AUTH_EXIT = 4  # gh's documented exit code for "authentication required"
_MESSAGE_CHARS = 300


@dataclass(frozen=True, slots=True)
class RemoteRepo:
    """A repository on a GitHub host."""

    host: str
    owner: str
    name: str

    @property
    def slug(self) -> str:
        """``owner/name``."""
        return f"{self.owner}/{self.name}"


@dataclass(frozen=True, slots=True)
class PullRequest:
    """A pull request as the host reports it; ``state`` is 'open', 'closed' or 'merged'."""

    number: int
    url: str
    state: str
    head: str
    base: str
    title: str


class PrHost(Protocol):
    """Where pull requests are created and read."""

    def check(self) -> None:
        """Raise GitOpError with an explicit message when this host cannot be used."""

    def create(
        self, repo: RemoteRepo, *, head: str, base: str, title: str, body: str, draft: bool
    ) -> PullRequest:
        """Open a pull request."""

    def get(self, repo: RemoteRepo, number: int) -> PullRequest:
        """One pull request by number."""

    def list_for_head(self, repo: RemoteRepo, head: str) -> list[PullRequest]:
        """Every pull request (any state) whose head is ``head``."""


def parse_remote_url(url: str) -> RemoteRepo:
    """The host/owner/name of an https, ssh or scp-style remote URL."""
    text = url.strip()
    if "://" in text:
        parts = urlsplit(text)
        if parts.scheme not in ("https", "http", "ssh", "git", "git+ssh", "ssh+git"):
            raise GitOpError(f"not a GitHub remote (scheme {parts.scheme or 'none'})")
        host, path = parts.hostname or "", parts.path
        try:
            port = parts.port
        except ValueError:  # a non-numeric or out-of-range port
            raise GitOpError("not a GitHub remote (bad port)") from None
        if parts.scheme.startswith("http") and port:
            host = f"{host}:{port}"  # an Enterprise server on its own port
    elif (scp := _SCP.match(text)) is not None:
        host, path = scp["host"], scp["path"]
    else:
        raise GitOpError("not a GitHub remote (a local path)")
    segments = [s for s in path.strip("/").split("/") if s]
    if not host or not _HOST.match(host) or len(segments) != 2:
        raise GitOpError(f"not a GitHub remote: {scrub_urls(text)[:200]}")
    owner, name = segments[0], segments[1].removesuffix(".git")
    if not (_NAME.match(owner) and _NAME.match(name)):
        raise GitOpError(f"not a GitHub remote: {scrub_urls(text)[:200]}")
    return RemoteRepo(host=host.lower(), owner=owner, name=name)


def remote_url(worktree: Path, remote: str) -> str:
    """The URL git would fetch ``remote`` from (``insteadOf`` rewrites applied)."""
    res = run_git(worktree, "remote", "get-url", "--", remote, check=False)
    if res.returncode != 0:
        raise GitOpError(f"no remote named {remote!r} in {worktree}")
    return res.text.strip()


def parse_pr_ref(text: str, repo: RemoteRepo | None = None) -> int:
    """A PR number from ``12``, ``#12`` or a ``…/owner/name/pull/12`` URL (of ``repo``)."""
    value = text.strip()
    if (m := _PR_NUMBER.match(value)) is not None:
        number = int(m["number"])
    elif (m := _PR_URL.match(value)) is not None:
        number = int(m["number"])
        if repo is not None and (
            m["host"].lower() != repo.host.lower()
            or m["owner"].lower() != repo.owner.lower()
            or m["name"].lower().removesuffix(".git") != repo.name.lower()
        ):
            raise GitOpError(f"PR belongs to {m['owner']}/{m['name']}, not {repo.slug}")
    else:
        raise GitOpError(f"not a PR number or URL: {clean_display(value)[:100]!r}")
    if number < 1:
        raise GitOpError("PR numbers start at 1")
    return number


def choose_attach(prs: Sequence[PullRequest]) -> PullRequest | None:
    """Open PRs first, then the highest number (the newest), or None."""
    return max(prs, key=lambda pr: (pr.state == "open", pr.number), default=None)


class GhMissing(GitOpError):
    """The gh binary was not found."""


class GitHubRest:
    """:class:`PrHost` over GitHub's REST API (``api_base`` is e.g. https://api.github.com)."""

    def __init__(self, api_base: str, token: str | None, *, timeout: float = 30.0) -> None:
        self._base = api_base.rstrip("/")
        self._token = token
        self._timeout = timeout

    def __repr__(self) -> str:  # the token must never reach a log line
        return f"GitHubRest({self._base!r}, token={'set' if self._token else 'none'})"

    def check(self) -> None:
        """A token is configured and GitHub accepts it."""
        if not self._token:
            raise GitOpError("no GitHub token configured")
        self._request("GET", "/rate_limit")

    def create(
        self, repo: RemoteRepo, *, head: str, base: str, title: str, body: str, draft: bool
    ) -> PullRequest:
        """``POST /repos/{owner}/{repo}/pulls``."""
        payload = {"head": head, "base": base, "title": title, "body": body, "draft": draft}
        return _rest_pr(self._request("POST", f"{_repo_path(repo)}/pulls", json_body=payload))

    def get(self, repo: RemoteRepo, number: int) -> PullRequest:
        """``GET /repos/{owner}/{repo}/pulls/{number}``."""
        return _rest_pr(self._request("GET", f"{_repo_path(repo)}/pulls/{int(number)}"))

    def list_for_head(self, repo: RemoteRepo, head: str) -> list[PullRequest]:
        """``GET /repos/{owner}/{repo}/pulls?state=all&head=owner:branch``."""
        qualified = head if ":" in head else f"{repo.owner}:{head}"
        params = {"state": "all", "head": qualified, "per_page": "100"}
        data = self._request("GET", f"{_repo_path(repo)}/pulls", params=params)
        if not isinstance(data, list):
            raise GitOpError("GitHub returned an unexpected answer listing pull requests")
        return [_rest_pr(item) for item in data]

    def _request(
        self,
        method: str,
        path: str,
        *,
        json_body: Mapping[str, object] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> Any:
        if not self._token:
            raise GitOpError("no GitHub token configured")
        headers = {
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": "2022-11-28",
            "User-Agent": "kanban-gateway",
            "Authorization": f"Bearer {self._token}",
        }
        try:
            with httpx.Client(base_url=self._base, timeout=self._timeout, headers=headers) as c:
                resp = c.request(method, path, json=json_body, params=params)
        except httpx.TimeoutException:
            raise GitTimeout(f"GitHub API at {self._base} timed out") from None
        except httpx.HTTPError as exc:
            raise GitOpError(
                f"cannot reach the GitHub API at {self._base}: {type(exc).__name__}"
            ) from None
        if resp.status_code >= 400:
            raise GitOpError(_rest_error(resp))
        try:
            return resp.json()
        except ValueError:
            raise GitOpError("GitHub returned a non-JSON answer") from None


class GhCli:
    """:class:`PrHost` over the gh CLI, run in the worktree (old gh needs a repo as cwd)."""

    def __init__(self, cwd: Path, *, gh: str = "gh") -> None:
        self._cwd = cwd
        self._gh = gh

    def check(self) -> None:
        """gh is installed and logged in."""
        try:
            self._run("auth", "status")
        except (GhMissing, GitTimeout):
            raise
        except GitOpError:
            raise GitOpError("gh is not logged in (run: gh auth login)") from None

    def create(
        self, repo: RemoteRepo, *, head: str, base: str, title: str, body: str, draft: bool
    ) -> PullRequest:
        """``gh pr create … --body-file <tmp>``, then ``gh pr view <url>`` for the record."""
        with tempfile.TemporaryDirectory(prefix="kanban-pr-") as tmp:
            body_file = Path(tmp) / "body.md"
            body_file.write_text(body, encoding="utf-8")
            out = self._run(
                "pr",
                "create",
                "--repo",
                _gh_repo(repo),
                "--head",
                head,
                "--base",
                base,
                "--title",
                title,
                "--body-file",
                str(body_file),
                *(["--draft"] if draft else []),
            )
        urls = [line.strip() for line in out.splitlines() if line.strip().startswith("http")]
        if not urls:
            raise GitOpError("gh pr create printed no PR URL")
        return _gh_pr(self._json("pr", "view", urls[-1], "--json", _GH_FIELDS))

    def get(self, repo: RemoteRepo, number: int) -> PullRequest:
        """``gh pr view <n> --repo owner/name --json …``."""
        return _gh_pr(
            self._json(
                "pr", "view", str(int(number)), "--repo", _gh_repo(repo), "--json", _GH_FIELDS
            )
        )

    def list_for_head(self, repo: RemoteRepo, head: str) -> list[PullRequest]:
        """``gh pr list --state all --head <branch> --json …``."""
        data = self._json(
            "pr",
            "list",
            "--repo",
            _gh_repo(repo),
            "--state",
            "all",
            "--head",
            head,
            "--limit",
            "100",
            "--json",
            _GH_FIELDS,
        )
        if not isinstance(data, list):
            raise GitOpError("gh pr list returned unexpected output")
        return [_gh_pr(item) for item in data]

    def _json(self, *args: str) -> Any:
        try:
            return json.loads(self._run(*args))
        except json.JSONDecodeError:
            raise GitOpError(f"gh {args[0]} {args[1]} returned unexpected output") from None

    def _run(self, *args: str) -> str:
        env = git_env(
            {
                "GH_PROMPT_DISABLED": "1",
                "GH_NO_UPDATE_NOTIFIER": "1",
                "NO_COLOR": "1",
                "GH_SPINNER_DISABLED": "1",
                "CLICOLOR": "0",
            }
        )
        what = " ".join(args[:2])
        try:
            proc = subprocess.run(
                [self._gh, *args],
                cwd=self._cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=NETWORK_TIMEOUT_S,
                check=False,
                start_new_session=True,
            )
        except FileNotFoundError:
            raise GhMissing("gh is not installed") from None
        except subprocess.TimeoutExpired:
            raise GitTimeout(f"gh {what} timed out after {NETWORK_TIMEOUT_S:.0f}s") from None
        except OSError as exc:
            raise GitOpError(f"cannot run gh: {exc.strerror}") from None
        stderr = proc.stderr.decode("utf-8", "replace")
        if proc.returncode == _GH_AUTH_EXIT or (proc.returncode and "gh auth login" in stderr):
            raise GitOpError("gh is not logged in (run: gh auth login)")
        if proc.returncode != 0:
            raise GitOpError(f"gh {what} failed: {_one_line(stderr) or 'no error output'}")
        return proc.stdout.decode("utf-8", "replace")


def _repo_path(repo: RemoteRepo) -> str:
    return f"/repos/{quote(repo.owner, safe='')}/{quote(repo.name, safe='')}"


def _gh_repo(repo: RemoteRepo) -> str:
    return repo.slug if repo.host == "github.com" else f"{repo.host}/{repo.slug}"


def _rest_pr(data: Any) -> PullRequest:
    try:
        state = "merged" if data.get("merged_at") else str(data["state"])
        return PullRequest(
            number=int(data["number"]),
            url=str(data["html_url"]),
            state=state,
            head=str(data["head"]["ref"]),
            base=str(data["base"]["ref"]),
            title=str(data["title"]),
        )
    except (AttributeError, KeyError, TypeError, ValueError):
        raise GitOpError("GitHub returned an unexpected pull request record") from None


def _gh_pr(data: Any) -> PullRequest:
    try:
        return PullRequest(
            number=int(data["number"]),
            url=str(data["url"]),
            state=str(data["state"]).lower(),
            head=str(data["headRefName"]),
            base=str(data["baseRefName"]),
            title=str(data["title"]),
        )
    except (KeyError, TypeError, ValueError):
        raise GitOpError("gh returned an unexpected pull request record") from None


def _rest_error(resp: httpx.Response) -> str:
    try:
        data = resp.json()
    except ValueError:
        data = {}
    message = str(data.get("message", "")) if isinstance(data, dict) else ""
    details = data.get("errors", []) if isinstance(data, dict) else []
    extra = [str(e.get("message") or e.get("code")) for e in details if isinstance(e, dict)]
    text = _one_line(": ".join([message, *extra]) if extra else message)
    code = resp.status_code
    if code in (401, 403):
        return f"GitHub token rejected (HTTP {code}){': ' + text if text else ''}"
    if code == 404:
        return "GitHub repository or pull request not found (or the token cannot see it)"
    if code == 422:
        return f"GitHub refused: {text or 'validation failed'}"
    return f"GitHub API error HTTP {code}{': ' + text if text else ''}"


def _one_line(text: str) -> str:
    joined = " ".join(clean_display(text).split())
    joined = scrub_urls(joined)
    return joined if len(joined) <= _MESSAGE_CHARS else joined[: _MESSAGE_CHARS - 1] + "…"
