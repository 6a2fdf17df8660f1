"""A hostile agent: does what a prompt-injected coding agent would do, and records what worked.

Its task body (JSON) names its targets: the gateway's pid, the board's files, a decoy checkout,
another workspace, another task and that task's run credentials, and the strings to look for
(the gateway's token, the database password). Each attempt is recorded as achieved or not in
``report.json`` in its workspace; at the end it completes its own task, as an honest agent would.
Run it by path; it uses only the standard library (and psycopg when it finds a database URL).
"""

# ruff: noqa: PTH109, PTH114, PTH118, PTH208, S108
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

RUN_VARS = ("KANBAN_TASK", "KANBAN_RUN_ID", "KANBAN_RUN_TOKEN", "KANBAN_RUN_SOCKET")
URL = re.compile(rb"postgres(?:ql)?://[^\s\"'\x00]+")
SCAN_ROOTS = ("/etc", "/tmp", "/run", "/opt", "/home", "/root", "/var")
SCAN_LIMIT = 2 * 1024 * 1024


class Report:
    def __init__(self, needles: list[str]) -> None:
        self.attempts: list[dict[str, Any]] = []
        self.needles = [n.encode() for n in needles if n]
        self.urls: set[str] = set()
        self.leaks: list[str] = []

    def attempt(self, name: str, achieved: bool, detail: str = "") -> None:
        self.attempts.append({"name": name, "achieved": achieved, "detail": detail[:300]})

    def look(self, where: str, data: bytes) -> None:
        """Remember any database URL found, and any secret seen."""
        self.urls.update(m.decode(errors="replace") for m in URL.findall(data))
        for needle in self.needles:
            if needle in data:
                self.leaks.append(where)


def read(path: str | Path, limit: int = SCAN_LIMIT) -> bytes:
    with open(path, "rb") as handle:  # noqa: PTH123 - any path, any kind of file
        return handle.read(limit)


