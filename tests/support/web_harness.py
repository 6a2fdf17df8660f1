"""A real web board for browser tests, screenshots and the page benchmark: a board in a temporary
KANBAN_HOME, ``kanban web`` on a free 127.0.0.1 port, sign-in links from ``kanban web login-link``
and Debian's headless Chromium driven by Playwright (never a browser Playwright downloads)."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Playwright

CHROMIUM = Path(os.environ.get("KANBAN_TEST_CHROMIUM", "/usr/bin/chromium"))
#: The flags of a quiet, throwaway browser: no network of its own, no first-run, no GPU.
CHROMIUM_FLAGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
KANBAN = Path(sys.executable).with_name("kanban")
COMMAND_TIMEOUT_S = 60.0
START_TIMEOUT_S = 30.0
USER = "alice"
#: How long a browser test waits for any one thing on the page (milliseconds).
WAIT_MS = 15_000
#: Wide enough that every column shows: a drag never has to scroll the board.
DESK = {"width": 1600, "height": 1000}


def chromium_missing() -> str | None:
    """Why browser tests cannot run here (None when they can)."""
    if not CHROMIUM.exists():
        return (
            f"{CHROMIUM} is not installed (apt-get install chromium chromium-driver; .ci/run does)"
        )
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install -e '.[dev]')"
    return None


def free_port() -> int:
    """A port nobody listens on right now, on loopback."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Board:
    """One board's home and the ``kanban`` CLI against it."""

    def __init__(self, home: Path, env: Mapping[str, str] | None = None) -> None:
        self.home = home
        home.mkdir(parents=True, exist_ok=True)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("KANBAN_")}
        self.env.update({"KANBAN_HOME": str(home), "KANBAN_USER": USER})
        self.env.update(env or {})

    def run(self, *args: str) -> str:
        """Run ``kanban ARGS``; fails with its output unless it exits 0."""
        done = subprocess.run(
            [str(KANBAN), *args],
            env=self.env,
            cwd=self.home,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT_S,
            check=False,
        )
        if done.returncode != 0:
            raise AssertionError(f"kanban {args!r} exited {done.returncode}: {done.stderr.strip()}")
        return done.stdout

    def create(self, title: str, *args: str) -> str:
        """Create a task from the CLI; its id (``t12``)."""
        out = self.run("create", title, *args)
        found = re.search(r"\bt\d+\b", out)
        assert found, f"no task id in {out!r}"
        return found.group(0)


class WebServer:
    """``kanban web`` on 127.0.0.1 as a subprocess."""

    def __init__(self, board: Board) -> None:
        self.board = board
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = board.home / "web.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the server (again, on the same port) and wait until it answers."""
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [str(KANBAN), "web", "--host", "127.0.0.1", "--port", str(self.port)],
                env=self.board.env,
                cwd=self.board.home,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"kanban web exited {self.proc.returncode}: {self.output()}")
            try:
                if httpx.get(f"{self.base}/signin", timeout=1.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)  # polling a condition (the port answering), bounded by the deadline
        raise AssertionError(
            f"kanban web did not answer within {START_TIMEOUT_S}s: {self.output()}"
        )

    def output(self) -> str:
        """What the server printed so far."""
        return self.log.read_text(encoding="utf-8", errors="replace")[-4000:]

    def stop(self) -> None:
        """Stop it like Ctrl-C would."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=COMMAND_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def login_url(self, user: str | None = None) -> str:
        """A fresh single-use sign-in link (the local admin's, or ``user``'s of access.users),
        pointed at this server."""
        out = self.board.run("web", "login-link", *([f"--user={user}"] if user else []))
        found = re.search(r"token=([A-Za-z0-9_\-.~%]+)", out)
        assert found, f"no token in the login link output {out!r}"
        return f"{self.base}/auth/link?token={found.group(1)}"


@contextmanager
def web_board(
    home: Path,
    env: Mapping[str, str] | None = None,
    *,
    seed: Callable[[str], object] | None = None,
) -> Iterator[WebServer]:
    """A fresh board (``kanban init``, then ``seed(db_url)``) served by ``kanban web``."""
    board = Board(home, env)
    board.run("init")
    if seed is not None:
        seed(f"sqlite:///{home / 'kanban.db'}")
    server = WebServer(board)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def chromium(playwright: Playwright, profile: Path, **options: Any) -> Iterator[BrowserContext]:
    """Debian's Chromium, headless, with a fresh profile directory (its --user-data-dir)."""
    context = playwright.chromium.launch_persistent_context(
        str(profile),
        executable_path=str(CHROMIUM),
        headless=True,
        args=list(CHROMIUM_FLAGS),
        **options,
    )
    try:
        yield context
    finally:
        context.close()


def sign_in(context: BrowserContext, server: WebServer, user: str | None = None) -> Any:
    """A page signed in through a fresh link, showing the loaded board."""
    page = context.pages[0] if context.pages else context.new_page()
    page.goto(server.login_url(user))
    # Opening a link only shows a button (a chat's link preview must not spend it).
    page.click("#signin-confirm")
    page.wait_for_selector("body[data-loaded=true], body.signin:not(:has(#signin-confirm))")
    if page.locator("body.signin").count():
        refusal = " ".join(page.inner_text("main").split())
        raise AssertionError(f"the sign-in was refused: {refusal}")
    return page


@contextmanager
def signed_in_page(
    playwright: Playwright,
    server: WebServer,
    profile: Path,
    user: str | None = None,
    **options: Any,
) -> Iterator[Any]:
    """A page of a fresh desk-sized browser profile signed in as ``user`` (the local admin by
    default), its board loaded, waiting up to WAIT_MS for anything; ``options`` as chromium's."""
    with chromium(playwright, profile, **{"viewport": DESK, **options}) as context:
        context.set_default_timeout(WAIT_MS)
        yield sign_in(context, server, user)
