"""Agents' open permission requests and the interactive workspaces, through the chat's verbs."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from kanban_core.commands import CommandResult
from web.backend import WebBackend, backend_of, user_of
from web.bridge import failed
from web.http import ApiError, field, json_body, ok
from web.identity import WebUser

_PERMISSION_REF = re.compile(r"p?[0-9]{1,18}")


async def permissions(request: Request) -> Response:
    """``GET /api/permissions``: requests waiting for an answer (``permissions --json``)."""
    result = await backend_of(request).bridge.read(user_of(request), ["permissions", "--json"])
    if not result.ok:
        raise failed(result)
    return ok(result.data)


async def _known_request(web: WebBackend, raw: str) -> str:
    if not _PERMISSION_REF.fullmatch(raw):
        raise ApiError(404, f"no permission request {raw!r}")
    ref = raw if raw.startswith("p") else f"p{raw}"
    from kanban_core.errors import KanbanError

    try:
        await web.executor.run(web.board.permission, ref)
    except KanbanError as exc:
        raise ApiError(404, str(exc)) from None
    return ref


async def allow(request: Request) -> Response:
    """``POST /api/permissions/{id}/allow`` body ``{"for_run"?: bool}``."""
    web, body = backend_of(request), await json_body(request)
    ref = await _known_request(web, request.path_params["ref"])
    argv = ["allow", ref, *(["--run"] if field(body, "for_run", bool) else [])]
    result = await web.bridge.run(user_of(request), argv)
    if not result.ok:
        raise failed(result)
    return ok({"ref": ref, "answer": "allow"})


async def deny(request: Request) -> Response:
    """``POST /api/permissions/{id}/deny`` body ``{"reason"?: str}``."""
    web, body = backend_of(request), await json_body(request)
    ref = await _known_request(web, request.path_params["ref"])
    reason = field(body, "reason", str)
    result = await web.bridge.run(
        user_of(request), ["deny", ref, *(["--", reason] if reason else [])]
    )
    if not result.ok:
        raise failed(result)
    return ok({"ref": ref, "answer": "deny"})


_WS_ID = re.compile(r"[A-Za-z0-9_.-]{1,80}")
_SLUG = re.compile(r"[A-Za-z0-9_.-]{1,64}")
#: Workspace changes that are one verb with the workspace id (and nothing else).
_LIFECYCLE = frozenset({"pin", "unpin", "archive", "unarchive"})
_GIT_OPS = frozenset({"commit", "push", "pr"})


def _text(result: CommandResult) -> str:
    from kanban_core.commands.render import render_result

    return render_result(result)[0].rstrip("\n")


async def _known_ws(web: WebBackend, user: WebUser, raw: str) -> dict[str, Any]:
    """The workspace's ``ws show --json``; an unknown id is a 404."""
    if not _WS_ID.fullmatch(raw):
        raise ApiError(404, f"no workspace {raw!r}")
    result = await web.bridge.read(user, ["ws", "show", raw, "--json"])
    if not result.ok:
        raise ApiError(404, failed(result).message)
    data: dict[str, Any] = result.data
    return data


def _repo(request: Request | None, body: dict[str, Any] | None = None) -> list[str]:
    if body is not None:
        repo = body.get("repo")
    else:
        assert request is not None
        repo = request.query_params.get("repo")
    if repo in (None, ""):
        return []
    if not isinstance(repo, str) or not _SLUG.fullmatch(repo):
        raise ApiError(400, "repo: a repository name of the workspace")
    return [f"--repo={repo}"]


async def workspaces(request: Request) -> Response:
    """``GET /api/workspaces[?archived=1]``: ``ws list --json``."""
    archived = ["--archived"] if request.query_params.get("archived") in ("1", "true") else []
    result = await backend_of(request).bridge.read(
        user_of(request), ["ws", "list", "--json", *archived]
    )
    if not result.ok:
        raise failed(result)
    return ok(result.data)


