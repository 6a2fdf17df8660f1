"""Named leases on the database clock: one owner at a time, each change of owner fenced.

A lease names something only one process may do at a time (a platform connection, the leader's
maintenance). Expiry is judged by the database's clock, never a host's, so hosts whose clocks
disagree still agree on who holds what. Every call is one statement; a lease is never deleted,
so its fencing counter only grows: each change of owner (or a re-take after expiry) adds one,
and a stale owner (renewing, or releasing, under an older fence) is refused.
"""

from __future__ import annotations

from dataclasses import dataclass

from kanban_core.errors import ValidationError
from kanban_core.storage import Database, Query

MAX_NAME = 200
#: The lease naming the leader, and the prefix of a platform connection's lease.
LEADER_LEASE = "leader"
PLATFORM_LEASE_PREFIX = "platform:"

#: A revoked host holds nothing: it can neither take a lease nor renew one (its gateway stops
#: the duty at its next renewal and releases it, so a standby takes over at once).
_HOST_NOT_REVOKED = (
    "NOT EXISTS (SELECT 1 FROM hosts h WHERE h.id = {host} AND h.revoked_ms IS NOT NULL)"
)
# The owner keeps its fence while its lease is live; anyone else (or the owner after expiry)
# takes it with the next fence. The WHERE refuses a live lease held by someone else.
_ACQUIRE = Query(
    "lease_acquire",
    "INSERT INTO leases (name, owner, host_id, expires_ms, acquired_ms, fence) "
    "SELECT :name, :owner, :host_id, {now} + :ttl_ms, {now}, 1 "
    f"WHERE {_HOST_NOT_REVOKED.format(host=':host_id')} "
    "ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, host_id = excluded.host_id, "
    "expires_ms = excluded.expires_ms, "
    "acquired_ms = CASE WHEN leases.owner = excluded.owner AND leases.expires_ms > {now} "
    "THEN leases.acquired_ms ELSE excluded.acquired_ms END, "
    "fence = CASE WHEN leases.owner = excluded.owner AND leases.expires_ms > {now} "
    "THEN leases.fence ELSE leases.fence + 1 END "
    "WHERE (leases.owner = excluded.owner OR leases.expires_ms <= {now}) "
    f"AND {_HOST_NOT_REVOKED.format(host='excluded.host_id')} "
    "RETURNING fence, expires_ms",
)
_RENEW = Query(
    "lease_renew",
    "UPDATE leases SET expires_ms = {now} + :ttl_ms "
    "WHERE name = :name AND owner = :owner AND fence = :fence AND expires_ms > {now} "
    f"AND {_HOST_NOT_REVOKED.format(host='leases.host_id')} "
    "RETURNING fence, expires_ms",
)
# Released by expiring it now: the row (and its fence) stays for the next owner.
_RELEASE = Query(
    "lease_release",
    "UPDATE leases SET expires_ms = {now} "
    "WHERE name = :name AND owner = :owner AND fence = :fence AND expires_ms > {now}",
)
_LIST = Query(
    "lease_list",
    "SELECT name, owner, expires_ms, acquired_ms, fence, {now}, host_id FROM leases ORDER BY name",
)


@dataclass(frozen=True, slots=True)
class Held:
    """A lease this caller holds: its fence and when it runs out (database clock, epoch ms)."""

    name: str
    owner: str
    fence: int
    expires_ms: int


@dataclass(frozen=True, slots=True)
class LeaseState:
    """A row of the lease table as seen at ``now_ms`` (database clock)."""

    name: str
    owner: str
    expires_ms: int
    acquired_ms: int
    fence: int
    now_ms: int
    #: The enrolled host whose gateway holds (or last held) it; None: the implicit host.
    host_id: int | None = None

    @property
    def live(self) -> bool:
        """Whether its owner still holds it."""
        return self.expires_ms > self.now_ms


def acquire(
    db: Database, name: str, owner: str, *, ttl_s: float, host_id: int | None = None
) -> Held | None:
    """Take or keep ``name`` for ``ttl_s`` seconds; None when someone else holds it.

    ``host_id`` is the enrolled host the owner runs on (what ``kanban hosts`` shows)."""
    _check(name, owner, ttl_s)
    params = {"name": name, "owner": owner, "ttl_ms": int(ttl_s * 1000), "host_id": host_id}
    with db.transaction(write=True) as tx:
        row = tx.fetchone(_ACQUIRE, params)
    return None if row is None else Held(name, owner, int(row[0]), int(row[1]))


def renew(db: Database, held: Held, *, ttl_s: float) -> Held | None:
    """Extend a lease still held under its fence; None when it expired or was taken."""
    _check(held.name, held.owner, ttl_s)
    params = {
        "name": held.name,
        "owner": held.owner,
        "fence": held.fence,
        "ttl_ms": int(ttl_s * 1000),
    }
    with db.transaction(write=True) as tx:
        row = tx.fetchone(_RENEW, params)
    return None if row is None else Held(held.name, held.owner, int(row[0]), int(row[1]))


def release(db: Database, held: Held) -> bool:
    """Give the lease up at once, so a standby takes it on its next try; False if already lost."""
    params = {"name": held.name, "owner": held.owner, "fence": held.fence}
    with db.transaction(write=True) as tx:
        return tx.execute(_RELEASE, params) > 0


def all_leases(db: Database) -> list[LeaseState]:
    """Every lease there has been, live or expired, by name."""
    with db.transaction(write=False) as tx:
        rows = tx.fetchall(_LIST)
    return [
        LeaseState(
            name=str(r[0]),
            owner=str(r[1]),
            expires_ms=int(r[2]),
            acquired_ms=int(r[3]),
            fence=int(r[4]),
            now_ms=int(r[5]),
            host_id=None if r[6] is None else int(r[6]),
        )
        for r in rows
    ]


def _check(name: str, owner: str, ttl_s: float) -> None:
    if not name or len(name) > MAX_NAME or not owner or len(owner) > MAX_NAME:
        raise ValidationError(f"a lease name and owner are 1 to {MAX_NAME} characters")
    if ttl_s <= 0:
        raise ValidationError("a lease lasts a positive number of seconds")
