"""The gateway process: adapters, router, notifier and dispatch loop in one event loop."""

from __future__ import annotations

import asyncio
import functools
import logging
import signal
from collections.abc import Mapping
from importlib.metadata import entry_points
from pathlib import Path

from gateway.adapter import ChatAdapter
from gateway.changes import ChangeMonitor
from gateway.config import GatewayConfig, load_gateway_config
from gateway.connections import AdapterMaker, PlatformConnections
from gateway.errors import ConfigError, GatewayError
from gateway.executor import KernelExecutor
from gateway.leases import LEADER, LeaseKeeper, instance_id
from gateway.maintenance import MaintenanceLoop
from gateway.messages import Document, IncomingMessage
from gateway.notifier import Notifier
from gateway.remote_exec import ExecLoop
from gateway.router import Router
from gateway.scheduler import DispatchLoop
from gateway.slash import chat_menu
from gateway.surfaces import Surface, SurfaceContext, load_surfaces, surface_menu
from kanban_core import Kanban, KernelSettings
from kanban_core.config import KanbanConfig, config_path, load_config
from kanban_core.dispatch.dispatcher import Dispatcher
from kanban_core.dispatch.hardening import make_undumpable
from kanban_core.dispatch.sandbox import containment
from kanban_core.dispatch.spawn import SubprocessSpawner
from kanban_core.workspaces.interactive import reconcile

log = logging.getLogger(__name__)
ADAPTER_GROUP = "kanban_gateway.adapters"
_STOP_TIMEOUT_S = 10.0


def adapter_makers(config: GatewayConfig, environ: Mapping[str, str]) -> dict[str, AdapterMaker]:
    """A maker of each enabled platform's adapter, through its entry point."""
    available = {ep.name: ep for ep in entry_points(group=ADAPTER_GROUP)}
    problems = [
        f"platforms.{name}: no adapter installed (known: {', '.join(sorted(available)) or 'none'})"
        for name in config.enabled_platforms
        if name not in available
    ]
    if problems:
        raise ConfigError(problems)
    factories: dict[str, AdapterMaker] = {}
    for name in config.enabled_platforms:
        factory = available[name].load()
        section = config.platforms.get(name, {})
        factories[name] = functools.partial(factory, section, environ)
    return factories


def load_adapters(config: GatewayConfig, environ: Mapping[str, str]) -> dict[str, ChatAdapter]:
    """Build each enabled platform's adapter through its entry point."""
    return {name: make() for name, make in adapter_makers(config, environ).items()}


