"""The run's answer to its agent's permission requests: the profile's policy, then a person.

The policy decides what it can at once (reads and edits inside the workspace, anything outside
it). What it leaves to a person becomes a durable request on the board, which every chat
subscribed to the task sees as a card; the agent waits for the first answer, or until the
request expires (a denial), or until the run is stopped.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from kanban_core.board.domain import (
    Actor,
    PermissionDecision,
    PermissionRequest,
    PermissionStatus,
    RunId,
    TaskId,
)
from kanban_core.board.kanban import Kanban
from kanban_core.dispatch.acp_session import AgentAsk, Answer, Verdict
from kanban_core.errors import KanbanError
from kanban_core.permission_policy import (
    PermissionAsk,
    PermissionPolicy,
    PolicyAction,
    ToolKind,
)

#: How soon a waiting request notices that the run is stopping (an answer wakes it at once).
_STOP_CHECK_S = 0.5


@dataclass(frozen=True, slots=True)
class BoardAsker:
    """Decides one run's permission requests through its policy and the board."""

    board: Kanban
    actor: Actor
    task_id: TaskId
    run_id: RunId
    policy: PermissionPolicy
    workspace: Path
    ttl_s: int
    note: Callable[[str], None]

    def ask(self, ask: AgentAsk, cancelled: threading.Event) -> Answer:
        """Allow or deny at once where the policy decides; otherwise wait for a person."""
        try:
            kind = ToolKind(ask.tool_kind)
        except ValueError:
            kind = ToolKind.OTHER  # an unknown kind is treated as the least known one
        request = PermissionAsk(
            tool_kind=kind, tool_name=ask.tool_name, summary=ask.summary, paths=ask.paths
        )
        try:
            grants = self.board.run_grants(self.run_id)
            decision = self.policy.decide(request, self.workspace, grants)
            if decision.action is PolicyAction.ALLOW:
                return Answer(Verdict.ALLOW_ONCE, decision.reason)
            if decision.action is PolicyAction.DENY:
                return Answer(Verdict.DENY, f"denied by the profile's policy ({decision.reason})")
            asked = self.board.request_permission(
                self.actor,
                self.task_id,
                tool_kind=kind.value,
                tool_name=ask.tool_name,
                summary=ask.summary,
                detail=ask.detail or None,
                paths=ask.paths,
                ttl_s=self.ttl_s,
            )
            self.note(f"asked a person: {asked.ref} {kind.value} {ask.summary!r}")
            answered = self.board.wait_permission(
                asked.ref, stop=cancelled.is_set, probe_s=_STOP_CHECK_S
            )
        except KanbanError as exc:
            # A board that cannot record the question cannot answer it: never a silent allow.
            return Answer(Verdict.DENY, f"the request could not be recorded: {exc}")
        return _answer(answered)


def _answer(request: PermissionRequest) -> Answer:
    if request.status is PermissionStatus.ALLOWED:
        by = f" by {request.answered_by}" if request.answered_by else ""
        if request.decision is PermissionDecision.ALLOW_RUN:
            return Answer(Verdict.ALLOW_RUN, f"allowed for this run{by}")
        return Answer(Verdict.ALLOW_ONCE, f"allowed{by}")
    if request.status is PermissionStatus.DENIED:
        reason = f": {request.reason}" if request.reason else ""
        return Answer(Verdict.DENY, f"denied by {request.answered_by}{reason}")
    if request.status is PermissionStatus.EXPIRED:
        return Answer(Verdict.DENY, f"nobody answered {request.ref} in time; treat it as denied")
    # Withdrawn (its run ended, or is stopping): ACP wants "cancelled" then, not a refusal.
    return Answer(Verdict.DENY, "the run is stopping; the request was withdrawn", withdrawn=True)
