"""``python -m tests.e2e.web_screenshots [DIR]``: regenerate the README's pictures of the web board.

A demo board is made with the ``kanban`` CLI (no hand-written rows), served by ``kanban web`` on
127.0.0.1 and photographed in Debian's headless Chromium: the board (light and dark), a task's
drawer, and the board on a 390-px phone. Writes PNGs into ``docs/`` unless told another folder.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from tests.support.web_harness import Board, chromium, chromium_missing, sign_in, web_board

DOCS = Path(__file__).resolve().parents[2] / "docs"

SPEC = """Users lose their place when the export times out.

## Acceptance
- the export resumes from the **last batch**
- a progress line in the UI
- see the [design note](https://example.org/design)
"""


def seed_demo(board: Board) -> str:
    """A small, lively board; returns the id of the task whose drawer is shown."""
    spec = board.create(
        "Resumable CSV export",
        "--body",
        SPEC,
        "--assignee",
        "coder",
        "--tenant",
        "acme",
        "--priority",
        "2",
    )
    board.create("Export progress bar", "--parent", spec, "--assignee", "coder", "--tenant", "acme")
    board.create("Docs: export limits", "--parent", spec, "--assignee", "writer")
    board.create("Try streaming zip for big exports", "--triage")
    board.create(
        "Rotate webhook secrets", "--assignee", "reviewer", "--tenant", "globex", "--priority", "5"
    )
    flaky = board.create("Flaky login test on CI", "--assignee", "coder", "--priority", "1")
    board.run("block", flaky, "needs", "a", "decision", "on", "retries")
    for title in ("Upgrade SQLAlchemy", "Release notes 1.4"):
        board.run("complete", board.create(title, "--assignee", "writer"))
    working = board.create("Cache the board query", "--assignee", "coder", "--tenant", "acme")
    board.run("claim", working)
    board.run("comment", spec, "Batches of 5,000 rows keep memory flat.")
    board.run("comment", spec, "Agreed; resume token goes into the job row.")
    return spec


def shoot(folder: Path) -> list[Path]:
    """Make the pictures; the paths written."""
    from playwright.sync_api import sync_playwright

    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    with (
        tempfile.TemporaryDirectory(prefix="kanban-shots-") as tmp,
        web_board(Path(tmp) / "home") as server,
        sync_playwright() as driver,
    ):
        focus = seed_demo(server.board)
        for theme in ("light", "dark"):
            options = {"viewport": {"width": 1440, "height": 860}, "color_scheme": theme}
            with chromium(driver, Path(tmp) / f"desk-{theme}", **options) as context:
                page = sign_in(context, server)
                written.append(folder / f"web-board-{theme}.png")
                page.screenshot(path=str(written[-1]))
                if theme == "light":
                    page.locator(f'.card[data-id="{focus}"]').click()
                    page.locator("#drawer .comments li").first.wait_for()
                    written.append(folder / "web-drawer.png")
                    page.screenshot(path=str(written[-1]))
        phone = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}
        with chromium(driver, Path(tmp) / "phone", **phone) as context:
            page = sign_in(context, server)
            written.append(folder / "web-phone.png")
            page.screenshot(path=str(written[-1]))
    return written


def main(argv: list[str]) -> int:
    missing = chromium_missing()
    if missing:
        print(f"cannot take screenshots: {missing}", file=sys.stderr)
        return 1
    for path in shoot(Path(argv[0]) if argv else DOCS):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
