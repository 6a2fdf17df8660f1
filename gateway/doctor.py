"""``kanban doctor``: is this host ready to serve the board, and if not, what is wrong, in words.

Checks the database (reachable, at the schema this code expects), this machine's enrollment
(its host.json belongs to this board, its host is not revoked), the leases (who runs each
platform connection and who leads, and leases held for a host that is missing or revoked),
and each enabled platform's credentials (present in the environment; never printed) and server
(reachable, with a short timeout). A check fails, warns or passes; only failures make the exit
code 1.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from gateway.config import load_gateway_config
from gateway.connections import LOCAL_PLATFORMS
from gateway.errors import ConfigError
from gateway.leases import LEADER, platform_lease
from kanban_core import KanbanError, KernelSettings, enrollment
from kanban_core.board import hosts, identity, leases
from kanban_core.storage import Database
from kanban_core.storage.database import redact_url
from kanban_core.storage.migrate import schema_version
from kanban_core.storage.migrations import HEAD

#: Seconds to wait for a platform's server to answer.
REACH_TIMEOUT_S = 3.0


class Status(enum.Enum):
    """How a check went; only FAIL makes the exit code 1."""

    OK = "ok"
    WARN = "warn"
    FAIL = "FAIL"


@dataclass(frozen=True, slots=True)
class Check:
    """One finding: what was checked, how it went, and what it means."""

    name: str
    status: Status
    detail: str

    def to_json(self) -> dict[str, str]:
        return {"check": self.name, "status": self.status.value.lower(), "detail": self.detail}


def diagnose(
    settings: KernelSettings, config_file: Path, environ: Mapping[str, str]
) -> list[Check]:
    """Every check, in order; never raises for a problem it can name."""
    checks = _database(settings)
    try:
        gateway_config = load_gateway_config(config_file)
    except ConfigError as exc:
        return [*checks, Check("config", Status.FAIL, "; ".join(exc.problems))]
    platforms = [p for p in gateway_config.enabled_platforms if p not in LOCAL_PLATFORMS]
    if checks[-1].status is Status.OK:
        checks += _board_identity(settings)
        checks += _leases(settings.db_url, platforms, _missing_after_ms(config_file, environ))
    for name in platforms:
        checks += _platform(name, _section(config_file, name), environ)
    return checks


def _database(settings: KernelSettings) -> list[Check]:
    where = redact_url(settings.db_url)
    db = Database(settings.db_url)
    try:
        version = schema_version(db)
    except KanbanError as exc:
        return [Check("database", Status.FAIL, f"cannot reach {where}: {_first_line(exc)}")]
    finally:
        db.close()
    if version is None:
        return [Check("database", Status.FAIL, f"{where} has no board yet: run `kanban init`")]
    if version != HEAD:
        return [
            Check(
                "database",
                Status.FAIL,
                f"{where} is at schema {version}, this version needs {HEAD}: "
                "run any `kanban` command once (it migrates) or upgrade this host",
            )
        ]
    return [Check("database", Status.OK, f"{where} reachable, schema {version} (current)")]


def _board_identity(settings: KernelSettings) -> list[Check]:
    """Whether this machine's host.json belongs to this board, and its host may act."""
    try:
        host = enrollment.load(settings.home)
    except KanbanError as exc:
        return [Check("host", Status.FAIL, str(exc))]
    if host is None:
        return [Check("host", Status.OK, "not enrolled: this machine is the implicit host")]
    db = Database(settings.db_url)
    try:
        with db.transaction(write=False) as tx:
            board = identity.board_id(tx)
            known = {h.host_id: h for h in hosts.list_hosts(tx)}
    finally:
        db.close()
    problem = enrollment.board_mismatch(settings.home, host, board)
    if problem is not None:
        return [Check("host", Status.FAIL, problem)]
    listed = known.get(host.host_id)
    if listed is None or listed.name != host.name:
        detail = f"{enrollment.path(settings.home)} names host {host.name!r}, unknown here"
        return [Check("host", Status.FAIL, detail + ": remove it and run `kanban host enroll`")]
    if listed.state is hosts.HostState.REVOKED:
        detail = f"host {host.name!r} is revoked: it claims nothing (an admin may --readmit it)"
        return [Check("host", Status.FAIL, detail)]
    if host.board_id is None:
        detail = (
            f"enrolled as {host.name!r}, but host.json names no board (enrolled before boards "
            "had an identity), so it is not checked: re-enroll this machine to record it"
        )
        return [Check("host", Status.WARN, detail)]
    return [Check("host", Status.OK, f"enrolled as {host.name!r} on this board ({board})")]


