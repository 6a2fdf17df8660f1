"""The console entry point: identity from the environment, printing, and main() in-process."""

from __future__ import annotations

import getpass
import io
import json
import sys

import pytest

from kanban_core import (
    Actor,
    Kanban,
    KanbanError,
    KernelSettings,
    RunId,
    RunProof,
    TaskId,
    ValidationError,
    cli,
)
from kanban_core.commands import CommandContext, CommandResult
from kanban_core.commands.result import Heading, Table, Text
from kanban_core.errors import StorageError

_KANBAN_VARS = (
    "KANBAN_USER",
    "KANBAN_TASK",
    "KANBAN_RUN_ID",
    "KANBAN_RUN_TOKEN",
    "KANBAN_TENANT",
    "KANBAN_DB_URL",
    "KANBAN_HOME",
    "KANBAN_SQLITE_SYNCHRONOUS",
)


class TestActorFromEnviron:
    def test_a_person(self):
        assert cli.actor_from_environ({"KANBAN_USER": "alice"}) == Actor(name="alice")

    def test_the_login_name_by_default(self, monkeypatch):
        monkeypatch.setattr(getpass, "getuser", lambda: "carol")

        assert cli.actor_from_environ({}) == Actor(name="carol")

    def test_no_login_name_at_all(self, monkeypatch):
        def no_user():
            raise KeyError("uid not in passwd")

        monkeypatch.setattr(getpass, "getuser", no_user)

        assert cli.actor_from_environ({}) == Actor(name="user")

    def test_a_worker(self):
        actor = cli.actor_from_environ(
            {
                "KANBAN_USER": "coder",
                "KANBAN_TASK": "t7",
                "KANBAN_RUN_ID": "r3",
                "KANBAN_RUN_TOKEN": "s3cret",
            }
        )

        assert actor == Actor(name="coder", run=RunProof(TaskId(7), RunId(3), "s3cret"))

    @pytest.mark.parametrize(
        "partial",
        [
            {"KANBAN_RUN_ID": "3"},
            {"KANBAN_RUN_TOKEN": "s3cret"},
            {"KANBAN_RUN_ID": "3", "KANBAN_RUN_TOKEN": "s3cret"},
            {"KANBAN_RUN_ID": "3", "KANBAN_TASK": "t7"},
        ],
    )
    def test_incomplete_worker_credentials(self, partial):
        with pytest.raises(KanbanError, match="worker credentials are incomplete"):
            cli.actor_from_environ({"KANBAN_USER": "coder", **partial})

    def test_malformed_worker_credentials(self):
        environ = {"KANBAN_TASK": "t7", "KANBAN_RUN_ID": "run-3", "KANBAN_RUN_TOKEN": "x"}

        with pytest.raises(ValidationError, match="not a run id: 'run-3'"):
            cli.actor_from_environ({"KANBAN_USER": "coder", **environ})


class TestPrintResult:
    def test_text_blocks_on_stdout(self, capsys):
        cli.print_result(
            CommandResult(blocks=(Heading("Title"), Table(("A", "B"), (("x", "1"),)), Text("done")))
        )

        assert capsys.readouterr() == ("Title\nA  B\nx  1\ndone\n", "")

    def test_json_on_stdout(self, capsys):
        cli.print_result(
            CommandResult(
                data={"title": "Café ☕", "n": [1, 2]}, as_json=True, blocks=(Text("no"),)
            )
        )

        out, err = capsys.readouterr()
        assert out == '{\n  "title": "Café ☕",\n  "n": [\n    1,\n    2\n  ]\n}\n'
        assert err == ""

    def test_json_null(self, capsys):
        cli.print_result(CommandResult(data=None, as_json=True))

        assert capsys.readouterr() == ("null\n", "")

    def test_errors_on_stderr_one_per_line(self, capsys):
        cli.print_result(
            CommandResult(
                exit_code=1, blocks=(Text("Archived t1"),), errors=("no such task: t9", "x")
            )
        )

        assert capsys.readouterr() == (
            "Archived t1\n",
            "kanban: no such task: t9\nkanban: x\n",
        )

    def test_nothing_to_print(self, capsys):
        cli.print_result(CommandResult())

        assert capsys.readouterr() == ("", "")