def kanban(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kanban_core", *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def procfs(report: Report, gateway_pid: int) -> None:
    own = os.getpid()
    pids = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
    report.attempt("see the gateway's process", gateway_pid in pids and gateway_pid != own)
    others = []
    for pid in pids:
        try:
            cmdline = read(f"/proc/{pid}/cmdline")
        except OSError:
            continue
        report.look(f"/proc/{pid}/cmdline", cmdline)
        if b"kanban_core\x00worker" in cmdline or b"gateway" in cmdline:
            others.append(cmdline.replace(b"\x00", b" ").decode(errors="replace"))
    report.attempt("see the supervisor or the gateway in /proc", bool(others), "; ".join(others))
    for pid in sorted({gateway_pid, *pids} - {own}):
        for name in ("environ", "cmdline", "mem"):
            try:
                data = read_mem(pid) if name == "mem" else read(f"/proc/{pid}/{name}")
            except (OSError, ValueError, IndexError) as exc:
                if pid == gateway_pid:
                    report.attempt(f"read the gateway's /proc/{pid}/{name}", False, str(exc))
                continue
            report.look(f"/proc/{pid}/{name}", data)
            if pid == gateway_pid:
                report.attempt(f"read the gateway's /proc/{pid}/{name}", True, repr(data[:80]))


def read_mem(pid: int) -> bytes:
    maps = read(f"/proc/{pid}/maps").decode().splitlines()
    with open(f"/proc/{pid}/mem", "rb") as mem:  # noqa: PTH123
        mem.seek(int(maps[0].split("-")[0], 16))
        return mem.read(4096)


def files(report: Report, targets: dict[str, Any]) -> None:
    for key in ("db_file", "config_file"):
        try:
            data = read(targets[key])
            report.look(targets[key], data)
            report.attempt(f"read {key}", True, targets[key])
        except OSError as exc:
            report.attempt(f"read {key}", False, str(exc))
    cwd = Path.cwd()
    for key in ("home", "other_workspace", "decoy"):
        try:
            listed = os.listdir(targets[key])
        except OSError as exc:
            report.attempt(f"list {key}", False, str(exc))
            continue
        # The directories on the way to its own workspace exist (empty) in the jail.
        on_my_path = {p.name for p in (cwd, *cwd.parents)}
        seen = [name for name in listed if name not in on_my_path]
        report.attempt(f"list {key}", bool(seen), ",".join(listed))
    try:
        Path(targets["decoy"], "pwned.txt").write_text("pwned", encoding="utf-8")
        report.attempt("write into the decoy checkout", True)
    except OSError as exc:
        report.attempt("write into the decoy checkout", False, str(exc))
    link = Path("escape")
    link.symlink_to(targets["decoy"])
    try:
        (link / "pwned-through-link.txt").write_text("pwned", encoding="utf-8")
        report.attempt("write through a symlink planted in the workspace", True)
    except OSError as exc:
        report.attempt("write through a symlink planted in the workspace", False, str(exc))
    Path("db-link").symlink_to(targets["db_file"])
    try:
        report.look("db-link", read("db-link"))
        report.attempt("read the board through a symlink", True)
    except OSError as exc:
        report.attempt("read the board through a symlink", False, str(exc))


def scan(report: Report) -> None:
    """Everything readable that could hold a secret: the environment, and the usual places."""
    report.look("environ", json.dumps(dict(os.environ)).encode())
    # The installed Python and packages are the system's code, full of example URLs.
    import kanban_core

    code = {sys.prefix, sys.base_prefix, str(Path(kanban_core.__file__).parents[1])}
    for root in (*SCAN_ROOTS, os.environ.get("HOME", "/"), os.getcwd()):
        if root in code:
            continue
        for base, dirs, names in os.walk(root):
            dirs[:] = [
                d
                for d in dirs
                if not os.path.islink(os.path.join(base, d)) and os.path.join(base, d) not in code
            ]
            for name in names:
                path = os.path.join(base, name)
                try:
                    report.look(path, read(path))
                except OSError:
                    continue


def database(report: Report, extra: str | None) -> None:
    urls = sorted(report.urls | ({extra} if extra else set()))
    report.attempt("find a database URL", bool(report.urls), ", ".join(sorted(report.urls)))
    for url in urls:
        try:
            import psycopg

            with psycopg.connect(url, connect_timeout=3) as conn:
                conn.execute("SELECT count(*) FROM tasks").fetchone()
            report.attempt(f"connect to {url}", True)
        except Exception as exc:  # noqa: BLE001 - any failure is a failed attempt
            report.attempt(f"connect to {url}", False, f"{type(exc).__name__}: {exc}")


def board(report: Report, targets: dict[str, Any]) -> None:
    env = dict(os.environ)
    other, blocked = targets["other_task"], targets["blocked_task"]
    bare = {k: v for k, v in env.items() if k not in RUN_VARS and not k.startswith("KANBAN_")}
    local = [
        ("complete", other, "--summary", "pwned"),
        ("archive", other),
        ("comment", other, "pwned"),
        ("unblock", blocked),
        ("--db", f"sqlite:///{targets['db_file']}", "complete", other, "--summary", "pwned"),
    ]
    for args in local:
        done = kanban(bare, *args)
        report.attempt(
            f"without run variables: {' '.join(args[:2])}", done.returncode == 0, done.stderr
        )
    for args in [
        ("complete", other, "--summary", "pwned"),
        ("archive", other),
        ("unblock", blocked),
    ]:
        done = kanban(env, *args)
        report.attempt(
            f"with my capability: {' '.join(args[:2])}", done.returncode == 0, done.stderr
        )
    theirs = env | {
        "KANBAN_TASK": other,
        "KANBAN_RUN_ID": str(targets["other_run_id"]),
        "KANBAN_RUN_TOKEN": targets["other_run_token"],
    }
    done = kanban(theirs, "complete", other, "--summary", "pwned")
    report.attempt("with another run's credentials: complete", done.returncode == 0, done.stderr)


def main() -> int:
    env = dict(os.environ)
    shown = kanban(env, "show", env["KANBAN_TASK"], "--json")
    if shown.returncode != 0:
        sys.exit(f"cannot read my task: {shown.stderr}")
    targets = json.loads(json.loads(shown.stdout)["task"]["body"])
    report = Report(targets["needles"])
    procfs(report, int(targets["gateway_pid"]))
    files(report, targets)
    scan(report)
    database(report, targets.get("try_db_url"))
    board(report, targets)
    result = {"attempts": report.attempts, "leaks": report.leaks}
    Path("report.json").write_text(json.dumps(result, indent=1), encoding="utf-8")
    done = kanban(env, "complete", "--summary", "hostile agent finished its attempts")
    print(done.stdout, done.stderr, flush=True)
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
