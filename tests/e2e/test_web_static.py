"""The web board's static files keep the page's promises without a browser: no HTML built from
strings, nothing loaded from elsewhere, no inline script or style (the CSP forbids both)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

STATIC = Path(__file__).resolve().parents[2] / "web" / "static"
SCRIPTS = sorted((STATIC / "js").glob("*.js"))
PAGES = sorted(STATIC.glob("*.html"))


def test_the_app_ships_its_files() -> None:
    assert {p.name for p in PAGES} == {"index.html", "signin.html"}
    assert "app.js" in {p.name for p in SCRIPTS}
    assert (STATIC / "app.css").is_file()


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_no_script_parses_html_or_code_from_strings(script: Path) -> None:
    text = script.read_text(encoding="utf-8")
    for sink in (
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "document.write",
        "eval(",
        "new Function",
    ):
        assert sink not in text, f"{script.name} uses {sink}"


@pytest.mark.parametrize("path", [*SCRIPTS, *PAGES, STATIC / "app.css"], ids=lambda p: p.name)
def test_nothing_is_loaded_from_another_origin(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text), path.name
    assert "@import" not in text
    assert not re.search(r"""(import|from)\s+["']https?:""", text), path.name


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_pages_have_no_inline_script_or_style(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    for tag in re.findall(r"<script\b[^>]*>", text):
        assert "src=" in tag, f"inline script in {page.name}: {tag}"
    assert "<style" not in text
    assert not re.search(r"\sstyle\s*=", text), f"a style attribute in {page.name}"
    assert not re.search(r"\son[a-z]+\s*=", text), f"an inline event handler in {page.name}"
