"""Surfaces besides chat that the gateway serves in its own loop (the web board), and verbs
they add to the ``kanban`` tree — both found through entry points, so the gateway imports none.

A surface's factory receives a SurfaceContext and returns the surface, or None when its
section of config.yaml leaves it off.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Protocol

from gateway.access import AccessPolicy, Role
from gateway.executor import KernelExecutor
from gateway.messages import Document, IncomingMessage
from gateway.slash import SlashCommand
from kanban_core import Kanban
from kanban_core.dispatch.dispatcher import Dispatcher

SURFACE_GROUP = "kanban_gateway.surfaces"
#: A chat command a surface adds (``/web``): the message and the sender's role in, the reply out.
ChatCommand = Callable[[IncomingMessage, Role], Awaitable[Document]]
VERB_GROUP = "kanban_gateway.verbs"


@dataclass(frozen=True, slots=True)
class SurfaceCommand:
    """A surface's chat command: what the platforms' menus say about it, and its answer."""

    description: str
    answer: ChatCommand
    #: Answered to the sender alone where the platform can (``SlashCommand.private``).
    private: bool = False

    async def __call__(self, message: IncomingMessage, role: Role) -> Document:
        """Answer it (the router calls it like any ChatCommand)."""
        return await self.answer(message, role)


@dataclass(frozen=True, slots=True)
class SurfaceContext:
    """What the gateway shares with a surface: its board, kernel thread, access and dispatcher."""

    board: Kanban
    executor: KernelExecutor
    access: AccessPolicy
    environ: Mapping[str, str]
    config_file: Path
    nudge: Callable[[], None]
    dispatcher: Dispatcher | None = None


class Surface(Protocol):
    """Served until ``stop`` is set; told when the board changed (the shared change watch)."""

    name: str
    #: Chat commands by name, answered by the router when typed with nothing after them, and
    #: listed in the platforms' command menus.
    chat_commands: Mapping[str, SurfaceCommand]

    def on_change(self) -> None:
        """The board may have changed (called in the loop)."""
        ...

    async def run(self, stop: asyncio.Event) -> None:
        """Serve; return once ``stop`` is set and everything is closed."""
        ...


def load_surfaces(context: SurfaceContext) -> list[Surface]:
    """Every installed surface its config turns on (the factory raises on a bad config)."""
    surfaces: list[Surface] = []
    for entry in sorted(entry_points(group=SURFACE_GROUP), key=lambda e: e.name):
        surface = entry.load()(context)
        if surface is not None:
            surfaces.append(surface)
    return surfaces


def surface_menu(surfaces: Iterable[Surface]) -> tuple[SlashCommand, ...]:
    """The surfaces' chat commands as menu entries (``chat_menu`` adds them to the shared ones)."""
    return tuple(
        SlashCommand(name, command.description, private=command.private)
        for surface in surfaces
        for name, command in surface.chat_commands.items()
    )


def verb_registrars() -> tuple[Callable[[Any], None], ...]:
    """The ``register(sub)`` of every verb a surface adds to the tree (``kanban web``)."""
    return tuple(entry.load() for entry in entry_points(group=VERB_GROUP))
