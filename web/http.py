"""JSON responses and the one exception every route raises to refuse: status plus one line."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from web.errors import WebError

#: Never cached: every answer is a view of live data for one signed-in user.
NO_STORE = {"Cache-Control": "no-store"}


class ApiError(WebError):
    """Refuse a request: an HTTP status and a one-line reason, sent as ``{"error": ...}``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def error_response(status: int, message: str) -> JSONResponse:
    """``{"error": "<one line>"}`` with the status."""
    line = message.strip().splitlines()[0] if message.strip() else "error"
    return JSONResponse({"error": line}, status_code=status, headers=NO_STORE)


def ok(data: Any, status: int = 200) -> JSONResponse:
    """A JSON answer."""
    return JSONResponse(data, status_code=status, headers=NO_STORE)


async def json_body(request: Request) -> dict[str, Any]:
    """The request's JSON object; anything else is a 400."""
    raw = await request.body()
    if not raw:
        return {}
    import json

    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "the body is not valid JSON") from None
    if not isinstance(data, dict):
        raise ApiError(400, "the body must be a JSON object")
    return data


def field(body: dict[str, Any], name: str, kind: type, *, required: bool = False) -> Any:
    """One field of the body, checked for type (bool is not an int here)."""
    value = body.get(name)
    if value is None:
        if required:
            raise ApiError(400, f"{name} is required")
        return None
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ApiError(400, f"{name} must be a {kind.__name__}")
    return value


async def api_error_handler(_request: Request, exc: Exception) -> Response:
    """Starlette's handler for ApiError."""
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.message)
