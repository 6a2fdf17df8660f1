"""Adapters mark one-to-one chats as private (where a sign-in link may be sent), nothing else."""

from __future__ import annotations

import pytest

from adapters import slack_inbound


@pytest.mark.parametrize(
    ("channel", "name", "private"),
    [
        ("D0123", "directmessage", True),
        ("D0123", None, True),
        ("C0123", "general", False),
        ("G0123", "privategroup", False),
    ],
)
def test_a_slack_slash_command_is_private_only_in_a_dm(channel, name, private) -> None:
    body = {"channel_id": channel, "user_id": "U1", "command": "/web", "trigger_id": "t1"}
    if name:
        body["channel_name"] = name
    message = slack_inbound.slash_message(body, "/kanban")
    assert message is not None
    assert message.private is private


@pytest.mark.parametrize(("channel_type", "private"), [("im", True), ("channel", False)])
def test_a_slack_mention_is_private_only_in_a_dm(channel_type, private) -> None:
    event = {
        "channel": "D1" if private else "C1",
        "channel_type": channel_type,
        "user": "U1",
        "text": "<@B1> web",
        "ts": "1.0",
    }
    message = slack_inbound.mention_message(event, {"event_id": "e1"}, "B1", "kanban")
    assert message is not None
    assert message.private is private
