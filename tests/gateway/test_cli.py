"""The ``kanban`` script: surfaces' verbs are looked up only when the verb is not the kernel's."""

from __future__ import annotations

import pytest

from gateway import cli


@pytest.mark.parametrize(
    ("argv", "verb"),
    [
        (["list"], "list"),
        (["--db", "sqlite:///x.db", "show", "t1"], "show"),
        (["--db=sqlite:///x.db", "list"], "list"),
        (["web", "sessions"], "web"),
        (["--help"], None),
        ([], None),
    ],
)
def test_the_verb_of_a_command_line(argv: list[str], verb: str | None) -> None:
    assert cli._verb(argv) == verb


def test_kernel_verbs_skip_the_entry_point_scan(monkeypatch, capsys) -> None:
    import gateway.surfaces

    scans: list[int] = []
    real = gateway.surfaces.verb_registrars

    def counted():
        scans.append(1)
        return real()

    monkeypatch.setattr(gateway.surfaces, "verb_registrars", counted)
    assert cli.main(["list", "--help"]) == 0
    assert scans == []
    assert cli.main(["web", "--help"]) == 0
    assert scans == [1]
    assert "login-link" in capsys.readouterr().out


def test_every_listed_verb_is_the_kernels() -> None:
    from kanban_core.commands import build_parser

    assert set(build_parser().verb_parsers) >= cli._KERNEL_VERBS
