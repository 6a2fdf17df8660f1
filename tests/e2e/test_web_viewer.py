"""The web board for a viewer, and a capped done column, in a real headless Chromium.

One ``kanban web`` over a board with more finished tasks than the board sends by default; a
viewer of ``access.users`` signs in through their own link.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from kanban_core import Actor, Kanban, KernelSettings
from tests.support.web_harness import WebServer, chromium_missing, signed_in_page, web_board

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.timeout(180),
    pytest.mark.skipif(
        chromium_missing() is not None and not os.environ.get("CI"), reason=chromium_missing() or ""
    ),
]

VIEWER = "telegram:9"
DONE = 205  # five more than the board sends of a finished column unless asked


def _seed(home: Path) -> None:
    (home / "config.yaml").write_text(
        yaml.safe_dump({"access": {"users": {VIEWER: "viewer"}}}), encoding="utf-8"
    )


def _finish_many(home: Path) -> None:
    settings = KernelSettings(home=home, db_url=f"sqlite:///{home / 'kanban.db'}")
    alice = Actor(name="alice")
    with Kanban.open(settings) as board:
        for index in range(DONE):
            task = board.create(alice, title=f"finished {index}").task
            board.complete(alice, task.id)
        board.create(alice, title="open work")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebServer]:
    home = tmp_path_factory.mktemp("web-viewer") / "home"
    home.mkdir(parents=True)
    _seed(home)
    with web_board(home, seed=lambda _url: _finish_many(home)) as running:
        yield running


def test_a_viewer_sees_no_control_that_writes(
    playwright: Any, server: WebServer, tmp_path: Path
) -> None:
    with signed_in_page(playwright, server, tmp_path / "profile", VIEWER) as page:
        assert page.locator("body").get_attribute("data-role") == "viewer"
        card = page.locator(".card", has_text="open work")
        card.wait_for()
        for selector in (".column .add", "select.move", "input.select", "#nudge"):
            assert page.locator(selector).first.is_hidden(), selector
        assert card.get_attribute("draggable") != "true"
        card.click()
        drawer = page.locator("#drawer")
        drawer.locator(".meta-row").wait_for()
        assert drawer.get_by_label("Priority").is_disabled()
        assert drawer.get_by_label("Assignee").is_disabled()
        for name in ("Edit description", "Status actions", "New comment", "Add parent…"):
            assert drawer.get_by_label(name).or_(drawer.get_by_text(name)).first.is_hidden(), name
        drawer.locator("#drawer-title").click()
        assert drawer.locator("input.title-input").count() == 0  # no rename for a viewer
        page.keyboard.press("Escape")
        page.get_by_role("button", name="Workspaces").click()
        assert page.locator("form.ws-create").is_hidden()
        # And a write forced from the page is refused by the server all the same.
        status = page.evaluate(
            """async () => {
              const me = await (await fetch("/api/me")).json();
              const made = await fetch("/api/tasks", {
                method: "POST",
                headers: {"Content-Type": "application/json", "X-CSRF-Token": me.csrf_token},
                body: JSON.stringify({title: "sneaky"}),
              });
              return made.status;
            }"""
        )
        assert status == 403


def test_show_all_lists_every_finished_card(
    playwright: Any, server: WebServer, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    with signed_in_page(playwright, server, tmp_path / "profile") as page:
        done = page.locator('.column[data-status="done"]')
        assert done.locator(".count").inner_text() == f"200/{DONE}"
        assert done.locator(".card").count() == 200
        done.get_by_role("button", name=f"Show all {DONE}").click()
        expect(done.locator(".count")).to_have_text(str(DONE))
        assert done.locator(".card").count() == DONE
        assert done.locator(".more-cards").count() == 0
        assert done.locator(".card", has_text="finished 0").count() == 1  # the oldest too
