"""The task routes: the board, changed cards, a task's detail, create, patch, bulk, comments,
links, dispatch.

Reads use the kernel's reads (and ``show --json``); every write is a verb of the command tree,
run by the bridge as the signed-in user.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from kanban_core.board.domain import TaskId, TaskStatus, format_task_id, parse_task_id
from kanban_core.errors import KanbanError, TaskNotFound
from web.backend import WebBackend, backend_of, user_of
from web.board_view import FINISHED_SHOWN, MAX_CARDS, MAX_FINISHED, BoardQuery, board, cards
from web.bridge import failed
from web.http import ApiError, field, json_body, ok

#: Events a task's detail carries (the newest).
DETAIL_EVENTS = 50
#: Bytes of the worker log a task's detail carries.
LOG_TAIL_BYTES = 8192
MAX_BULK = 500
_BULK_ACTIONS = ("archive", "status", "assign", "priority", "unblock", "complete", "block")


def _task_id(raw: object) -> TaskId:
    if not isinstance(raw, str):
        raise ApiError(400, "task ids are strings like t42")
    try:
        return parse_task_id(raw)
    except KanbanError as exc:
        raise ApiError(404, str(exc)) from None


async def _existing(web: WebBackend, *raws: object) -> list[TaskId]:
    """Parse ids and check each exists: an unknown id is a 404 before anything runs."""
    ids = [_task_id(raw) for raw in raws]
    for task_id in ids:
        try:
            await web.executor.run(web.board.get, task_id)
        except TaskNotFound as exc:
            raise ApiError(404, str(exc)) from None
    return ids


def _board_query(request: Request) -> BoardQuery:
    """The board's filters from the query string."""
    params = request.query_params
    limit = params.get("finished", str(FINISHED_SHOWN))
    if not limit.isdigit() or not 0 <= int(limit) <= MAX_FINISHED:
        raise ApiError(400, f"finished: how many done/archived cards, 0 to {MAX_FINISHED}")
    return BoardQuery(
        tenant=params.get("tenant") or None,
        assignee=params.get("assignee") or None,
        text=params.get("q") or None,
        archived=params.get("archived") in ("1", "true"),
        finished_limit=int(limit),
    )


async def get_board(request: Request) -> Response:
    """``GET /api/board``."""
    web = backend_of(request)
    return ok(await web.executor.run(board, web.board, _board_query(request)))


async def get_cards(request: Request) -> Response:
    """``GET /api/cards?ids=t1,t2``: a few cards as the board shows them (a live page's patch)."""
    raws = [raw for raw in request.query_params.get("ids", "").split(",") if raw.strip()]
    if not raws or len(raws) > MAX_CARDS:
        raise ApiError(400, f"ids: 1 to {MAX_CARDS} task ids, comma-separated")
    ids = [int(_task_id(raw)) for raw in raws]
    web = backend_of(request)
    return ok(await web.executor.run(cards, web.board, ids, _board_query(request)))


async def get_task(request: Request) -> Response:
    """``GET /api/tasks/{id}``: ``show --json`` plus the newest events and the log tail."""
    web = backend_of(request)
    (task_id,) = await _existing(web, request.path_params["task_id"])
    result = await web.bridge.read(user_of(request), ["show", str(task_id), "--json"])
    if not result.ok:
        raise failed(result)
    data: dict[str, Any] = dict(result.data)
    data["events"] = data["events"][-DETAIL_EVENTS:]
    data["log_tail"] = await web.executor.run(_log_tail, web, task_id)
    return ok(data)


def _log_tail(web: WebBackend, task_id: TaskId) -> str:
    from kanban_core.dispatch.logs import log_path, tail

    path = log_path(web.board.settings.home, task_id)
    return tail(path, LOG_TAIL_BYTES) if path.is_file() else ""


