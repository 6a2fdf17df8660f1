"""A record that config.yaml, byte for byte, passed the schema: spares each CLI call pydantic.

Validating costs more than the rest of a ``kanban list`` (pydantic's import and model building).
After a successful validation the kernel's sections, normalised, are written beside the file
(``.config.yaml.checked.json``) with the file's SHA-256 and the size and mtime of every module
that declared the schema. A later call whose file and schema modules are unchanged reads that
record instead. Anything else — an edit, an upgrade, a missing or damaged record, a directory we
cannot write — validates again; the record is never a reason to accept what the schema refuses.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

#: The kernel's top-level sections (declared in kanban_core.config.schema).
KERNEL_SECTIONS = (
    "board",
    "dispatcher",
    "assignees",
    "permissions",
    "maintenance",
    "workspaces",
)
_FORMAT = 2


def kernel_sections(path: Path) -> dict[str, Any]:
    """The kernel's sections of a valid file, defaults filled in; raises on an invalid file."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        from kanban_core.errors import ValidationError

        raise ValidationError(f"{path}: cannot read: {exc}") from None
    digest = hashlib.sha256(raw).hexdigest()
    record = _record_path(path)
    cached = _read(record, digest)
    if cached is not None:
        return cached
    from kanban_core.config.model import load_file, schema_files

    document = load_file(path)
    sections: dict[str, Any] = document.model_dump(include=set(KERNEL_SECTIONS))
    _write(record, digest, schema_files(), sections)
    return sections


def _record_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.checked.json")


def _stamp(file: str) -> list[object]:
    stat = Path(file).stat()
    return [file, stat.st_size, stat.st_mtime_ns]


def _read(record: Path, digest: str) -> dict[str, Any] | None:
    try:
        data = json.loads(record.read_text(encoding="utf-8"))
        if data["format"] != _FORMAT or data["sha256"] != digest:
            return None
        for stamp in data["schema"]:
            if _stamp(stamp[0]) != stamp:
                return None  # the schema's code changed (an upgrade, an edit)
        sections: dict[str, Any] = data["sections"]
    except (OSError, ValueError, KeyError, TypeError):
        return None  # no record, or one we cannot trust: validate
    return sections


def _write(record: Path, digest: str, files: list[str], sections: dict[str, Any]) -> None:
    data = {
        "format": _FORMAT,
        "sha256": digest,
        "schema": [_stamp(file) for file in files],
        "sections": sections,
    }
    # Written whole or not at all (a reader never sees half a record); failing to write only
    # means the next call validates again.
    with contextlib.suppress(OSError, TypeError, ValueError):
        fd, temp = tempfile.mkstemp(dir=record.parent, prefix=record.name, suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(data, out)
            Path(temp).replace(record)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
