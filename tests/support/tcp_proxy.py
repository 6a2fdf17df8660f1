"""A loopback TCP proxy a test can cut: a host's road to its database, as a network sees it.

``pass`` forwards both ways. ``hold`` is a partition: the bytes each side sends are kept, not
delivered (as on a link that drops packets, which TCP retransmits later), and new connections
are accepted but get nothing; ``heal`` delivers what was held, in order, and forwards again —
so writes a cut-off host sent during the partition land after it, as they would. ``refuse``
resets every open connection and every new one at once.

It runs on threads of its own (unlike ``network.Relay``, which lives in the test's event loop):
a host's database traffic must keep flowing while the test blocks on a query of its own.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from dataclasses import dataclass, field

_CHUNK = 65536


@dataclass
class _Pipe:
    """One proxied connection: both sockets and what each side sent while held."""

    client: socket.socket
    upstream: socket.socket
    held: dict[str, list[bytes]] = field(default_factory=lambda: {"up": [], "down": []})


class TcpProxy:
    """Listens on 127.0.0.1 (an ephemeral port) and forwards to ``target``."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self._lock = threading.Lock()
        self._mode = "pass"
        self._pipes: list[_Pipe] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._closed = False
        threading.Thread(target=self._accept, daemon=True, name="tcp-proxy").start()

    @property
    def mode(self) -> str:
        return self._mode

    def hold(self) -> None:
        """Partition: keep every byte from now on, deliver none."""
        with self._lock:
            self._mode = "hold"

    def heal(self) -> None:
        """End a partition: deliver what was held, in order, then forward again."""
        with self._lock:
            self._mode = "pass"
            for pipe in self._pipes:
                for direction, target in (("up", pipe.upstream), ("down", pipe.client)):
                    for chunk in pipe.held[direction]:
                        with contextlib.suppress(OSError):
                            target.sendall(chunk)
                    pipe.held[direction].clear()

    def refuse(self) -> None:
        """Reset every open connection, and every new one until ``heal``."""
        with self._lock:
            self._mode = "refuse"
            pipes, self._pipes = self._pipes, []
        for pipe in pipes:
            _reset(pipe.client)
            _reset(pipe.upstream)

    def close(self) -> None:
        self._closed = True
        self.refuse()
        with contextlib.suppress(OSError):
            self._listener.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self._mode == "refuse":
                _reset(client)
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                _reset(client)
                continue
            pipe = _Pipe(client, upstream)
            with self._lock:
                self._pipes.append(pipe)
            for source, sink, direction in ((client, upstream, "up"), (upstream, client, "down")):
                threading.Thread(
                    target=self._pump, args=(pipe, source, sink, direction), daemon=True
                ).start()

    def _pump(self, pipe: _Pipe, source: socket.socket, sink: socket.socket, way: str) -> None:
        while True:
            try:
                chunk = source.recv(_CHUNK)
            except OSError:
                chunk = b""
            with self._lock:
                if not chunk:
                    # One side ended: so does the connection (held bytes are lost with it).
                    with contextlib.suppress(ValueError):
                        self._pipes.remove(pipe)
                    for end in (pipe.client, pipe.upstream):
                        with contextlib.suppress(OSError):
                            end.shutdown(socket.SHUT_RDWR)
                        end.close()
                    return
                if self._mode == "hold":
                    pipe.held[way].append(chunk)
                    continue
            with contextlib.suppress(OSError):
                sink.sendall(chunk)  # a failure ends the connection at the next recv


def _reset(sock: socket.socket) -> None:
    """Close with a TCP reset (linger 0), as a network that gave up on the peer would."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.close()