async def create_task(request: Request) -> Response:
    """``POST /api/tasks``: ``create --json`` with the body's fields."""
    web, body = backend_of(request), await json_body(request)
    title = field(body, "title", str, required=True)
    argv = ["create", "--json"]
    for name in ("body", "assignee", "tenant"):
        value = field(body, name, str)
        if value is not None:
            argv.append(f"--{name}={value}")
    priority = field(body, "priority", int)
    if priority is not None:
        argv.append(f"--priority={priority}")
    if field(body, "triage", bool):
        argv.append("--triage")
    parents = field(body, "parents", list) or []
    argv.extend(f"--parent={parent}" for parent in await _existing(web, *parents))
    status = field(body, "status", str)
    if status not in (None, "ready", "todo", "triage"):
        raise ApiError(400, "a new task starts in triage, todo or ready (status)")
    if status == "triage":
        argv.append("--triage")
    result = await web.bridge.run(user_of(request), [*argv, "--", title])
    if not result.ok:
        raise failed(result)
    data = dict(result.data)
    created = data.pop("created")
    return ok({"task": data, "created": created}, status=201 if created else 200)


async def patch_task(request: Request) -> Response:
    """``PATCH /api/tasks/{id}``: status, assignee, priority, title, body — each a verb."""
    web, body = backend_of(request), await json_body(request)
    (task_id,) = await _existing(web, request.path_params["task_id"])
    unknown = set(body) - {"status", "assignee", "priority", "title", "body", "reason"}
    if unknown:
        raise ApiError(400, f"unknown field {sorted(unknown)[0]!r}")
    user = user_of(request)
    ref = str(task_id)
    edit = ["edit", ref]
    for name in ("title", "body"):
        value = field(body, name, str)
        if value is not None:
            edit.append(f"--{name}={value}")
    priority = field(body, "priority", int)
    if priority is not None:
        edit.append(f"--priority={priority}")
    steps: list[list[str]] = [edit] if len(edit) > 2 else []
    if "assignee" in body:
        assignee = field(body, "assignee", str)
        steps.append(["assign", ref, "--", assignee or "none"])
    status = field(body, "status", str)
    if status is not None:
        current = (await web.executor.run(web.board.get, task_id)).status
        steps += _status_steps(ref, current, status, field(body, "reason", str))
    for argv in steps:
        result = await web.bridge.run(user, argv)
        if not result.ok:
            raise failed(result)
    task = await web.executor.run(web.board.get, task_id)
    return ok(_task_json(web, task.to_json()) | {"waiting_permission": []})


def _task_json(_web: WebBackend, data: dict[str, Any]) -> dict[str, Any]:
    # Like the chat's --json: the server's paths stay on the server.
    data = dict(data)
    data["workspace_path"] = None
    return data


def _status_steps(
    ref: str, current: TaskStatus, wanted: str, reason: str | None
) -> list[list[str]]:
    """The verb that moves a task from ``current`` to ``wanted``; 409 when none does."""
    try:
        target = TaskStatus(wanted)
    except ValueError:
        raise ApiError(400, f"unknown status {wanted!r}") from None
    if target is current:
        return []
    if target is TaskStatus.DONE:
        return [["complete", ref]]
    if target is TaskStatus.ARCHIVED:
        return [["archive", ref]]
    if target is TaskStatus.BLOCKED:
        return [["block", ref, *(["--", reason] if reason else [])]]
    if target in (TaskStatus.READY, TaskStatus.TODO) and current is TaskStatus.BLOCKED:
        # unblock decides ready or todo from the parents, as it does everywhere.
        return [["unblock", ref, *([f"--reason={reason}"] if reason else [])]]
    if target in (TaskStatus.READY, TaskStatus.TODO) and current is TaskStatus.TRIAGE:
        # Out of triage is an explicit, audited accept; it too picks ready or todo.
        return [["accept", ref, *([f"--reason={reason}"] if reason else [])]]
    if target is TaskStatus.RUNNING:
        raise ApiError(409, f"{ref}: only the dispatcher starts tasks (nudge it instead)")
    raise ApiError(409, f"{ref}: no command moves a {current.value} task to {target.value}")


