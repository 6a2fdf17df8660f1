"""Deny by default: the ASGI layer in front of every route.

Only the sign-in page, static assets and the login link answer without a session. Every write
also needs the session's CSRF token, a same-origin ``Origin`` (when the browser sends one), a
role above viewer, and a body under the limit. Security headers go on every response.
"""

from __future__ import annotations

import hmac
import json
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.access import AccessPolicy, Role
from gateway.executor import KernelExecutor
from kanban_core import Kanban
from web import store
from web.identity import WebUser, role_of

COOKIE = "kanban_session"
CSRF_HEADER = "x-csrf-token"
#: Paths that answer without a session (exact), and path prefixes that do.
PUBLIC_PATHS = frozenset({"/signin", "/auth/link", "/favicon.ico"})
PUBLIC_PREFIXES = ("/static/",)
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: Writes a viewer may still make: leaving.
_VIEWER_WRITES = frozenset({"/api/logout"})
SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
        b"frame-ancestors 'none'; form-action 'self'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    # The login link carries its secret in the URL: no Referer ever leaves the origin. Not
    # no-referrer: under it browsers send `Origin: null` on the page's own form posts and
    # fetches, which the same-origin check must refuse.
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
]


def is_public(path: str) -> bool:
    """Whether a path answers without a session."""
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


class SessionGate:
    """Looks up the session, enforces CSRF/Origin/role/body limit, then calls the app."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        board: Kanban,
        executor: KernelExecutor,
        access: AccessPolicy,
        max_body: int,
        trusted_origins: frozenset[str] = frozenset(),
    ) -> None:
        self.app = app
        self.board = board
        self.executor = executor
        self.access = access
        self.max_body = max_body
        self.trusted_origins = trusted_origins

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            # No route speaks WebSocket; should one ever, it must come through a session check.
            await send({"type": "websocket.close", "code": 1008})
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        send = _with_headers(send, scope)
        path: str = scope["path"]
        headers = Headers(scope=scope)
        if scope["method"] not in _SAFE_METHODS:
            # Before anything else, public routes included: nobody streams a huge body at us.
            declared = headers.get("content-length")
            if declared is not None and (not declared.isdigit() or int(declared) > self.max_body):
                await _json(send, 413, "the request body is too large")
                return
            receive = _capped(receive, self.max_body)
        if is_public(path):
            await self.app(scope, receive, send)
            return
        token = cookie_parser(headers.get("cookie", "")).get(COOKIE, "")
        user = await self._user(token) if token else None
        if user is None:
            await _refuse_anonymous(path, send)
            return
        scope.setdefault("state", {})["web_user"] = user
        scope["state"]["session_token"] = token
        if scope["method"] not in _SAFE_METHODS:
            refusal = self._write_refusal(scope, headers, user)
            if refusal:
                await _json(send, refusal[0], refusal[1])
                return
        try:
            await self.app(scope, receive, send)
        except BodyTooLarge:
            await _json(send, 413, "the request body is too large")

    async def _user(self, token: str) -> WebUser | None:
        if len(token) > 200:
            return None

        def lookup() -> store.WebSession | None:
            with self.board.db.transaction(write=False) as tx:
                return store.live_session(tx, token)

        session = await self.executor.run(lookup)
        if session is None:
            return None
        role = role_of(self.access, session.principal)
        if role is None:
            return None  # removed from access.users since signing in
        return WebUser(session.principal, role, session.id, store.csrf_token(token))

    def _write_refusal(
        self, scope: Scope, headers: Headers, user: WebUser
    ) -> tuple[int, str] | None:
        origin = headers.get("origin")
        if origin is not None and origin not in self._origins(scope, headers):
            return 403, "cross-origin request refused"
        # Only the served origin writes: a sibling subdomain ("same-site") is another party
        # (another app, or a user's pages on a shared domain), so it is refused like any site.
        site = headers.get("sec-fetch-site") or "same-origin"
        if site not in ("same-origin", "none"):
            return 403, f"{site[:20]} request refused (only the board's own pages may write)"
        sent = headers.get(CSRF_HEADER, "")
        if not sent or not hmac.compare_digest(sent.encode(), user.csrf_token.encode()):
            return 403, "missing or wrong CSRF token (X-CSRF-Token)"
        if user.role < Role.OPERATOR and scope["path"] not in _VIEWER_WRITES:
            return 403, "the viewer role cannot change anything"
        return None

    def _origins(self, scope: Scope, headers: Headers) -> frozenset[str]:
        scheme = scope.get("scheme", "http")
        host = headers.get("host", "")
        return self.trusted_origins | {f"{scheme}://{host}"}


def origin_of(url: str) -> str:
    """``https://board.example:8443`` of a URL (scheme and authority only)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


class BodyTooLarge(Exception):
    """The body went past the limit while being read (a chunked or lying request)."""


def _capped(receive: Receive, limit: int) -> Receive:
    seen = 0

    async def inner() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise BodyTooLarge
        return message

    return inner


def _with_headers(send: Send, scope: Scope) -> Send:
    api = scope["path"].startswith("/api/")

    async def inner(message: Message) -> None:
        if message["type"] == "http.response.start":
            message["headers"] = list(message.get("headers", [])) + SECURITY_HEADERS
            if api:
                message["headers"].append((b"cache-control", b"no-store"))
        await send(message)

    return inner


async def _refuse_anonymous(path: str, send: Send) -> None:
    if path.startswith(("/api/", "/auth/")):
        await _json(send, 401, "sign in first: kanban web login-link, or /web in a chat")
        return
    await send(
        {
            "type": "http.response.start",
            "status": 303,
            "headers": [(b"location", b"/signin"), (b"content-length", b"0")],
        }
    )
    await send({"type": "http.response.body", "body": b""})


async def _json(send: Send, status: int, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
