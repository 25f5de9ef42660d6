"""The base of every config model: strict (a misspelt key is an error), frozen, aliases accepted; and the
config shapes edge and hub share (MQTT over TLS)."""

from __future__ import annotations

import ssl
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, Field


class Strict(BaseModel):
    """Base of every config model: a misspelt key is an error, not a silent default."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def time_zone(tz: str) -> str:
    """An IANA zone name the system knows, or a ValueError saying what is expected."""
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {tz!r} (expected an IANA name like Asia/Shanghai)") from None
    return tz


TimeZone = Annotated[str, AfterValidator(time_zone)]
"""A config field naming a time zone (`Asia/Shanghai`)."""


def first_repeat(ids: Iterable[str]) -> str | None:
    """The first id met a second time, or None: the check of every config list whose entries have ids."""
    seen: set[str] = set()
    for i in ids:
        if i in seen:
            return i
        seen.add(i)
    return None


class MqttTls(Strict):
    """MQTT over TLS (Mosquitto `listener 8883` with `cafile`/`certfile`/`keyfile`)."""

    ca_file: Path = Field(description="CA that signed the broker's certificate")
    cert_file: Path | None = Field(None, description="client certificate, when the broker requires one")
    key_file: Path | None = None
    server_name: str | None = Field(None, description="name to check the broker's certificate against "
                                                      "(default: host)")

    def resolved(self, fix: Callable[[Path], Path]) -> MqttTls:
        """Relative paths made absolute by `fix` (against the config file's directory)."""
        return self.model_copy(update={"ca_file": fix(self.ca_file),
                                       "cert_file": fix(self.cert_file) if self.cert_file else None,
                                       "key_file": fix(self.key_file) if self.key_file else None})

    def context(self) -> ssl.SSLContext:
        """A client context: the broker's certificate checked against `ca_file` and its name against
        `server_name` (or the host connected to); the client certificate when given."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        if self.server_name:
            ctx = _NamedContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.server_name = self.server_name
        ctx.load_verify_locations(cafile=str(self.ca_file))
        if self.cert_file is not None:
            ctx.load_cert_chain(str(self.cert_file), str(self.key_file) if self.key_file else None)
        return ctx


class _NamedContext(ssl.SSLContext):
    """Checks the peer against a fixed name instead of the host the client connected to (MQTT clients
    pass their host as `server_hostname`)."""

    server_name: str | None = None

    def wrap_socket(self, sock: Any, *args: Any, **kwargs: Any) -> ssl.SSLSocket:
        kwargs["server_hostname"] = self.server_name
        return super().wrap_socket(sock, *args, **kwargs)
