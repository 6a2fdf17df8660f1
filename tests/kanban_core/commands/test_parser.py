"""The argparse tree: it never prints or exits, and every failure is a value with exit 2."""

from __future__ import annotations

import argparse

import pytest

from kanban_core.commands import CommandParser, build_parser, split_command_line
from kanban_core.errors import HelpRequested, UsageError
from tests.kanban_core.commands.support import VERBS, assert_usage_error, output, texts

ROOT_USAGE = "usage: kanban [-h] [--db URL] <verb> ..."


def _verbs(parser: CommandParser) -> set[str]:
    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    assert len(actions) == 1
    return set(actions[0].choices)


def test_the_verb_list_covers_the_whole_tree():
    assert _verbs(build_parser()) == set(VERBS)


@pytest.mark.parametrize("argv", [["-h"], ["--help"], []])
def test_root_help_is_returned_not_printed(run_offline, capsys, argv):
    result = run_offline(argv)

    assert result.exit_code == 0
    assert result.errors == ()
    text = output(result)
    assert text.startswith(ROOT_USAGE)
    assert "--db URL" in text
    for verb in ("create", "complete", "notify-subscribe", "watch"):
        assert verb in text
    assert capsys.readouterr() == ("", "")


@pytest.mark.parametrize("verb", VERBS)
def test_every_verb_has_help(run_offline, capsys, verb):
    result = run_offline([verb, "-h"])

    assert result.exit_code == 0
    assert result.errors == ()
    (help_text,) = texts(result)
    assert help_text.startswith(f"usage: kanban {verb} [-h]")
    assert "show this help message and exit" in help_text
    assert not help_text.endswith("\n")
    assert capsys.readouterr() == ("", "")


def test_help_wins_over_missing_arguments(run_offline):
    result = run_offline(["assign", "--help"])

    assert result.exit_code == 0
    assert texts(result)[0].startswith("usage: kanban assign [-h] task_id assignee")


@pytest.mark.parametrize(
    ("argv", "usage", "message"),
    [
        (["create"], "usage: kanban create [-h]", "the following arguments are required: title"),
        (["assign", "t1"], "usage: kanban assign [-h] task_id assignee", "required: assignee"),
        (["link", "t1"], "usage: kanban link [-h] parent_id child_id", "required: child_id"),
        (["comment", "t1"], "usage: kanban comment [-h] task_id text", "required: text"),
        (["unblock"], "usage: kanban unblock [-h]", "required: ID"),
        (["archive"], "usage: kanban archive [-h] ID [ID ...]", "required: ID"),
        (["show"], "usage: kanban show [-h] [--json] task_id", "required: task_id"),
        (
            ["notify-subscribe", "t1", "--chat-id", "9"],
            "usage: kanban notify-subscribe [-h]",
            "required: --platform",
        ),
        (["create", "x", "--priority", "high"], "usage: kanban create", "invalid int value"),
        (["list", "--status", "doing"], "usage: kanban list", "invalid choice: 'doing'"),
        (["list", "--sort", "random"], "usage: kanban list", "invalid choice: 'random'"),
        (["show", "task-one"], "usage: kanban show", "not a task id: 'task-one'"),
        (["create", "x", "--parent", "p1"], "usage: kanban create", "argument --parent"),
        (["create", "x", "--max-runtime", "soon"], "usage: kanban create", "malformed duration"),
        (["create", "x", "--workspace", "~/src"], "usage: kanban create", "argument --workspace"),
        (["complete", "t1", "--metadata", "{nope"], "usage: kanban complete", "not valid JSON"),
        (["complete", "t1", "--metadata", "[1]"], "usage: kanban complete", "JSON object"),
        (["tail", "t1", "--limit", "many"], "usage: kanban tail", "invalid int value"),
    ],
)
def test_missing_or_malformed_arguments_give_the_verbs_usage(
    run_offline, capsys, argv, usage, message
):
    error = assert_usage_error(run_offline(argv), usage, message, "usage error: ")

    usage_line, _, last = error.rpartition("\n")
    assert usage_line.startswith(usage)
    assert last.startswith("usage error: ")
    assert capsys.readouterr() == ("", "")


@pytest.mark.parametrize(
    ("argv", "usage"),
    [
        (["create", "x", "--bogus"], "usage: kanban create [-h]"),
        (["list", "--bogus"], "usage: kanban list [-h]"),
        (["show", "t1", "--verbose"], "usage: kanban show [-h]"),
    ],
)
def test_an_unknown_flag_gives_the_verbs_usage(run_offline, argv, usage):
    # The brief: a bad flag is refused with the usage line of the verb it was given to.
    error = assert_usage_error(run_offline(argv), "unrecognized arguments:", argv[-1])

    assert error.startswith(usage), error


def test_an_unknown_verb_is_a_usage_error(run_offline, capsys):
    error = assert_usage_error(run_offline(["frobnicate", "t1"]), ROOT_USAGE)

    assert "invalid choice: 'frobnicate'" in error
    assert "'create'" in error
    assert capsys.readouterr() == ("", "")


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["create", "Fix it", "--assig", "coder"], "unrecognized arguments: --assig coder"),
        (["list", "--assig", "coder"], "unrecognized arguments: --assig coder"),
        (["create", "Fix it", "--idem", "k1"], "unrecognized arguments: --idem k1"),
        # --d is not taken for --db, so its value is read as the verb.
        (["--d", "sqlite://", "list"], "invalid choice: 'sqlite://'"),
    ],
)
def test_abbreviated_flags_are_refused(run_offline, argv, fragment):
    assert_usage_error(run_offline(argv), fragment)


