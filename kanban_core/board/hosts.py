"""Enrolled hosts: enrollment, heartbeats by the database clock, revocation and placement.

A host proves itself with the secret it got at enrollment (stored hashed). The placement SQL
below is joined into every claim statement, so a host claims only what it may run: unplaced
work, work bound to it, and work for a label it carries; a revoked host (or a wrong secret)
claims nothing, and the runs of a revoked host are fenced like stale attempts.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Sequence
from dataclasses import dataclass

from kanban_core.board.leases import LEADER_LEASE, PLATFORM_LEASE_PREFIX
from kanban_core.board.rows import hash_token
from kanban_core.board.validation import MAX_NAME_CHARS
from kanban_core.errors import PermissionDenied, ValidationError
from kanban_core.storage import Query, Transaction

#: A host not heard from for this long is reported missing, at the least: ``kanban hosts``
#: uses three dispatch intervals when that is longer (a host is seen on every dispatcher pass;
#: the same rule that shows a silent dispatcher as stopped). See the README's "Several hosts".
MISSING_AFTER_MS = 120_000
MAX_LABELS = 16
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:+@-]*$")

#: What a claimer with no enrolled host may run: unplaced work only.
IMPLICIT_PLACEMENT = " AND tasks.host_id IS NULL AND tasks.host_label IS NULL"
#: What an enrolled host may run, and the proof that it is enrolled and not revoked.
HOST_PLACEMENT = (
    " AND (tasks.host_id IS NULL AND tasks.host_label IS NULL OR tasks.host_id = :host_id"
    " OR tasks.host_id IS NULL AND tasks.host_label IN"
    " (SELECT hl.label FROM host_labels hl WHERE hl.host_id = :host_id))"
    " AND EXISTS (SELECT 1 FROM hosts h WHERE h.id = :host_id"
    " AND h.secret_hash = :host_secret AND h.revoked_ms IS NULL)"
)
#: Joined into a run's fence: a run whose host is revoked can no longer write.
HOST_NOT_REVOKED = (
    " AND NOT EXISTS (SELECT 1 FROM hosts h WHERE h.id = r.host_id AND h.revoked_ms IS NOT NULL)"
)


@dataclass(frozen=True, slots=True)
class HostIdentity:
    """This machine's enrollment, read from its local file (never from an argument)."""

    host_id: int
    name: str
    secret: str
    #: The board it was enrolled on (None: a file from before boards had an identity).
    board_id: str | None = None

    @property
    def secret_hash(self) -> str:
        """The secret as the board stores it."""
        return hash_token(self.secret)


class HostState(enum.Enum):
    """How a host looks from the board."""

    LIVE = "live"
    MISSING = "missing"
    REVOKED = "revoked"


@dataclass(frozen=True, slots=True)
class HostInfo:
    """One row of ``kanban hosts``."""

    host_id: int
    name: str
    labels: tuple[str, ...]
    enrolled_ms: int
    last_seen_ms: int | None
    revoked_ms: int | None
    running: int
    state: HostState
    #: The platform connections its gateway holds now (live ``platform:<name>`` leases).
    platforms: tuple[str, ...] = ()
    #: Whether its gateway holds the ``leader`` lease now.
    leader: bool = False

    def to_json(self) -> dict[str, object]:
        """The stable JSON form."""
        return {
            "id": self.host_id,
            "name": self.name,
            "labels": list(self.labels),
            "enrolled_ms": self.enrolled_ms,
            "last_seen_ms": self.last_seen_ms,
            "revoked_ms": self.revoked_ms,
            "running": self.running,
            "state": self.state.value,
            "platforms": list(self.platforms),
            "leader": self.leader,
        }


_BY_NAME = Query("host_by_name", "SELECT id, revoked_ms FROM hosts WHERE name = :name")
_INSERT = Query(
    "insert_host",
    "INSERT INTO hosts (name, secret_hash, enrolled_ms, last_seen_ms) "
    "VALUES (:name, :secret_hash, {now}, {now}) RETURNING id",
)
_READMIT = Query(
    "readmit_host",
    "UPDATE hosts SET secret_hash = :secret_hash, revoked_ms = NULL, enrolled_ms = {now}, "
    "last_seen_ms = {now} WHERE id = :id AND revoked_ms IS NOT NULL",
)
_DROP_LABELS = Query("drop_host_labels", "DELETE FROM host_labels WHERE host_id = :id")
_ADD_LABEL = Query(
    "add_host_label", "INSERT INTO host_labels (host_id, label) VALUES (:id, :label)"
)
_HEARTBEAT = Query(
    "host_heartbeat",
    "UPDATE hosts SET last_seen_ms = {now} WHERE id = :id AND secret_hash = :secret_hash "
    "AND revoked_ms IS NULL",
)
_REVOKE = Query(
    "revoke_host",
    "UPDATE hosts SET revoked_ms = {now} WHERE name = :name AND revoked_ms IS NULL",
)
_LIST = Query(
    "list_hosts",
    "SELECT h.id, h.name, h.enrolled_ms, h.last_seen_ms, h.revoked_ms, {now}, "
    "(SELECT count(*) FROM task_runs r WHERE r.host_id = h.id AND r.ended_ms IS NULL) "
    "FROM hosts h ORDER BY h.name",
)
_HELD_LEASES = Query(
    "host_leases",
    "SELECT host_id, name FROM leases WHERE host_id IS NOT NULL AND expires_ms > {now} "
    "ORDER BY name",
)
_ALL_LABELS = Query("all_host_labels", "SELECT host_id, label FROM host_labels ORDER BY label")
_LABEL_CARRIED = Query(
    "label_carried",
    "SELECT 1 FROM host_labels l JOIN hosts h ON h.id = l.host_id "
    "WHERE l.label = :label AND h.revoked_ms IS NULL",
)
_PLACE = Query(
    "place_task", "UPDATE tasks SET host_id = :host_id, host_label = :label WHERE id = :id"
)
_RUN_HOST = Query(
    "run_host_revoked",
    "SELECT h.name FROM task_runs r JOIN hosts h ON h.id = r.host_id "
    "WHERE r.id = :run_id AND h.revoked_ms IS NOT NULL",
)


