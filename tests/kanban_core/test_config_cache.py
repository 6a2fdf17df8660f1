"""The validation record: an unchanged config.yaml is not validated again (no pydantic import),
and any change — to the file, to the schema's code, to the record itself — validates again."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from kanban_core import ValidationError
from kanban_core.config import load_config

EXAMPLE = Path(__file__).resolve().parents[2] / "config.example.yaml"
PROBE = """
import sys
from pathlib import Path
from kanban_core.config import load_config
config = load_config(Path(sys.argv[1]), {})
print(config.dispatcher.max_in_progress, "pydantic" in sys.modules, "yaml" in sys.modules)
"""


def load_in_a_fresh_process(path: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout.strip()


def record_of(path: Path) -> Path:
    return path.with_name(f".{path.name}.checked.json")


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(EXAMPLE.read_text(encoding="utf-8"), encoding="utf-8")
    return path


@pytest.mark.integration
def test_an_unchanged_file_is_read_from_its_record_without_pydantic_or_yaml(config):
    assert load_in_a_fresh_process(config) == "4 True True"  # validated, record written
    assert record_of(config).is_file()
    assert load_in_a_fresh_process(config) == "4 False False"
    config.write_text(
        config.read_text(encoding="utf-8").replace("max_in_progress: 4", "max_in_progress: 6"),
        encoding="utf-8",
    )
    assert load_in_a_fresh_process(config) == "6 True True"


def test_an_edit_that_breaks_the_file_is_caught_despite_the_record(config):
    load_config(config, {})
    assert record_of(config).is_file()
    config.write_text(
        config.read_text(encoding="utf-8").replace("max_in_progress: 4", "max_in_progres: 4"),
        encoding="utf-8",
    )
    with pytest.raises(ValidationError, match=r"did you mean max_in_progress\?"):
        load_config(config, {})


def test_a_record_for_other_content_or_damaged_is_not_trusted(config):
    load_config(config, {})
    record = record_of(config)
    data = json.loads(record.read_text(encoding="utf-8"))
    # A record is believed only for this very file and the schema's code as it was recorded.
    data["sections"]["dispatcher"]["max_in_progress"] = 99
    record.write_text(json.dumps(data), encoding="utf-8")
    assert load_config(config, {}).dispatcher.max_in_progress == 99  # believed: nothing changed
    assert any(file.endswith("kanban_core/config/schema.py") for file, *_ in data["schema"])
    data["schema"][-1][2] -= 1  # as if a module of the schema had been edited since
    record.write_text(json.dumps(data), encoding="utf-8")
    assert load_config(config, {}).dispatcher.max_in_progress == 4
    data["sha256"] = "0" * 64
    record.write_text(json.dumps(data), encoding="utf-8")
    assert load_config(config, {}).dispatcher.max_in_progress == 4
    record.write_text("{not json", encoding="utf-8")
    assert load_config(config, {}).dispatcher.max_in_progress == 4
    assert json.loads(record.read_text(encoding="utf-8"))["sections"]["dispatcher"] is not None


def test_an_invalid_file_leaves_no_record(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("board:\n  colour: blue\n", encoding="utf-8")
    with pytest.raises(ValidationError):
        load_config(path, {})
    assert not record_of(path).exists()
