"""The web board's page in headless Chromium: a 1,000-card board from navigation to interactive,
and a task created by another process until its card shows in the open page.

The page marks ``board-interactive`` (a Performance API mark) once the board is rendered with its
handlers attached; the first figure is that mark's time since navigation start, median over fresh
tabs. The second is the p99 from a commit in this (benchmark) process, which is not the server,
until the page has painted the new card: the page itself notes the wall-clock time of the first
frame after the card joined the DOM (Playwright's own polling would add its round trips).
Runs the real ``kanban web`` over a SQLite board seeded in bulk; needs Debian's Chromium.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.gateway_bench import p99
from benchmarks.seed import BoardMix, seed_board
from benchmarks.timing import Progress, median
from kanban_core import Actor, Kanban, KernelSettings
from tests.support.web_harness import chromium, chromium_missing, sign_in, web_board

CARDS = 1_000
#: Every card shows: no archived ones, and no more done ones than the board sends by default.
MIX = BoardMix(total=CARDS, todo=300, ready=400, running=20, blocked=30, triage=50)
VIEWPORT = {"width": 1440, "height": 900}
WRITER = Actor(name="bench-writer")


# Watches for a card by its title; at the first frame after it is in the DOM, notes the wall
# clock (ms).
_WATCH = """(title) => {
  let shown = null;
  window.__shown = new Promise((resolve, reject) => {
    shown = resolve;
    setTimeout(() => reject(new Error(`${title} not shown within 10 s`)), 10000);
  });
  const seen = () => {
    const titles = document.querySelectorAll(".card .title");
    if (![...titles].some((element) => element.textContent === title)) return false;
    requestAnimationFrame(() => shown(performance.timeOrigin + performance.now()));
    return true;
  };
  if (seen()) return;
  const watch = new MutationObserver(() => { if (seen()) watch.disconnect(); });
  watch.observe(document.getElementById("board"), { childList: true, subtree: true });
}"""


def _visible_after_commit(page: Any, home: Path, samples: int) -> list[float]:
    """Seconds from each task committed here to its card painted in the page (another process
    serves the page)."""
    settings = KernelSettings(home=home, db_url=f"sqlite:///{home / 'kanban.db'}")
    delays: list[float] = []
    with Kanban.open(settings) as board:
        for index in range(samples):
            title = f"live {index}"
            page.evaluate(_WATCH, title)
            start = time.time()
            board.create(WRITER, title=title)
            shown_ms = float(page.evaluate("() => window.__shown"))  # waits for the paint
            delays.append(shown_ms / 1000 - start)
    return delays


def board_page_interactive(log: Progress, *, loads: int, events: int) -> tuple[float | str, ...]:
    """Seconds from navigation to an interactive 1,000-card board (median over ``loads``), and
    the p99 of ``events`` commits by another process until their cards show."""
    missing = chromium_missing()
    if missing:
        skipped = f"skipped ({missing.split(' (')[0]})"
        return skipped, skipped
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="kanban-web-bench-") as tmp:
        home = Path(tmp) / "home"
        with web_board(home, seed=lambda url: seed_board(url, MIX)) as server:
            log(f"web page: {CARDS:,} cards served at {server.base}")
            with (
                sync_playwright() as driver,
                chromium(driver, Path(tmp) / "profile", viewport=VIEWPORT) as context,
            ):
                live = sign_in(context, server)  # stays open: the browser keeps its session
                samples: list[float] = []
                for _ in range(loads):
                    # A new tab each time: no previous page to unload inside the measurement.
                    page = context.new_page()
                    page.goto(server.base + "/")
                    page.wait_for_selector("body[data-loaded=true]")
                    shown = page.locator(".card").count()
                    if shown != CARDS:
                        raise AssertionError(f"the board shows {shown} cards, not {CARDS}")
                    mark = page.evaluate(
                        "performance.getEntriesByName('board-interactive')[0].startTime"
                    )
                    samples.append(float(mark) / 1000)
                    page.close()
                log(f"web page: {', '.join(f'{s * 1000:.0f} ms' for s in samples)}")
                log(f"web page: {events} tasks committed elsewhere until their cards show")
                delays = _visible_after_commit(live, home, events)
                log(f"web page: commit → painted, median {median(delays) * 1000:.0f} ms")
                return median(samples), p99(delays)


if __name__ == "__main__":
    print(board_page_interactive(Progress(), loads=5, events=20))
