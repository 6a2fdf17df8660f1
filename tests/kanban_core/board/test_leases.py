"""Named leases on both databases: one owner, expiry by the database clock, fencing."""

from __future__ import annotations

import pytest

from kanban_core.board import leases
from kanban_core.board.kanban import Kanban
from kanban_core.errors import ValidationError
from tests.support.processes import wait_for


def test_one_owner_at_a_time(board: Kanban) -> None:
    held = leases.acquire(board.db, "platform:telegram", "a", ttl_s=30)
    assert held is not None
    assert held.fence == 1
    assert leases.acquire(board.db, "platform:telegram", "b", ttl_s=30) is None
    again = leases.acquire(board.db, "platform:telegram", "a", ttl_s=30)
    assert again is not None
    assert again.fence == 1
    # Other names are independent.
    assert leases.acquire(board.db, "leader", "b", ttl_s=30) is not None


def test_expiry_is_judged_by_the_database_clock(board: Kanban) -> None:
    held = leases.acquire(board.db, "leader", "a", ttl_s=0.3)
    assert held is not None
    (state,) = leases.all_leases(board.db)
    assert state.live
    assert 0 < state.expires_ms - state.now_ms <= 300
    taken = wait_for(
        lambda: leases.acquire(board.db, "leader", "b", ttl_s=30), 10, "the lease to expire"
    )
    assert taken.fence == held.fence + 1
    (state,) = leases.all_leases(board.db)
    assert state.owner == "b"
    assert state.live


def test_a_stale_owner_cannot_renew_or_release(board: Kanban) -> None:
    old = leases.acquire(board.db, "leader", "a", ttl_s=0.2)
    assert old is not None
    new = wait_for(lambda: leases.acquire(board.db, "leader", "b", ttl_s=30), 10, "takeover")
    assert leases.renew(board.db, old, ttl_s=30) is None
    assert leases.release(board.db, old) is False
    (state,) = leases.all_leases(board.db)
    assert (state.owner, state.fence) == ("b", new.fence)
    renewed = leases.renew(board.db, new, ttl_s=60)
    assert renewed is not None
    assert renewed.expires_ms > new.expires_ms


def test_the_owner_retaking_after_expiry_gets_a_new_fence(board: Kanban) -> None:
    first = leases.acquire(board.db, "leader", "a", ttl_s=0.2)
    assert first is not None
    wait_for(lambda: not leases.all_leases(board.db)[0].live, 10, "expiry")
    assert leases.renew(board.db, first, ttl_s=30) is None  # expired: renewing is too late
    again = leases.acquire(board.db, "leader", "a", ttl_s=30)
    assert again is not None
    assert again.fence == first.fence + 1


def test_release_hands_over_at_once_and_keeps_the_fence(board: Kanban) -> None:
    held = leases.acquire(board.db, "platform:slack", "a", ttl_s=60)
    assert held is not None
    assert leases.release(board.db, held) is True
    taken = leases.acquire(board.db, "platform:slack", "b", ttl_s=60)
    assert taken is not None
    assert taken.fence == 2
    (state,) = leases.all_leases(board.db)
    assert state.owner == "b"


@pytest.mark.parametrize(("name", "owner", "ttl"), [("", "a", 1), ("x", "", 1), ("x", "a", 0)])
def test_bad_arguments_are_refused_and_change_nothing(
    board: Kanban, name: str, owner: str, ttl: float
) -> None:
    with pytest.raises(ValidationError):
        leases.acquire(board.db, name, owner, ttl_s=ttl)
    assert leases.all_leases(board.db) == []
