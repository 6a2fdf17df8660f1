"""Splitting long text into platform-sized parts on line boundaries, with a cap and a footer."""

from __future__ import annotations


def split_text(text: str, limit: int, *, max_parts: int, footer: str) -> list[str]:
    """Parts of at most ``limit`` characters, cut at line ends (hard-cut only a too-long line).

    When more than ``max_parts`` would be needed, the last kept part ends with ``footer``.
    """
    if limit <= len(footer) + 1:
        raise ValueError("limit too small for the footer")
    parts: list[str] = []
    current = ""
    for line in text.split("\n"):
        while len(line) > limit:
            if current:
                parts.append(current)
                current = ""
            parts.append(line[:limit])
            line = line[limit:]
        candidate = f"{current}\n{line}" if current else line
        if len(candidate) > limit:
            parts.append(current)
            current = line
        else:
            current = candidate
    if current or not parts:
        parts.append(current)
    if len(parts) <= max_parts:
        return parts
    kept = parts[:max_parts]
    last = kept[-1]
    room = limit - len(footer) - 1
    kept[-1] = (last[:room].rsplit("\n", 1)[0] if len(last) > room else last) + "\n" + footer
    return kept
