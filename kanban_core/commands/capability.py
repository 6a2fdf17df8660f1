"""The agent's only door to the board: a per-run Unix socket, served by its supervisor.

The supervisor holds the database; the agent holds a socket in a private directory and its run's
credentials. Each request names the run and proves its token, and may ask for one of the worker
verbs (``argv`` for the ``kanban`` CLI) or one MCP tool; it runs as that run's identity, with the
kernel's fencing. Nothing else is served: no other verb, no database URL, no local operator.
Requests are served concurrently: a permission request waiting for a person does not hold up
the run's heartbeats, comments or verdict.
"""

from __future__ import annotations

import hmac
import json
import os
import socket
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kanban_core.board.domain import Actor, RunProof
from kanban_core.dispatch.door import PERMISSION_TOOL, SANDBOX_RUN_DIR, SOCKET_ENV, SOCKET_NAME
from kanban_core.errors import KanbanError

if TYPE_CHECKING:
    from kanban_core.board.kanban import Kanban
    from kanban_core.commands import CommandParser
    from kanban_core.dispatch.permission_tool import PermissionGate

#: The verbs a worker may use: its own task's verdicts and lease, notes, new and linked tasks,
#: and reads.
WORKER_VERBS = frozenset(
    {"show", "context", "complete", "block", "heartbeat", "comment", "create", "link"}
)
_MAX_MESSAGE = 1 << 20
_CALL_TIMEOUT_S = 120.0
#: A permission request waits for a person up to its ttl (at most a day); the call waits longer.
_PERMISSION_TIMEOUT_S = 86_400.0 + 60.0
#: Requests served at once; past this a request is refused as busy (an agent has a handful).
_MAX_CONCURRENT = 32
_CLOSE_WAIT_S = 10.0
_READ_TIMEOUT_S = 10.0
_ACCEPT_POLL_S = 0.5
_SUPERVISOR_ARGV = ("-m", "kanban_core", "worker")
_ANCESTORS_CHECKED = 64

Reply = dict[str, Any]


class CapabilityError(KanbanError):
    """The run's capability is missing, refused the request, or could not be reached."""


