"""A fake coding agent: a real process the worker supervisor starts for a workspace turn.

It reads the person's message from the end of its prompt (its last argument) and follows the
instructions in it, one per line or separated by ``;``:

- ``write <path>`` creates ``<path>`` (relative to its cwd, directories made as needed);
- ``wait <name>`` writes ``waiting-<name>`` (holding its pid) into the log directory and
  blocks until ``release-<name>`` appears there;
- ``fail`` exits 3 without completing (the supervisor records the failure).

Everything else is chatter. Run it by path (``python …/fake_agent.py "{prompt}"``), not with
``-m``, which imports from the cwd, where the agent may just have written a ``tests.py``.

Each call appends one JSON line to ``calls.jsonl`` in the directory named by ``FAKE_AGENT_DIR``
— the agent and kanban session ids, the resume flag, the message, its cwd and pid — and, unless
told to fail, the agent ends its turn with ``kanban complete --summary "…"`` as a real agent
would.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

#: The prompt ends with "message from <who>:\n<text>" (see workspaces.interactive.turns._prompt).
_MARKER = "message from "
_WAIT_LIMIT_S = 120.0
_POLL_S = 0.02


def message_of(prompt: str) -> str:
    """The person's message at the end of the prompt."""
    at = prompt.rfind(_MARKER)
    if at < 0:
        return prompt
    return prompt[at:].partition(":\n")[2]


def instructions(message: str) -> list[tuple[str, str]]:
    """(verb, argument) pairs the message asks for, in order."""
    found = []
    for line in message.splitlines():
        for part in line.split(";"):
            verb, _, arg = part.strip().partition(" ")
            if verb in ("write", "wait", "fail"):
                found.append((verb, arg.strip()))
    return found


def main(argv: list[str]) -> int:
    """Follow the message's instructions, log the call, then complete (or fail)."""
    log_dir = Path(os.environ["FAKE_AGENT_DIR"])
    message = message_of(argv[-1] if argv else "")
    record = {
        "agent_session_id": os.environ.get("KANBAN_AGENT_SESSION_ID"),
        "session_id": os.environ.get("KANBAN_SESSION_ID"),
        "resume": os.environ.get("KANBAN_RESUME"),
        "turn_id": os.environ.get("KANBAN_TURN_ID"),
        "task": os.environ.get("KANBAN_TASK"),
        "message": message,
        "cwd": str(Path.cwd()),
        "pid": os.getpid(),
    }
    with (log_dir / "calls.jsonl").open("a", encoding="utf-8") as log:
        log.write(json.dumps(record) + "\n")
    done = []
    for verb, arg in instructions(message):
        if verb == "write":
            path = Path(arg)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(f"# {arg}, written by the fake agent\n", encoding="utf-8")
            done.append(f"wrote {arg}")
        elif verb == "wait":
            (log_dir / f"waiting-{arg}").write_text(str(os.getpid()), encoding="utf-8")
            deadline = time.monotonic() + _WAIT_LIMIT_S
            while not (log_dir / f"release-{arg}").exists():
                if time.monotonic() > deadline:
                    return 4
                time.sleep(_POLL_S)
        else:
            print("failing on purpose", flush=True)
            return 3
    summary = "; ".join(done) or f"read: {message[:80]}"
    return subprocess.run(["kanban", "complete", "--summary", summary], check=False).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
