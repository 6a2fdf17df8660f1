"""Agents' open permission requests and the interactive workspaces, through the chat's verbs."""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from web.backend import WebBackend
from web.bridge import failed
from web.http import ApiError, field, json_body, ok
from web.identity import WebUser

_PERMISSION_REF = re.compile(r"p?[0-9]{1,18}")


def _web(request: Request) -> WebBackend:
    backend: WebBackend = request.app.state.web
    return backend


def _user(request: Request) -> WebUser:
    user: WebUser = request.scope["state"]["web_user"]
    return user


async def permissions(request: Request) -> Response:
    """``GET /api/permissions``: requests waiting for an answer (``permissions --json``)."""
    result = await _web(request).bridge.read(_user(request), ["permissions", "--json"])
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
    web, body = _web(request), await json_body(request)
    ref = await _known_request(web, request.path_params["ref"])
    argv = ["allow", ref, *(["--run"] if field(body, "for_run", bool) else [])]
    result = await web.bridge.run(_user(request), argv)
    if not result.ok:
        raise failed(result)
    return ok({"ref": ref, "answer": "allow"})


async def deny(request: Request) -> Response:
    """``POST /api/permissions/{id}/deny`` body ``{"reason"?: str}``."""
    web, body = _web(request), await json_body(request)
    ref = await _known_request(web, request.path_params["ref"])
    reason = field(body, "reason", str)
    result = await web.bridge.run(
        _user(request), ["deny", ref, *(["--", reason] if reason else [])]
    )
    if not result.ok:
        raise failed(result)
    return ok({"ref": ref, "answer": "deny"})


ROUTES = [
    Route("/api/permissions", permissions, methods=["GET"]),
    Route("/api/permissions/{ref}/allow", allow, methods=["POST"]),
    Route("/api/permissions/{ref}/deny", deny, methods=["POST"]),
]