class RunDoor:
    """The supervisor's side: serves one run's requests on a socket, each in its own thread."""

    def __init__(
        self,
        proof: RunProof,
        actor_name: str,
        open_board: Callable[[], Kanban],
        *,
        tenant: str | None = None,
        on_error: Callable[[str], None] = lambda _message: None,
        permissions: PermissionGate | None = None,
    ) -> None:
        self.proof = proof
        self.actor = Actor(name=actor_name, run=proof)
        self._open_board = open_board
        self._board: Kanban | None = None
        self._tenant = tenant
        self._on_error = on_error
        self._parser: CommandParser | None = None
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._permissions = permissions
        self._board_lock = threading.Lock()
        self._parser_lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(_MAX_CONCURRENT)
        self._workers: set[threading.Thread] = set()
        self._workers_lock = threading.Lock()

    def start(self, directory: Path) -> Path:
        """Listen on ``directory``/s (the directory must be private to this user)."""
        path = directory / SOCKET_NAME
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(str(path))
        sock.listen(8)
        sock.settimeout(_ACCEPT_POLL_S)
        self._sock = sock
        self._thread = threading.Thread(target=self._serve, name="run-door", daemon=True)
        self._thread.start()
        return path

    def close(self) -> None:
        """Stop serving (a waiting permission request is withdrawn) and release the board."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=_CALL_TIMEOUT_S)
        if self._sock is not None:
            self._sock.close()
        with self._workers_lock:
            workers = list(self._workers)
        for worker in workers:
            worker.join(timeout=_CLOSE_WAIT_S)
        if self._board is not None:
            self._board.close()

    def _serve(self) -> None:
        assert self._sock is not None
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if not self._slots.acquire(blocking=False):
                with conn:
                    _send(conn, {"error": "the run's door is busy; try again"})
                continue
            worker = threading.Thread(
                target=self._answer, args=(conn,), name="run-door-call", daemon=True
            )
            with self._workers_lock:
                self._workers.add(worker)
            worker.start()

    def _answer(self, conn: socket.socket) -> None:
        try:
            with conn:
                conn.settimeout(_READ_TIMEOUT_S)
                try:
                    reply = self.handle(_receive(conn))
                except (OSError, ValueError, RecursionError) as exc:
                    reply = {"error": f"bad request: {exc}"}
                _send(conn, reply)
        finally:
            with self._workers_lock:
                self._workers.discard(threading.current_thread())
            self._slots.release()

    def handle(self, request: Mapping[str, Any]) -> Reply:
        """Answer one request: ``{"run_id", "token", "argv" | "tool"+"arguments"}``."""
        token = request.get("token")
        if request.get("run_id") != self.proof.run_id or not (
            isinstance(token, str) and hmac.compare_digest(token, self.proof.token)
        ):
            return {"error": "this capability belongs to another run; nothing was done"}
        try:
            if "argv" in request:
                return self._cli(request["argv"])
            if "tool" in request:
                return self._tool(request["tool"], request.get("arguments"))
        except Exception as exc:  # noqa: BLE001 - the agent gets one line, the operator the rest
            self._on_error(f"capability: {type(exc).__name__}: {exc}")
            return {"error": f"internal error: {type(exc).__name__}"}
        return {"error": "a request needs argv or tool"}

    def board(self) -> Kanban:
        """The board, opened on first use (its connection pool serves every thread)."""
        with self._board_lock:
            if self._board is None:
                self._board = self._open_board()
            return self._board

    def _cli(self, argv: object) -> Reply:
        from kanban_core.commands import CommandContext, build_parser, run_command
        from kanban_core.commands.render import render_result

        if not isinstance(argv, list) or not all(isinstance(word, str) for word in argv):
            return {"error": "argv must be a list of strings"}
        verb = argv[0] if argv else ""
        if verb not in WORKER_VERBS:
            allowed = ", ".join(sorted(WORKER_VERBS))
            message = (
                f"`{verb or '(no verb)'}` is not available to a worker (it may use: {allowed})"
            )
            return {"exit_code": 1, "stdout": "", "stderr": f"kanban: {message}\n"}
        with self._parser_lock:
            if self._parser is None:
                self._parser = build_parser(with_db_option=False, local_verbs=False)
        if verb == "create" and _chooses_a_place(self._parser, argv):
            # Else an agent could hand a directory or repository of its choosing to a
            # sibling's sandbox, writable; its subtasks get their assignee's workspace.
            message = "a worker may not give the tasks it creates a dir: workspace or a --repo"
            return {"exit_code": 1, "stdout": "", "stderr": f"kanban: {message}\n"}
        ctx = CommandContext(
            actor=self.actor,
            open_board=lambda _url: self.board(),
            environ={"KANBAN_TENANT": self._tenant or ""},
            interactive=False,
        )
        result = run_command(argv, ctx, parser=self._parser)
        stdout, stderr = render_result(result)
        return {"exit_code": result.exit_code, "stdout": stdout, "stderr": stderr}

    def _tool(self, name: object, arguments: object) -> Reply:
        # Imported here: only an agent that speaks MCP pays for the SDK.
        from kanban_core.dispatch.mcp_server import BoardTools

        if not isinstance(name, str) or not (arguments is None or isinstance(arguments, dict)):
            return {"error": "tool must be a name and arguments an object"}
        if name == PERMISSION_TOOL:
            return {"payload": self._permission(arguments)}
        tools = BoardTools(self.board(), self.actor, {"KANBAN_TENANT": self._tenant or ""})
        return {"payload": tools.call(name, arguments)}

    def _permission(self, arguments: Mapping[str, Any] | None) -> Reply:
        from kanban_core.dispatch import permission_tool

        if self._permissions is None:
            return permission_tool.deny("this run answers no permission requests; denied")
        gate = self._permissions
        # The door closing (the run ending) withdraws a request still waiting; the asker turns
        # a board that cannot record the question into a denial, never an allow.
        return permission_tool.reply(
            arguments, gate.asker(self.board(), self.actor), self._stop, gate.note
        )


def _send(conn: socket.socket, reply: Mapping[str, Any]) -> None:
    with suppress(OSError):
        conn.sendall(json.dumps(reply, ensure_ascii=False).encode() + b"\n")


def _chooses_a_place(parser: CommandParser, argv: list[str]) -> bool:
    try:
        args, _ = parser.parse_known_args(argv)
    except KanbanError:
        return False  # the command itself reports it
    workspace = getattr(args, "workspace", None)
    return bool(getattr(args, "repo", None)) or getattr(workspace, "path", None) is not None


def _receive(conn: socket.socket) -> Mapping[str, Any]:
    data = b""
    while not data.endswith(b"\n"):
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
        if len(data) > _MAX_MESSAGE:
            raise ValueError("message too large")
    request = json.loads(data)
    if not isinstance(request, dict):
        raise ValueError("a request is a JSON object")
    return request


# -- the agent's side -----------------------------------------------------------------------


class RunCredentials:
    """The socket and the run's proof, from the agent's environment."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.socket_path = environ.get(SOCKET_ENV, "")
        run_id, token = environ.get("KANBAN_RUN_ID", ""), environ.get("KANBAN_RUN_TOKEN", "")
        if not (self.socket_path and run_id.isdigit() and token):
            raise CapabilityError(
                f"worker credentials are incomplete: {SOCKET_ENV}, KANBAN_RUN_ID and "
                "KANBAN_RUN_TOKEN must all be set; nothing was done"
            )
        self.run_id = int(run_id)
        self.token = token

    def call(self, request: Mapping[str, Any]) -> Reply:
        """Send one request to the supervisor and return its reply."""
        message = {"run_id": self.run_id, "token": self.token, **request}
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                waits = request.get("tool") == PERMISSION_TOOL
                sock.settimeout(_PERMISSION_TIMEOUT_S if waits else _CALL_TIMEOUT_S)
                sock.connect(self.socket_path)
                sock.sendall(json.dumps(message, ensure_ascii=False).encode() + b"\n")
                sock.shutdown(socket.SHUT_WR)
                reply = _receive(sock)
        except (OSError, ValueError) as exc:
            raise CapabilityError(f"cannot reach this run's supervisor: {exc}") from None
        if "error" in reply:
            raise CapabilityError(str(reply["error"]))
        return dict(reply)


