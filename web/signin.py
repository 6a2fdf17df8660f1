"""Signing in and out: a login link's confirmation page, its single use, the session cookie.

Opening a link only shows a button: chat platforms fetch links to preview them, and a fetch must
not spend the link. Pressing the button POSTs the secret back from the board's own page; that
consumes the link and starts a brand-new session (whatever session cookie the browser brought is
ended, so a planted id cannot be carried into the signed-in state).
"""

from __future__ import annotations

import html
import re
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from web import store
from web.gate import COOKIE, origin_of
from web.http import ok

#: What a link's secret looks like (``secrets.token_urlsafe(32)``); anything else is refused
#: before the database is asked.
_TOKEN = re.compile(r"[A-Za-z0-9_-]{20,100}")

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>{title} · Kanban board</title><link rel="stylesheet" href="/static/app.css"></head>
<body class="signin"><main class="signin-box"><h1>Kanban board</h1>{content}</main></body></html>
"""


def page(title: str, content: str, status: int = 200) -> HTMLResponse:
    """A small server-made page in the sign-in page's style (``content`` is trusted markup)."""
    return HTMLResponse(
        _PAGE.format(title=html.escape(title), content=content),
        status_code=status,
        headers={"Cache-Control": "no-store"},
    )


def _refused() -> HTMLResponse:
    return page(
        "Link refused",
        "<p>This login link is used, expired or unknown. Ask for a new one: "
        "<code>kanban web login-link</code>, or <code>/web</code> in a chat.</p>",
        status=401,
    )


async def link_page(request: Request) -> Response:
    """``GET /auth/link?token=T``: a button that signs in (the link is not spent yet)."""
    token = request.query_params.get("token", "")
    if not _TOKEN.fullmatch(token):
        return _refused()
    return page(
        "Sign in",
        '<p>Sign in to the board in this browser?</p><form method="post" action="/auth/link">'
        f'<input type="hidden" name="token" value="{html.escape(token)}">'
        '<button type="submit" id="signin-confirm">Sign in</button></form>'
        '<p class="muted">The link works once and expires within minutes.</p>',
    )


async def consume(request: Request) -> Response:
    """``POST /auth/link``: spend the link, start a fresh session, set its cookie, go to ``/``."""
    web = request.app.state.web
    origin = request.headers.get("origin")
    if origin is not None and origin not in (
        web.trusted_origins | {f"{request.url.scheme}://{request.headers.get('host', '')}"}
    ):
        return page("Refused", "<p>Cross-origin sign-in refused.</p>", status=403)
    form = await request.form()
    token = form.get("token")
    if not isinstance(token, str) or not _TOKEN.fullmatch(token):
        return _refused()
    old = request.cookies.get(COOKIE)
    client = request.headers.get("user-agent")

    def sign_in() -> tuple[str, store.WebSession] | None:
        with web.board.db.transaction(write=True) as tx:
            principal = store.consume_link(tx, token)
            if principal is None:
                return None
            if old:
                store.revoke_token(tx, old)
            return store.create_session(
                tx, principal, ttl_s=web.settings.session_ttl_s, client=client
            )

    made = await web.executor.run(sign_in)
    if made is None:
        return _refused()
    secret, _session = made
    response = RedirectResponse("/", status_code=303)
    _set_cookie(response, secret, max_age=web.settings.session_ttl_s, secure=web.secure_cookies)
    return response


async def logout(request: Request) -> Response:
    """``POST /api/logout``: end this session; the cookie is cleared."""
    web = request.app.state.web
    token = request.scope["state"]["session_token"]

    def end() -> None:
        with web.board.db.transaction(write=True) as tx:
            store.revoke_token(tx, token)

    await web.executor.run(end)
    response = ok({"signed_out": True})
    _set_cookie(response, "", max_age=0, secure=web.secure_cookies)
    return response


async def me(request: Request) -> Response:
    """``GET /api/me``: who is signed in, with which role, and the CSRF token for writes."""
    user = request.scope["state"]["web_user"]
    data: dict[str, Any] = {
        "user": user.principal,
        "role": user.role_name,
        "csrf_token": user.csrf_token,
    }
    return ok(data)


def _set_cookie(response: Response, value: str, *, max_age: int, secure: bool) -> None:
    response.set_cookie(
        COOKIE,
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="strict",
        secure=secure,
    )


__all__ = ["consume", "link_page", "logout", "me", "origin_of"]