def clean_host_name(value: str, *, field: str = "host") -> str:
    """A host or label name: letters, digits and ``_ . : + @ -``."""
    name = value.strip()
    if not name or len(name) > MAX_NAME_CHARS or not _NAME.match(name):
        raise ValidationError(
            f"{field} {value!r} is not a valid name (letters, digits, _ . : + @ -; "
            f"at most {MAX_NAME_CHARS} characters)"
        )
    return name


def clean_labels(values: Sequence[str]) -> tuple[str, ...]:
    """Labels, deduplicated in order."""
    labels = tuple(dict.fromkeys(clean_host_name(v, field="label") for v in values))
    if len(labels) > MAX_LABELS:
        raise ValidationError(f"at most {MAX_LABELS} labels per host (got {len(labels)})")
    return labels


def enroll(
    tx: Transaction, *, name: str, labels: tuple[str, ...], secret: str, readmit: bool
) -> int:
    """Register a host (or, with ``readmit``, give a revoked one a new secret); its id."""
    row = tx.fetchone(_BY_NAME, {"name": name})
    if row is not None and row[1] is None:
        raise ValidationError(f"a host named {name!r} is already enrolled; pick another --name")
    if row is not None and not readmit:
        raise PermissionDenied(
            f"host {name!r} was revoked; re-enrolling it needs an admin (--readmit)"
        )
    if row is None and readmit:
        raise ValidationError(f"no revoked host named {name!r} to readmit")
    params = {"name": name, "secret_hash": hash_token(secret)}
    if row is None:
        host_id = int(tx.scalar(_INSERT, params))
    else:
        host_id = int(row[0])
        tx.execute(_READMIT, params | {"id": host_id})
        tx.execute(_DROP_LABELS, {"id": host_id})
    for label in labels:
        tx.execute(_ADD_LABEL, {"id": host_id, "label": label})
    return host_id


def heartbeat(tx: Transaction, identity: HostIdentity) -> bool:
    """Record the host as seen now (database clock); False if it is revoked or unknown."""
    return bool(
        tx.execute(_HEARTBEAT, {"id": identity.host_id, "secret_hash": identity.secret_hash})
    )


def revoke(tx: Transaction, name: str) -> None:
    """Revoke a host: it claims nothing more and its open runs can no longer write."""
    if tx.execute(_REVOKE, {"name": name}):
        return
    if tx.fetchone(_BY_NAME, {"name": name}) is None:
        raise ValidationError(f"no host named {name!r}; `kanban hosts` lists them")
    raise ValidationError(f"host {name!r} is already revoked")


def list_hosts(tx: Transaction, *, missing_after_ms: int = MISSING_AFTER_MS) -> list[HostInfo]:
    """Every host, by name, with the leases its gateway holds now."""
    labels: dict[int, list[str]] = {}
    for host_id, label in tx.fetchall(_ALL_LABELS):
        labels.setdefault(int(host_id), []).append(label)
    held: dict[int, list[str]] = {}
    for host_id, lease in tx.fetchall(_HELD_LEASES):
        held.setdefault(int(host_id), []).append(str(lease))
    out = []
    for host_id, name, enrolled, seen, revoked, now, running in tx.fetchall(_LIST):
        if revoked is not None:
            state = HostState.REVOKED
        elif seen is not None and int(now) - int(seen) <= missing_after_ms:
            state = HostState.LIVE
        else:
            state = HostState.MISSING
        out.append(
            HostInfo(
                int(host_id),
                name,
                tuple(labels.get(int(host_id), ())),
                int(enrolled),
                None if seen is None else int(seen),
                None if revoked is None else int(revoked),
                int(running),
                state,
                tuple(
                    n.removeprefix(PLATFORM_LEASE_PREFIX)
                    for n in held.get(int(host_id), ())
                    if n.startswith(PLATFORM_LEASE_PREFIX)
                ),
                LEADER_LEASE in held.get(int(host_id), ()),
            )
        )
    return out


def resolve_placement(
    tx: Transaction, host: str | None, label: str | None
) -> tuple[int | None, str | None]:
    """A task's placement from names: (host id, label); unknown or revoked ones are refused."""
    if host is not None and label is not None:
        raise ValidationError("a task names a host or a label, not both")
    if host is not None:
        name = clean_host_name(host)
        row = tx.fetchone(_BY_NAME, {"name": name})
        if row is None:
            raise ValidationError(f"no host named {name!r}; `kanban hosts` lists them")
        if row[1] is not None:
            raise ValidationError(f"host {name!r} is revoked; it runs nothing")
        return int(row[0]), None
    if label is not None:
        clean = clean_host_name(label, field="label")
        if tx.fetchone(_LABEL_CARRIED, {"label": clean}) is None:
            raise ValidationError(f"no enrolled host carries the label {clean!r}")
        return None, clean
    return None, None


def place(tx: Transaction, task_id: int, host_id: int | None, label: str | None) -> None:
    """Set a task's placement."""
    tx.execute(_PLACE, {"id": task_id, "host_id": host_id, "label": label})


def revoked_host_of_run(tx: Transaction, run_id: int) -> str | None:
    """The name of the revoked host a run belongs to, if it does."""
    row = tx.fetchone(_RUN_HOST, {"run_id": run_id})
    return None if row is None else str(row[0])