async def workspace(request: Request) -> Response:
    """``GET /api/workspaces/{id}``: ``ws show --json``."""
    return ok(await _known_ws(backend_of(request), user_of(request), request.path_params["ws"]))


async def workspace_text(request: Request) -> Response:
    """``GET /api/workspaces/{id}/diff|status|sessions``: the verb's text, as chat shows it."""
    web, user = backend_of(request), user_of(request)
    ws = (await _known_ws(web, user, request.path_params["ws"]))["id"]
    view = request.url.path.rsplit("/", 1)[1]
    argv = {
        "diff": ["ws", "diff", "--ws", ws, *_repo(request)],
        "status": ["ws", "status", "--ws", ws, *_repo(request)],
        "sessions": ["ws", "sessions", "list", "--ws", ws],
        "summary": ["ws", "summary", "--ws", ws],
    }[view]
    result = await web.bridge.read(user, argv)
    if not result.ok:
        raise failed(result)
    return ok({"workspace": ws, "view": view, "text": _text(result)})


async def session(request: Request) -> Response:
    """``GET /api/workspaces/{id}/sessions/{n}``: ``ws sessions show N --json`` (its messages)."""
    web, user = backend_of(request), user_of(request)
    ws = (await _known_ws(web, user, request.path_params["ws"]))["id"]
    ref = request.path_params["session"]
    if not _WS_ID.fullmatch(ref):
        raise ApiError(400, "session: a session number or id")
    result = await web.bridge.read(user, ["ws", "sessions", "show", ref, "--ws", ws, "--json"])
    if not result.ok:
        raise failed(result)
    return ok(result.data)


async def create_workspace(request: Request) -> Response:
    """``POST /api/workspaces`` ``{"title", "body"?, "repos": [...], "base"?, "branch"?}``."""
    web, body = backend_of(request), await json_body(request)
    title = field(body, "title", str, required=True)
    argv = ["ws", "new"]
    for repo in field(body, "repos", list) or []:
        if not isinstance(repo, str) or not _SLUG.fullmatch(repo):
            raise ApiError(400, "repos: repository names")
        argv.append(f"--repo={repo}")
    for name in ("body", "base", "branch", "agent"):
        value = field(body, name, str)
        if value is not None:
            argv.append(f"--{name}={value}")
    result = await web.bridge.run(user_of(request), [*argv, "--", title])
    if not result.ok:
        raise failed(result)
    return ok({"text": _text(result), "created": [f"t{t}" for t in result.created]}, status=201)


async def workspace_action(request: Request) -> Response:
    """``POST /api/workspaces/{id}/<action>``: one ``ws`` verb on the workspace.

    Actions: pin, unpin, archive, unarchive, stop, rename, followup, new-session, use-session,
    queue, repo, run, attach; git (commit, push, pr) and delete answer with a pending request
    that its requester confirms (or an approver approves) through ``/api/git-requests``.
    """
    web, user, body = backend_of(request), user_of(request), await json_body(request)
    ws = (await _known_ws(web, user, request.path_params["ws"]))["id"]
    action = request.path_params["action"]
    result = await web.bridge.run(user, _action_argv(action, ws, body))
    if not result.ok:
        raise failed(result)
    if action in ("git", "delete"):
        data = result.data if isinstance(result.data, dict) else {}
        return ok({"request": {"id": data.get("approval"), "text": _text(result)}}, status=201)
    return ok({"workspace": ws, "text": _text(result)})


def _words(body: dict[str, Any], name: str) -> list[str]:
    """``["--", value]`` for an optional free-text positional (it may start with a dash)."""
    value = field(body, name, str)
    return ["--", value] if value else []


def _required(body: dict[str, Any], name: str) -> str:
    value: str = field(body, name, str, required=True)
    return value


