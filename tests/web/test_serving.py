"""Serving the board: inside ``kanban gateway``, on its own with ``kanban web``, and refusals."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.support.network import closed_port
from tests.support.processes import Lines, wait_for
from web.config import WebSettings, check_bind, load_web_settings
from web.errors import WebError

pytestmark = pytest.mark.e2e


def _env(home: Path) -> dict[str, str]:
    env = dict(os.environ, KANBAN_HOME=str(home), KANBAN_USER="ada")
    env.pop("KANBAN_DB_URL", None)
    env.pop("KANBAN_CONFIG", None)
    return env


def _kanban(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", *args],
        env=_env(home),
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    assert _kanban(home, "init").returncode == 0
    return home


def _config(home: Path, port: int, **web: object) -> None:
    lines = ["web:", f"  port: {port}"]
    web.setdefault("enabled", True)
    lines += [f"  {key}: {json.dumps(value)}" for key, value in web.items()]
    lines += ["access:", "  users:", "    telegram:7: viewer"]
    (home / "config.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")


class Served:
    """A ``kanban`` process serving the board."""

    def __init__(self, home: Path, port: int, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=_env(home),
        )
        assert self.proc.stderr is not None
        self.err = Lines(self.proc.stderr)
        self.url = f"http://127.0.0.1:{port}"
        self.clients: list[httpx.Client] = []
        wait_for(self._up, 30, "the web board to answer")

    def _up(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"exited {self.proc.returncode}: {self.err.rest()}")
        try:
            return httpx.get(self.url + "/signin", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> int:
        for client in self.clients:
            client.close()
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=20)
        self.err.rest()
        assert self.proc.stdin is not None
        assert self.proc.stderr is not None
        self.proc.stdin.close()
        self.proc.stderr.close()
        return code


@pytest.fixture
def port() -> int:
    return closed_port()


def _sign_in(home: Path, url: str, *extra: str) -> httpx.Client:
    made = _kanban(home, "web", "login-link", "--json", *extra)
    assert made.returncode == 0, made.stderr
    link = json.loads(made.stdout)["url"]
    assert link.startswith(url + "/auth/link?token=")
    client = httpx.Client(base_url=url, timeout=10)
    token = link.split("token=", 1)[1]
    assert client.get(link).status_code == 200
    assert client.post("/auth/link", data={"token": token}).status_code == 303
    return client


def test_the_gateway_serves_the_board_when_enabled(home: Path, port: int) -> None:
    _config(home, port)
    served = Served(home, port, "gateway")
    try:
        assert httpx.get(served.url + "/api/board", timeout=5).status_code == 401
        client = _sign_in(home, served.url)
        served.clients.append(client)
        me = client.get("/api/me").json()
        assert me["user"] == "console:ada"
        assert me["role"] == "admin"
        client.headers["X-CSRF-Token"] = me["csrf_token"]
        made = client.post("/api/tasks", json={"title": "from the web", "assignee": "demo"})
        assert made.status_code == 201
        # The gateway's own dispatcher runs the demo worker to done.
        ref = made.json()["task"]["id"]
        wait_for(
            lambda: client.get(f"/api/tasks/{ref}").json()["task"]["status"] == "done",
            30,
            "the demo worker to finish the task",
        )
    finally:
        assert served.stop() == 0


def test_kanban_web_serves_on_its_own_and_sessions_are_listed_and_revoked(
    home: Path, port: int
) -> None:
    # Disabled in the gateway: `kanban web` serves anyway (links are built on web.port).
    _config(home, port, enabled=False)
    served = Served(home, port, "web")
    try:
        client = _sign_in(home, served.url, "--user", "telegram:7")
        served.clients.append(client)
        assert client.get("/api/me").json()["role"] == "viewer"
        listed = _kanban(home, "web", "sessions", "--json")
        (session,) = json.loads(listed.stdout)
        assert session["user"] == "telegram:7"
        assert "token" not in json.dumps(session)
        revoked = _kanban(home, "web", "sessions", "--revoke", str(session["id"]))
        assert revoked.returncode == 0, revoked.stderr
        assert client.get("/api/me").status_code == 401
        again = _kanban(home, "web", "sessions", "--revoke", str(session["id"]))
        assert again.returncode == 1
        assert "no live web session" in again.stderr
    finally:
        assert served.stop() == 0


def test_a_link_for_someone_without_a_role_is_refused(home: Path) -> None:
    made = _kanban(home, "web", "login-link", "--user", "telegram:999")
    assert made.returncode == 1
    assert made.stderr.strip().endswith("is not in access.users; add it with a role first")


def test_a_remote_address_without_tls_is_refused_in_one_line(home: Path) -> None:
    refused = _kanban(home, "web", "--host", "0.0.0.0", "--port", str(closed_port()))  # noqa: S104
    assert refused.returncode == 1
    assert refused.stderr.count("\n") == 1
    assert "without TLS" in refused.stderr


def test_a_taken_port_is_one_line(home: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        refused = _kanban(home, "web", "--port", str(taken.getsockname()[1]))
    assert refused.returncode == 1
    assert "cannot listen" in refused.stderr


def test_check_bind_rules(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    check_bind(WebSettings(host="127.0.0.1"))
    check_bind(WebSettings(host="::1"))
    with pytest.raises(WebError, match="without TLS"):
        check_bind(WebSettings(host="192.0.2.1"))
    with pytest.raises(WebError, match="both tls_cert_file and tls_key_file"):
        check_bind(WebSettings(host="192.0.2.1", tls_cert_file="/x"))
    with pytest.raises(WebError, match="not a readable file"):
        check_bind(WebSettings(host="192.0.2.1", tls_cert_file="/x", tls_key_file="/y"))
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    cert.write_text("x")
    key.write_text("y")
    tls = WebSettings(host="192.0.2.1", tls_cert_file=str(cert), tls_key_file=str(key))
    check_bind(tls)
    assert tls.base_url == "https://192.0.2.1:8787"
    with caplog.at_level(logging.WARNING):
        check_bind(WebSettings(host="192.0.2.1", allow_insecure_remote=True))
    assert "without TLS" in caplog.text


def test_the_section_validates_and_defaults_off(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("web:\n  enabled: true\n  link_ttl_minutes: 5\n", encoding="utf-8")
    settings = load_web_settings(path)
    assert settings.enabled
    assert settings.link_ttl_s == 300
    assert not load_web_settings(tmp_path / "missing.yaml").enabled
    path.write_text("web:\n  enabeld: true\n", encoding="utf-8")
    from kanban_core.errors import ValidationError

    with pytest.raises(ValidationError, match="did you mean enabled"):
        load_web_settings(path)
    path.write_text("web:\n  link_ttl_minutes: 600\n", encoding="utf-8")
    with pytest.raises(ValidationError, match="link_ttl_minutes"):
        load_web_settings(path)


def test_secure_cookies_behind_an_https_proxy(backend) -> None:
    from dataclasses import replace

    assert not backend.secure_cookies
    proxied = replace(
        backend, settings=replace(backend.settings, public_url="https://board.example")
    )
    assert proxied.secure_cookies


def test_the_example_config_validates_with_the_board_off() -> None:
    example = Path(__file__).resolve().parents[2] / "config.example.yaml"
    settings = load_web_settings(example)
    assert not settings.enabled
    assert (settings.host, settings.port) == ("127.0.0.1", 8787)
    check_bind(settings)


def test_the_entry_points_load_without_the_web_stack() -> None:
    """A gateway with the board off (or without the web extra) never imports starlette."""
    probe = (
        "import sys, web.surface, web.cli, web.config; "
        "print(sorted(m for m in ('starlette', 'uvicorn') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_the_gateway_refuses_a_remote_board_without_tls(home: Path) -> None:
    _config(home, closed_port(), host="0.0.0.0")  # noqa: S104
    refused = _kanban(home, "gateway")
    assert refused.returncode == 1
    assert "without TLS" in refused.stderr
    assert "Traceback" not in refused.stderr
