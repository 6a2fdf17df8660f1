"""The ``web:`` section of config.yaml, declared and checked: where the board listens, and how."""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from pydantic import Field

from kanban_core.config.model import Section
from web.errors import WebError

log = logging.getLogger(__name__)
Positive = Annotated[int, Field(gt=0)]
DEFAULT_PORT = 8787


class WebSection(Section):
    """The web board: off unless enabled; loopback only unless TLS or an explicit opt-out."""

    enabled: bool = False
    host: str = "127.0.0.1"
    port: Annotated[int, Field(gt=0, lt=65536)] = DEFAULT_PORT
    # The address people open (behind a reverse proxy); login links are built on it.
    public_url: str | None = None
    tls_cert_file: str | None = None
    tls_key_file: str | None = None
    allow_insecure_remote: bool = False
    session_ttl_hours: Positive = 12
    link_ttl_minutes: Annotated[int, Field(gt=0, le=60)] = 10
    max_body_kib: Positive = 512


@dataclass(frozen=True, slots=True)
class WebSettings:
    """The section as the server uses it."""

    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    public_url: str | None = None
    tls_cert_file: str | None = None
    tls_key_file: str | None = None
    allow_insecure_remote: bool = False
    session_ttl_s: int = 12 * 3600
    link_ttl_s: int = 600
    max_body_bytes: int = 512 * 1024

    @property
    def tls(self) -> bool:
        """Whether the server speaks HTTPS itself."""
        return bool(self.tls_cert_file and self.tls_key_file)

    @property
    def base_url(self) -> str:
        """Where a browser reaches the board (login links point here)."""
        if self.public_url:
            return self.public_url.rstrip("/")
        scheme = "https" if self.tls else "http"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}"

    def with_address(self, host: str | None, port: int | None) -> WebSettings:
        """The same settings listening elsewhere (``kanban web --host --port``)."""
        from dataclasses import replace

        return replace(self, host=host or self.host, port=self.port if port is None else port)


def from_section(section: WebSection) -> WebSettings:
    """The checked section as settings."""
    return WebSettings(
        enabled=section.enabled,
        host=section.host,
        port=section.port,
        public_url=section.public_url,
        tls_cert_file=section.tls_cert_file,
        tls_key_file=section.tls_key_file,
        allow_insecure_remote=section.allow_insecure_remote,
        session_ttl_s=section.session_ttl_hours * 3600,
        link_ttl_s=section.link_ttl_minutes * 60,
        max_body_bytes=section.max_body_kib * 1024,
    )


def load_web_settings(path: Path) -> WebSettings:
    """The ``web`` section of the validated file; no file: the defaults (disabled)."""
    if not path.is_file():
        return WebSettings()
    from kanban_core.config.model import load_file

    document = load_file(path)
    section = getattr(document, "web", None)
    return from_section(section) if isinstance(section, WebSection) else WebSettings()


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_bind(settings: WebSettings) -> None:
    """Refuse a remote address without TLS (or the explicit opt-out); warn when opted out.

    Sessions ride on a cookie: over plain HTTP anyone on the path can read and replay it.
    """
    if bool(settings.tls_cert_file) != bool(settings.tls_key_file):
        raise WebError("web: set both tls_cert_file and tls_key_file, or neither")
    for name in ("tls_cert_file", "tls_key_file"):
        value = getattr(settings, name)
        if value and not Path(value).is_file():
            raise WebError(f"web.{name}: {value} is not a readable file")
    if is_loopback(settings.host) or settings.tls:
        return
    if not settings.allow_insecure_remote:
        raise WebError(
            f"web: refusing to listen on {settings.host} without TLS; set tls_cert_file and "
            "tls_key_file, or allow_insecure_remote: true behind a TLS proxy"
        )
    log.warning(
        "web board listening on %s without TLS (allow_insecure_remote): session cookies "
        "cross the network in the clear unless a TLS proxy is in front",
        settings.host,
        extra={"action": "insecure_remote"},
    )