def test_the_db_option_reaches_open_board(run, opened):
    result = run(["--db", "sqlite:///elsewhere.db", "stats"])

    assert result.exit_code == 0
    assert opened == ["sqlite:///elsewhere.db"]


def test_without_db_option_the_board_is_opened_with_none(run, opened):
    run(["stats"])

    assert opened == [None]


def test_a_chat_tree_has_no_db_option(run_offline):
    chat = build_parser(with_db_option=False)

    help_text = output(run_offline(["-h"], parser=chat))
    assert help_text.startswith("usage: kanban [-h] <verb> ...")
    assert "--db" not in help_text

    # argparse reads the URL as the verb here; either way nothing runs and no board opens.
    assert_usage_error(run_offline(["--db", "sqlite:///x.db", "list"], parser=chat))
    assert_usage_error(
        run_offline(["--db=sqlite:///x.db", "list"], parser=chat),
        "unrecognized arguments: --db=sqlite:///x.db",
    )
    assert_usage_error(
        run_offline(["list", "--db", "sqlite:///x.db"], parser=chat),
        "unrecognized arguments: --db sqlite:///x.db",
    )


def test_the_chat_tree_still_runs_verbs(run, opened):
    result = run(["create", "From chat"], parser=build_parser(with_db_option=False))

    assert result.exit_code == 0
    assert texts(result)[0].startswith("Created t1")
    assert opened == [None]


def test_a_custom_prog_names_the_usage(run_offline):
    result = run_offline(["-h"], parser=build_parser(prog="/kanban", with_db_option=False))

    assert output(result).startswith("usage: /kanban [-h] <verb> ...")


def test_the_parser_raises_instead_of_exiting():
    parser = build_parser()

    with pytest.raises(HelpRequested) as helped:
        parser.parse_args(["-h"])
    assert helped.value.exit_code == 0
    assert helped.value.text.startswith(ROOT_USAGE)

    with pytest.raises(UsageError) as refused:
        parser.parse_args(["assign"])
    assert refused.value.exit_code == 2
    assert refused.value.usage == "usage: kanban assign [-h] task_id assignee"

    with pytest.raises(HelpRequested):
        parser.print_usage()
    with pytest.raises(UsageError) as exited:
        parser.exit(3, "boom\n")
    assert str(exited.value) == "boom"


class TestSplitCommandLine:
    def test_plain_shell_words(self):
        assert split_command_line("create 'Fix the bug' --assignee coder") == [
            "create",
            "Fix the bug",
            "--assignee",
            "coder",
        ]

    @pytest.mark.parametrize(
        "line",
        [
            "create \u201cFix the bug\u201d --assignee coder",
            "create \u201eFix the bug\u201c --assignee coder",
            "create \u2018Fix the bug\u2019 --assignee coder",
            "create \u201cFix the bug\u201d \u2014assignee coder",
            "create \u201cFix the bug\u201d \u2013assignee coder",
            "create\u00a0\u201cFix the bug\u201d\u00a0\u2014assignee\u00a0coder",
        ],
    )
    def test_smart_quotes_and_dashes_are_undone(self, line):
        assert split_command_line(line) == ["create", "Fix the bug", "--assignee", "coder"]

    def test_a_corrected_double_dash_flag_with_a_value(self):
        assert split_command_line("list \u2014status ready \u2014json") == [
            "list",
            "--status",
            "ready",
            "--json",
        ]

    def test_dashes_inside_words_are_kept(self):
        assert split_command_line("comment t1 pages 3\u20135 and co\u2014op") == [
            "comment",
            "t1",
            "pages",
            "3\u20135",
            "and",
            "co\u2014op",
        ]

    def test_a_dash_in_quoted_prose_is_not_a_flag(self):
        # Only a dash that starts a flag was "corrected" by the keyboard; prose keeps its dash.
        assert split_command_line('comment t1 "wait \u2014 really"') == [
            "comment",
            "t1",
            "wait \u2014 really",
        ]

    @pytest.mark.parametrize(
        "line",
        ['create "Fix the bug', "create 'Fix the bug", "create \u201cFix the bug", 'x "a" "b'],
    )
    def test_unbalanced_quotes_are_a_usage_error(self, line):
        with pytest.raises(UsageError, match="check your quotes") as refused:
            split_command_line(line)
        assert refused.value.exit_code == 2
        assert "No closing quotation" in str(refused.value)

    def test_a_chat_line_runs_end_to_end(self, run, board):
        chat = build_parser(with_db_option=False)
        line = (
            "create \u201cFix the \u2018login\u2019 bug\u201d \u2014assignee coder \u2014priority 3"
        )

        result = run(split_command_line(line), parser=chat)

        assert texts(result) == ["Created t1  (ready, assignee=coder)"]
        task = board.get(result.created[0])
        assert (task.title, task.assignee, task.priority) == ("Fix the 'login' bug", "coder", 3)


def test_run_command_reuses_a_given_parser(run_offline):
    parser = build_parser()

    first = run_offline(["assign"], parser=parser)
    second = run_offline(["assign"], parser=parser)

    assert first == second
    assert first.exit_code == 2