async def bulk(request: Request) -> Response:
    """``POST /api/tasks/bulk``: one action on many ids; each id succeeds or fails alone."""
    web, body = backend_of(request), await json_body(request)
    ids = field(body, "ids", list, required=True)
    action = field(body, "action", str, required=True)
    if action not in _BULK_ACTIONS:
        raise ApiError(400, f"action must be one of {', '.join(_BULK_ACTIONS)}")
    if not ids or len(ids) > MAX_BULK:
        raise ApiError(400, f"ids: between 1 and {MAX_BULK} task ids")
    value = body.get("value")
    user = user_of(request)
    results: list[dict[str, Any]] = []
    for raw in ids:
        try:
            (task_id,) = await _existing(web, raw)
            ref = format_task_id(task_id)  # the id as the page sent it
            current = (await web.executor.run(web.board.get, task_id)).status
            for argv in _bulk_steps(ref, current, action, value):
                result = await web.bridge.run(user, argv)
                if not result.ok:
                    raise failed(result)
            results.append({"id": ref, "ok": True})
        except ApiError as exc:
            if exc.status == 403:
                raise
            results.append({"id": str(raw), "ok": False, "error": exc.message})
    return ok({"results": results})


def _bulk_steps(ref: str, current: TaskStatus, action: str, value: object) -> list[list[str]]:
    if action in ("archive", "unblock", "complete", "block"):
        return [[action, ref]]
    if action == "status":
        if not isinstance(value, str):
            raise ApiError(400, "value: the status to move to")
        return _status_steps(ref, current, value, None)
    if action == "assign":
        if value is not None and not isinstance(value, str):
            raise ApiError(400, "value: the assignee (or null)")
        return [["assign", ref, "--", value or "none"]]
    if not isinstance(value, int) or isinstance(value, bool):
        raise ApiError(400, "value: the priority (an integer)")
    return [["edit", ref, f"--priority={value}"]]


async def add_comment(request: Request) -> Response:
    """``POST /api/tasks/{id}/comments``."""
    web, body = backend_of(request), await json_body(request)
    (task_id,) = await _existing(web, request.path_params["task_id"])
    text = field(body, "body", str, required=True)
    result = await web.bridge.run(user_of(request), ["comment", str(task_id), "--", text])
    if not result.ok:
        raise failed(result)
    detail = await web.executor.run(web.board.detail, task_id, event_limit=0)
    return ok({"comment": detail.comments[-1].to_json()}, status=201)


async def links(request: Request) -> Response:
    """``POST /api/links`` (link) and ``DELETE /api/links`` (unlink); a cycle is a 409."""
    web, body = backend_of(request), await json_body(request)
    parent, child = await _existing(
        web, field(body, "parent", str, required=True), field(body, "child", str, required=True)
    )
    verb = "link" if request.method == "POST" else "unlink"
    result = await web.bridge.run(user_of(request), [verb, str(parent), str(child)])
    if not result.ok:
        raise failed(result)
    return ok({"parent": str(parent), "child": str(child), "linked": verb == "link"})


async def dispatch(request: Request) -> Response:
    """``POST /api/dispatch``: a dispatcher pass now (``dispatch --json``; the admin role)."""
    result = await backend_of(request).bridge.run(user_of(request), ["dispatch", "--json"])
    if not result.ok:
        raise failed(result)
    return ok(result.data)


async def get_config(request: Request) -> Response:
    """``GET /api/config``: what the board's forms offer (nothing secret)."""
    web = backend_of(request)

    def read() -> dict[str, Any]:
        from kanban_core.config import config_path, load_config

        config = load_config(
            config_path(web.bridge.environ, web.board.settings.home), web.bridge.environ
        )
        return {
            "statuses": [s.value for s in TaskStatus],
            "assignees": sorted(config.assignees),
            "priorities": {"default": 0},
            "bulk_actions": list(_BULK_ACTIONS),
            "max_body_bytes": web.settings.max_body_bytes,
        }

    return ok(await web.executor.run(read))


ROUTES = [
    Route("/api/board", get_board, methods=["GET"]),
    Route("/api/cards", get_cards, methods=["GET"]),
    Route("/api/config", get_config, methods=["GET"]),
    Route("/api/tasks", create_task, methods=["POST"]),
    Route("/api/tasks/bulk", bulk, methods=["POST"]),
    Route("/api/tasks/{task_id}", get_task, methods=["GET"]),
    Route("/api/tasks/{task_id}", patch_task, methods=["PATCH"]),
    Route("/api/tasks/{task_id}/comments", add_comment, methods=["POST"]),
    Route("/api/links", links, methods=["POST", "DELETE"]),
    Route("/api/dispatch", dispatch, methods=["POST"]),
]