def worker_cli(argv: Sequence[str], environ: Mapping[str, str]) -> int | None:
    """Run the CLI through the run's capability; None when this is not a worker run.

    Inside a run without the capability the answer is a refusal, never the local operator:
    an agent that removes its variables loses the board, it does not gain it.
    """
    if not environ.get(SOCKET_ENV):
        if inside_run():
            sys.stderr.write(
                "kanban: this process runs inside a worker run, where the board is reachable "
                f"only through the run's capability ({SOCKET_ENV} and the run's credentials); "
                "nothing was done\n"
            )
            return 1
        return None
    try:
        credentials = RunCredentials(environ)
        if argv[:1] == ["mcp"]:
            from kanban_core.dispatch.mcp_server import serve_remote

            serve_remote(credentials.call, environ)
            return 0
        reply = credentials.call({"argv": list(argv)})
    except KanbanError as exc:
        sys.stderr.write(f"kanban: {exc}\n")
        return 1
    sys.stdout.write(str(reply.get("stdout", "")))
    sys.stderr.write(str(reply.get("stderr", "")))
    sys.stdout.flush()
    code = reply.get("exit_code", 1)
    return code if isinstance(code, int) else 1


def inside_run() -> bool:
    """Whether this process descends from a worker supervisor (or sits in a run's sandbox).

    Checked from facts an agent cannot remove: the sandbox's run directory, and the process
    tree (the supervisor adopts orphans, so daemonising does not leave it).
    """
    if Path(SANDBOX_RUN_DIR).exists():
        return True
    pid = os.getppid()
    for _ in range(_ANCESTORS_CHECKED):
        if pid <= 1:
            return False
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return False
        if tuple(word.decode(errors="replace") for word in argv[1:4]) == _SUPERVISOR_ARGV:
            return True
        # The parent pid is the second field after the parenthesised command name.
        pid = int(stat.rpartition(")")[2].split()[1])
    return False
