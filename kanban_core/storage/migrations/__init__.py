"""Alembic migrations of the board's schema; REVISIONS lists them oldest first."""

#: Every revision this version of the code knows, oldest first; the last one is the head.
REVISIONS: tuple[str, ...] = (
    "0001",
    "0002",
    "0003",
    "0004",
    "0005",
    "0006",
    "0007",
    "0008",
    "0009",
    "0010",
    "0011",
    "0012",
    "0013",
    "0014",
    "0015",
    "0016",
    "0017",
    "0018",
    "0019",
    "0020",
    "0021",
)
HEAD = REVISIONS[-1]
#: The head as SQLite's ``user_version`` stamps it: its position in REVISIONS, counted from 1.
HEAD_NUMBER = len(REVISIONS)