class Gateway:
    """One long-running process; ``run`` returns the exit code."""

    def __init__(self, settings: KernelSettings, environ: Mapping[str, str]) -> None:
        self.settings = settings
        self.environ = environ
        self.stop = asyncio.Event()
        self.config_file: Path = config_path(environ, settings.home)
        #: Starts worker supervisors; they outlive the gateway (a restart is not a crash), and
        #: the spawner stays reachable after ``run`` so an embedding process can reap them.
        self.spawner = SubprocessSpawner(environ)

    async def run(self) -> int:
        """Start everything, serve until SIGTERM/SIGINT, drain, stop."""
        # Agents run as the same user: keep our chat tokens out of their reach via /proc.
        if not make_undumpable():
            log.warning("could not make the gateway non-dumpable: agents may read its /proc")
        gateway_config = load_gateway_config(self.config_file)
        load_config(self.config_file, self.environ)  # fail at start on an invalid kernel config
        factories = adapter_makers(gateway_config, self.environ)
        # Built once for what they declare (message limits); each start makes a fresh one.
        adapters = {name: make() for name, make in factories.items()}
        board = Kanban.open(self.settings)
        executor = KernelExecutor(threads=1 if board.db.dialect == "sqlite" else 4)
        spawner = self.spawner
        owner = instance_id()
        # Its own thread: a long dispatcher pass must not hold up a renewal past the lease.
        lease_executor = KernelExecutor(threads=1)
        host_id = board.host.host_id if board.host is not None else None
        leader = LeaseKeeper(
            board.db,
            lease_executor,
            LEADER,
            lease_s=gateway_config.lease_s,
            owner=owner,
            host_id=host_id,
        )
        dispatcher = Dispatcher(
            board,
            config=lambda: load_config(self.config_file, self.environ),
            spawner=spawner,
            leader=lambda: leader.holding,
        )
        kernel_config = load_config(self.config_file, self.environ)
        _log_containment(kernel_config)
        interval = kernel_config.dispatcher.dispatch_interval_seconds
        recovered = await executor.run(reconcile.on_start, board, kernel_config.workspaces)
        _log_recovery(recovered)
        # Deliveries go out through the connections this gateway runs now (a live view).
        running: dict[str, ChatAdapter] = {}
        notifier = Notifier(
            board,
            running,
            executor,
            gateway_config.notifier,
            claimer=owner,
            served=factories,
        )
        loop = DispatchLoop(
            dispatcher,
            executor,
            interval_s=interval,
            worker_exited=spawner.any_exited,
            on_pass=lambda _report: notifier.nudge(),
            before_pass=reconcile.Housekeeper(
                board, kernel_config.workspaces, leader=lambda: leader.holding
            ),
        )
        upkeep = MaintenanceLoop(
            board,
            executor,
            lambda: load_config(self.config_file, self.environ).maintenance,
            owner=owner,
            leader=lambda: leader.holding,
        )
        # Commands other hosts sent for this host's workspaces (and, as leader, their expiry).
        remote = ExecLoop(
            board,
            gateway_config.access,
            executor,
            claimer=owner,
            environ=self.environ,
            dispatcher=dispatcher,
            leader=lambda: leader.holding,
            on_settled=notifier.nudge,
            on_turn=loop.nudge,
        )
        surfaces = load_surfaces(
            SurfaceContext(
                board=board,
                executor=executor,
                access=gateway_config.access,
                environ=self.environ,
                config_file=self.config_file,
                nudge=loop.nudge,
                dispatcher=dispatcher,
            )
        )
        router = Router(
            board,
            gateway_config.access,
            executor,
            nudge=loop.nudge,
            dispatcher=dispatcher,
            environ=self.environ,
            budgets={
                name: _diff_budget(adapter.capabilities.max_message_chars)
                for name, adapter in adapters.items()
            },
            chat_commands={
                name: command for s in surfaces for name, command in s.chat_commands.items()
            },
        )

        async def sink(message: IncomingMessage) -> Document | None:
            reply = await router.handle(message)
            notifier.nudge()  # the command may have produced a terminal event
            return reply

        connections = PlatformConnections(
            factories,
            sink,
            db=board.db,
            executor=lease_executor,
            lease_s=gateway_config.lease_s,
            owner=owner,
            host_id=host_id,
            running=running,
            menu=chat_menu(surface_menu(surfaces)),
        )
        event_loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            event_loop.add_signal_handler(signum, self.stop.set)
        try:
            await leader.try_once()  # before the first pass, so a lone gateway maintains at once
            await connections.start()
            # Workers, the CLI and agents change the board from other processes: react at once.
            changes = ChangeMonitor(
                board.watch_changes(),
                executor,
                on_change=(
                    loop.nudge,
                    notifier.nudge,
                    remote.nudge,
                    *(s.on_change for s in surfaces),
                ),
            )
            tasks = [
                asyncio.create_task(loop.run(self.stop), name="dispatch"),
                asyncio.create_task(notifier.run(self.stop), name="notifier"),
                asyncio.create_task(remote.run(self.stop), name="exec"),
                asyncio.create_task(changes.run(self.stop), name="changes"),
                asyncio.create_task(leader.run(self.stop), name="lease:leader"),
                asyncio.create_task(upkeep.run(self.stop), name="maintenance"),
                *connections.tasks(self.stop),
                *(_serve(surface, self.stop) for surface in surfaces),
            ]
            log.info(
                "gateway ready on %s with %s (running %s; lease owner %s)",
                board.db.describe(),
                ", ".join(adapters),
                ", ".join(running) or "none",
                owner,
                extra={"action": "ready"},
            )
            await self.stop.wait()
            log.info("stopping: draining the dispatcher pass in flight", extra={"action": "stop"})
            await asyncio.wait_for(loop.drain(), _STOP_TIMEOUT_S)
            await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), _STOP_TIMEOUT_S)
        finally:
            for signum in (signal.SIGTERM, signal.SIGINT):
                event_loop.remove_signal_handler(signum)
            await connections.close()  # releases the leases: a standby takes over at once
            await leader.release()
            lease_executor.shutdown()
            executor.shutdown()
            board.close()
        log.info("shutdown complete; workers keep running", extra={"action": "stopped"})
        return 0


def _serve(surface: Surface, stop: asyncio.Event) -> asyncio.Task[None]:
    """Run a surface; if it fails, the gateway stops (and says why) rather than limp on."""

    async def run() -> None:
        try:
            await surface.run(stop)
        except Exception:
            log.exception("surface %s failed; stopping the gateway", surface.name)
            stop.set()
            raise

    return asyncio.create_task(run(), name=f"surface:{surface.name}")


def _diff_budget(max_chars: int) -> int:
    # A diff shares its message with a summary; past this it is sent as a file instead.
    return max(500, int(max_chars * 0.6))


def _log_containment(config: KanbanConfig) -> None:
    """Say at start, per profile, whether its agents run contained; loudly when they do not."""
    for name, profile in sorted(config.assignees.items()):
        decided = containment(profile.sandbox)
        if decided.contained:
            log.info("profile %s: agents contained by %s", name, decided.summary)
        else:
            log.warning(
                "profile %s: %s — its agents can read this user's files, the board and other "
                "workspaces (see the README, Containment)",
                name,
                decided.summary,
                extra={"action": "uncontained"},
            )


def _log_recovery(report: reconcile.ReconcileReport) -> None:
    if report.rolled_back:
        log.warning("rolled back interrupted workspace creations: %s", report.rolled_back)
    if report.settled:
        log.info(
            "settled %s workspace turn(s) that ended while the gateway was down", report.settled
        )
    if report.quarantined:
        log.warning("quarantined unknown workspace directories: %s", report.quarantined)
    if report.safe_mode:
        log.error("workspace SAFE MODE, nothing moved or deleted: %s", report.safe_mode)
    for note in report.notes:
        log.warning("workspaces: %s", note)


def run_gateway(settings: KernelSettings, environ: Mapping[str, str]) -> int:
    """Run the gateway in a fresh event loop (the CLI's entry)."""
    try:
        return asyncio.run(Gateway(settings, environ).run())
    except GatewayError:
        raise
    except OSError as exc:
        raise GatewayError(f"cannot start: {exc}") from exc
