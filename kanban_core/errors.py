"""The kernel's exception tree; every error a user can cause is a KanbanError.

KanbanError                 refused or invalid; exit code 1, message shown to the user
 ├── UsageError             the command line itself is wrong; exit code 2
 │    └── HelpRequested     -h/--help: not an error, carries the help text
 ├── ValidationError        a value is malformed (title, duration, metadata, path …)
 ├── TaskNotFound           no task with that id
 ├── InvalidTransition      the task's state does not allow the operation
 ├── StaleRun               a worker write names a run that is not the task's current one
 ├── PermissionDenied       the caller's identity may not do this
 └── StorageError           the database is unreachable, locked for too long or too new
      └── BoardNotFound     no board where the settings point (only creating verbs make one)
"""

from __future__ import annotations


class KanbanError(Exception):
    """A refused or invalid operation; the message is one line meant for the user."""

    exit_code = 1


class UsageError(KanbanError):
    """The command line is malformed."""

    exit_code = 2

    def __init__(self, message: str, usage: str = "") -> None:
        super().__init__(message)
        self.usage = usage


class HelpRequested(UsageError):
    """Help was asked for; carries the help text."""

    exit_code = 0

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


class ValidationError(KanbanError):
    """A value is malformed."""


class TaskNotFound(KanbanError):
    """No task with that id."""

    def __init__(self, task_ref: str) -> None:
        super().__init__(f"no such task: {task_ref}")


class InvalidTransition(KanbanError):
    """The task's current state does not allow the operation."""


class StaleRun(KanbanError):
    """A worker write names a run that is not (or no longer) the task's current attempt."""


class PermissionDenied(KanbanError):
    """The caller's identity does not allow the operation."""


class StorageError(KanbanError):
    """The database cannot be used (unreachable, corrupt, or from a newer version)."""


class BoardNotFound(StorageError):
    """There is no board where the settings point (reads never create one)."""