@pytest.fixture
def cli_env(monkeypatch, db_url, tmp_path):
    """A clean KANBAN_* environment pointing main() at a board that outlives each call."""
    for name in _KANBAN_VARS:
        monkeypatch.delenv(name, raising=False)
    url = f"sqlite:///{tmp_path / 'board.db'}" if db_url.startswith("sqlite") else db_url
    monkeypatch.setenv("KANBAN_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("KANBAN_USER", "alice")
    monkeypatch.setenv("KANBAN_DB_URL", url)
    # As `kanban init` leaves it: reads never create a board.
    Kanban.open(KernelSettings(home=tmp_path / "home", db_url=url)).close()
    return url


@pytest.fixture
def kanban(cli_env, capsys):
    """Run main() in-process; returns (exit code, stdout, stderr)."""

    def invoke(*argv):
        code = cli.main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return invoke


@pytest.fixture
def fake_clock(monkeypatch):
    """Make main()'s context use the given sleep instead of time.sleep."""

    def install(sleep):
        def context(**kwargs):
            return CommandContext(**kwargs, sleep=sleep)

        monkeypatch.setattr(cli, "CommandContext", context)

    return install


class TestMain:
    def test_create_then_list(self, kanban):
        assert kanban("create", "Fix it", "--assignee", "coder") == (
            0,
            "Created t1  (ready, assignee=coder)\n",
            "",
        )

        code, out, err = kanban("list", "--json")
        assert (code, err) == (0, "")
        (task,) = json.loads(out)
        assert (task["id"], task["title"], task["created_by"]) == ("t1", "Fix it", "alice")

    def test_usage_errors_exit_2_on_stderr(self, kanban):
        code, out, err = kanban("frobnicate")

        assert (code, out) == (2, "")
        assert err.startswith("kanban: usage: kanban [-h] [--db URL] <verb> ...\n")
        assert "usage error: argument <verb>: invalid choice: 'frobnicate'" in err

    def test_refusals_exit_1_on_stderr(self, kanban):
        assert kanban("show", "t9") == (1, "", "kanban: no such task: t9\n")

    def test_bulk_output_and_errors(self, kanban):
        kanban("create", "one")

        assert kanban("archive", "t1", "t5") == (
            1,
            "Archived t1\n",
            "kanban: no such task: t5\n",
        )

    def test_help_does_not_touch_the_database(self, kanban, monkeypatch, tmp_path):
        monkeypatch.delenv("KANBAN_DB_URL")

        code, out, err = kanban("-h")

        assert (code, err) == (0, "")
        assert out.startswith("usage: kanban [-h] [--db URL] <verb> ...")
        assert not (tmp_path / "home").exists()

    def test_argv_defaults_to_sys_argv(self, cli_env, capsys, monkeypatch):
        monkeypatch.setattr(sys, "argv", ["kanban", "create", "From argv"])

        assert cli.main() == 0
        assert capsys.readouterr().out == "Created t1  (ready, assignee=-)\n"

    def test_the_db_flag_wins_over_the_environment(self, kanban, tmp_path):
        other = tmp_path / "other.db"

        code, out, _ = kanban("--db", str(other), "init")

        assert code == 0
        assert out.startswith(f"Board ready: sqlite:///{other}\n")
        assert other.exists()

    def test_incomplete_worker_credentials(self, kanban, monkeypatch):
        monkeypatch.setenv("KANBAN_RUN_ID", "1")

        code, out, err = kanban("list")

        assert (code, out) == (1, "")
        assert err.startswith("kanban: worker credentials are incomplete")

    def test_a_worker_acts_through_the_environment(self, kanban, monkeypatch):
        kanban("create", "Job", "--assignee", "coder")
        code, out, _ = kanban("claim", "t1", "--json")
        assert code == 0
        granted = json.loads(out)
        monkeypatch.setenv("KANBAN_TASK", granted["task_id"])
        monkeypatch.setenv("KANBAN_RUN_ID", str(granted["run_id"]))
        monkeypatch.setenv("KANBAN_RUN_TOKEN", granted["run_token"])

        assert kanban("heartbeat") == (0, "Heartbeat recorded for t1\n", "")
        assert kanban("complete", "--summary", "done") == (0, "Completed t1\n", "")

        monkeypatch.setenv("KANBAN_RUN_TOKEN", "forged")
        code, _, err = kanban("heartbeat")
        assert code == 1
        assert err.startswith("kanban: refused to heartbeat t1: run r")

    def test_every_opened_board_is_closed(self, kanban, monkeypatch):
        closed = []
        original = Kanban.close

        def close(self):
            closed.append(self)
            original(self)

        monkeypatch.setattr(Kanban, "close", close)

        kanban("create", "x")
        kanban("show", "t404")

        assert len(closed) == 2

    def test_a_broken_pipe_is_not_an_error(self, cli_env, monkeypatch):
        def broken(result):
            raise BrokenPipeError

        monkeypatch.setattr(cli, "print_result", broken)
        monkeypatch.setattr(sys, "stderr", io.StringIO())

        assert cli.main(["stats"]) == 0


class TestMainFollow:
    def test_ctrl_c_ends_a_follow_cleanly(self, kanban, fake_clock):
        kanban("create", "Watched")
        calls = []

        def sleep(seconds):
            calls.append(seconds)
            if len(calls) == 1:
                cli.main(["comment", "t1", "live", "update"])
                return
            raise KeyboardInterrupt

        fake_clock(sleep)
        code, out, err = kanban("tail", "t1", "--interval", "0.1")

        assert (code, err) == (0, "")
        lines = out.splitlines()
        assert "  created  " in lines[0]
        assert "Comment added to t1" in lines[1]
        assert "  commented  " in lines[2]
        assert len(lines) == 3
        assert calls == [0.1, 0.1]

    def test_a_kernel_error_while_following(self, kanban, fake_clock):
        def sleep(seconds):
            raise StorageError("the database went away")

        fake_clock(sleep)
        code, out, err = kanban("watch")

        assert code == 1
        assert out.startswith("watching from event ")
        assert err == "kanban: the database went away\n"

    def test_once_never_follows(self, kanban, fake_clock):
        def sleep(seconds):
            raise AssertionError("followed")

        fake_clock(sleep)
        kanban("create", "x")

        code, out, _ = kanban("watch", "--once")

        assert code == 0
        assert "  t1  created  " in out


class TestBudgetsAndPauses:
    @pytest.mark.parametrize(
        ("flag", "value"),
        [
            ("--max-cost", "0"),
            ("--max-cost", "-1"),
            ("--max-cost", "abc"),
            ("--max-cost", "nan"),
            ("--max-cost", "inf"),
            ("--max-cost", "1e30"),
            ("--max-tokens", "0"),
            ("--max-tokens", "1.5"),
            ("--max-tokens", "lots"),
        ],
    )
    def test_bad_budgets_are_usage_errors_and_create_nothing(self, kanban, flag, value):
        code, out, err = kanban("create", "costly", flag, value)
        assert (code, out) == (2, "")
        assert f"argument {flag}" in err
        assert kanban("list", "--json")[1] == "[]\n"

    def test_budgets_are_stored_and_shown(self, kanban):
        assert kanban("create", "costly", "--max-cost", "$1.5", "--max-tokens", "5000")[0] == 0
        code, out, _ = kanban("show", "t1", "--json")
        assert code == 0
        task = json.loads(out)["task"]
        assert (task["max_cost_usd"], task["max_tokens"]) == (1.5, 5000)
        assert "budget     $1.5000, 5000 tokens" in kanban("show", "t1")[1]

    def test_a_paused_task_shows_its_reason_in_list_and_show(self, kanban, cli_env, tmp_path):
        kanban("create", "limited")
        settings = KernelSettings(home=tmp_path / "home", db_url=cli_env)
        with Kanban.open(settings) as board:
            claim = board.claim(Actor(name="alice"), TaskId(1), ttl_s=60)
            assert claim is not None
            board.record_quota(
                Actor(name="alice"),
                TaskId(1),
                claim.run_id,
                resume_at_ms=None,
                message="quota exceeded",
                backoff_s=600,
            )
        listed = kanban("list")[1]
        assert "ready, paused: usage limit reached; resumes at" in listed
        shown = json.loads(kanban("show", "t1", "--json")[1])["task"]
        assert shown["pause_reason"].startswith("usage limit reached; resumes at")
        assert isinstance(shown["paused_until"], int | float)
        assert "paused" in kanban("show", "t1")[1]

    def test_stats_and_runs_show_reported_usage(self, kanban, cli_env, tmp_path):
        kanban("create", "measured")
        assert "reported usage" not in kanban("stats")[1]
        settings = KernelSettings(home=tmp_path / "home", db_url=cli_env)
        with Kanban.open(settings) as board:
            claim = board.claim(Actor(name="alice"), TaskId(1), ttl_s=60)
            assert claim is not None
            board.record_usage(Actor(name="alice"), TaskId(1), claim.run_id, 1200, 300, 12_345)
        assert "reported usage: 1200 in / 300 out tokens, $0.0123" in kanban("stats")[1]
        stats = json.loads(kanban("stats", "--json")[1])
        assert (stats["input_tokens"], stats["output_tokens"]) == (1200, 300)
        assert stats["cost_usd"] == pytest.approx(0.012345)
        (run,) = json.loads(kanban("runs", "t1", "--json")[1])
        assert (run["input_tokens"], run["output_tokens"]) == (1200, 300)
        assert run["cost_usd"] == pytest.approx(0.012345)
        assert "in 1200 / out 300 tokens, $0.0123" in kanban("runs", "t1")[1]