def _missing_after_ms(config_file: Path, environ: Mapping[str, str]) -> int:
    """When a host counts as missing, as ``kanban hosts`` judges it (three dispatch intervals)."""
    from kanban_core.config import load_config
    from kanban_core.dispatch.health import stale_after_s

    try:
        interval = load_config(config_file, environ).dispatcher.dispatch_interval_seconds
    except KanbanError:
        return hosts.MISSING_AFTER_MS
    return int(stale_after_s(float(interval)) * 1000)


def _leases(db_url: str, platforms: list[str], missing_after_ms: int) -> list[Check]:
    db = Database(db_url)
    try:
        states = {s.name: s for s in leases.all_leases(db)}
        with db.transaction(write=False) as tx:
            listed = hosts.list_hosts(tx, missing_after_ms=missing_after_ms)
            known = {h.host_id: h for h in listed}
    finally:
        db.close()
    checks = []
    for name in [LEADER, *(platform_lease(p) for p in platforms)]:
        state = states.get(name)
        holder = known.get(state.host_id) if state and state.host_id is not None else None
        if state is None:
            checks.append(Check(name, Status.WARN, "never held: no gateway has run it yet"))
        elif state.live and holder is not None and holder.state is not hosts.HostState.LIVE:
            # Stale: its host is revoked, or has not been seen, yet the lease is renewed.
            detail = (
                f"held by {state.owner} on host {holder.name!r}, which is "
                f"{holder.state.value}: a stale lease (it runs out unless that gateway renews it)"
            )
            checks.append(Check(name, Status.WARN, detail))
        elif state.live:
            left = (state.expires_ms - state.now_ms) / 1000
            where = f" on host {holder.name!r}" if holder is not None else ""
            checks.append(
                Check(
                    name,
                    Status.OK,
                    f"held by {state.owner}{where} (fence {state.fence}, {left:.0f}s left)",
                )
            )
        else:
            ago = (state.now_ms - state.expires_ms) / 1000
            checks.append(
                Check(
                    name,
                    Status.WARN,
                    f"expired {ago:.0f}s ago (last held by {state.owner}): "
                    "no gateway is running it now",
                )
            )
    return checks


def _section(config_file: Path, platform: str) -> Any:
    from kanban_core.config.model import load_file

    return getattr(load_file(config_file).platforms, platform)  # type: ignore[attr-defined]


def _platform(name: str, section: Any, environ: Mapping[str, str]) -> list[Check]:
    missing = [var for var in section.secret_env() if not environ.get(var)]
    if missing:
        detail = f"credentials missing: set {', '.join(missing)} in this host's environment"
        return [Check(f"platform {name}", Status.FAIL, detail)]
    base = getattr(section, "api_base_url", None)
    if base is None:
        return [Check(f"platform {name}", Status.OK, "credentials present")]
    started = time.monotonic()
    try:
        # The server's root, never an authenticated path: no secret leaves this host here.
        response = httpx.get(str(base), timeout=REACH_TIMEOUT_S, follow_redirects=False)
    except httpx.HTTPError as exc:
        detail = f"credentials present, but {base} is unreachable ({type(exc).__name__})"
        return [Check(f"platform {name}", Status.FAIL, detail)]
    took = (time.monotonic() - started) * 1000
    detail = f"credentials present; {base} answered (HTTP {response.status_code}, {took:.0f} ms)"
    return [Check(f"platform {name}", Status.OK, detail)]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def render(checks: list[Check]) -> list[str]:
    """One line per check, failures first in the eye: ``FAIL database: …``."""
    lines = [f"{c.status.value:<4} {c.name}: {c.detail}" for c in checks]
    failed = sum(c.status is Status.FAIL for c in checks)
    lines.append("all good" if not failed else f"{failed} problem(s) found")
    return lines