def _action_argv(action: str, ws: str, body: dict[str, Any]) -> list[str]:
    on = ["--ws", ws]
    repo = _repo(None, body)
    if action in _LIFECYCLE:
        return ["ws", action, ws]
    simple: dict[str, Callable[[], list[str]]] = {
        "stop": lambda: ["ws", "stop", *on],
        "rename": lambda: ["ws", "rename", *on, "--", _required(body, "name")],
        "followup": lambda: ["ws", "follow-up", *on, "--", _required(body, "text")],
        "attach": lambda: ["ws", "attach", *on, *repo, *_words(body, "ref")],
        "run": lambda: ["ws", "run", *on, *repo, "--", _required(body, "script")],
        "delete": lambda: (
            ["ws", "delete", ws]
            + (["--delete-branch"] if field(body, "delete_branch", bool) else [])
        ),
    }
    if action in simple:
        return simple[action]()
    if action == "new-session":
        name = field(body, "name", str)
        return [
            "ws",
            "new-session",
            *on,
            *([f"--name={name}"] if name else []),
            *_words(body, "message"),
        ]
    if action == "use-session":
        session = field(body, "session", str, required=True)
        if not _WS_ID.fullmatch(session):
            raise ApiError(400, "session: a session number or id")
        return ["ws", "sessions", *on, "use", session]
    if action == "queue":
        step = field(body, "action", str)
        if step not in ("run", "clear"):
            raise ApiError(400, "action: run or clear")
        return ["ws", "queue", *on, step]
    if action == "repo":
        slug = field(body, "slug", str)
        if slug is not None and not _SLUG.fullmatch(slug):
            raise ApiError(400, "slug: a repository name of the workspace")
        return ["ws", "repo", *on, slug] if slug else ["ws", "repo", *on, "--all"]
    if action == "git":
        op = field(body, "op", str, required=True)
        if op not in _GIT_OPS:
            raise ApiError(400, "op: commit, push or pr")
        return ["ws", op, *on, *repo, *_words(body, "message")]
    raise ApiError(404, "not found")


async def git_request(request: Request) -> Response:
    """``POST /api/git-requests/{id}/confirm|deny``: the same decision as chat's buttons."""
    web, user = backend_of(request), user_of(request)
    ref = request.path_params["ref"]
    if request.path_params["decision"] not in ("confirm", "deny"):
        raise ApiError(404, "not found")
    if not _WS_ID.fullmatch(ref) or not await web.executor.run(_request_exists, web, ref):
        raise ApiError(404, f"no request {ref!r}")
    verb = "approve" if request.path_params["decision"] == "confirm" else "deny"
    result = await web.bridge.run(user, ["ws", verb, ref])
    if not result.ok:
        raise failed(result)
    return ok({"request": ref, "decision": verb, "text": _text(result)})


def _request_exists(web: WebBackend, ref: str) -> bool:
    from kanban_core.workspaces.interactive import approvals

    with web.board.db.transaction(write=False) as tx:
        return approvals.get(tx, ref) is not None


ROUTES = [
    Route("/api/workspaces", workspaces, methods=["GET"]),
    Route("/api/workspaces", create_workspace, methods=["POST"]),
    Route("/api/workspaces/{ws}", workspace, methods=["GET"]),
    Route("/api/workspaces/{ws}/diff", workspace_text, methods=["GET"]),
    Route("/api/workspaces/{ws}/status", workspace_text, methods=["GET"]),
    Route("/api/workspaces/{ws}/sessions", workspace_text, methods=["GET"]),
    Route("/api/workspaces/{ws}/summary", workspace_text, methods=["GET"]),
    Route("/api/workspaces/{ws}/sessions/{session}", session, methods=["GET"]),
    Route("/api/workspaces/{ws}/{action}", workspace_action, methods=["POST"]),
    Route("/api/git-requests/{ref}/{decision}", git_request, methods=["POST"]),
    Route("/api/permissions", permissions, methods=["GET"]),
    Route("/api/permissions/{ref}/allow", allow, methods=["POST"]),
    Route("/api/permissions/{ref}/deny", deny, methods=["POST"]),
]
