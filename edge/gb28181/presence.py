"""Whether a registered GB/T 28181 device or platform is there (pure, clocks passed in), and a per-address
rate limit for REGISTER floods.

A device is online from a successful REGISTER until its registration expires (Expires, §9.1.2.1), it
unregisters (Expires: 0, §9.1.2.2), or `misses` keepalive periods pass without a Keepalive or any other
message from it (§9.6.1: 设备心跳周期 and 心跳超时次数). Each change is said once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

State = Literal["online", "offline"]


@dataclass(slots=True)
class Presence:
    interval: float
    misses: int
    expires_at: float | None = None
    last_seen: float | None = None
    state: State | None = None  # what was last published

    def _say(self, state: State) -> State | None:
        if self.state == state:
            return None
        self.state = state
        return state

    def registered(self, now: float, expires: float) -> State | None:
        self.expires_at = now + expires
        self.last_seen = now
        return self._say("online")

    def unregistered(self) -> State | None:
        self.expires_at = None
        return self._say("offline") if self.state is not None else None

    def heard(self, now: float) -> State | None:
        """A keepalive (or any message) from a registered device."""
        if self.expires_at is None or now > self.expires_at:
            return None
        self.last_seen = now
        return self._say("online")

    @property
    def registered_now(self) -> bool:
        return self.expires_at is not None

    def check(self, now: float) -> tuple[State | None, str]:
        """(`offline` when it has just gone, why)."""
        if self.state != "online":
            return None, ""
        if self.expires_at is not None and now > self.expires_at:
            self.expires_at = None
            return self._say("offline"), "registration_expired"
        if self.last_seen is not None and now - self.last_seen > self.interval * self.misses:
            self.expires_at = None  # it must register again (GB/T 28181 §9.6.1: 设备离线后重新注册)
            return self._say("offline"), "keepalive_lost"
        return None, ""


@dataclass(slots=True)
class RateLimit:
    """A token bucket per source address: `rate` a second, bursts of `rate`."""

    rate: float
    buckets: dict[str, tuple[float, float]] = field(default_factory=dict)  # address -> (tokens, at)

    def take(self, source: str, now: float) -> bool:
        tokens, at = self.buckets.get(source, (self.rate, now))
        tokens = min(self.rate, tokens + (now - at) * self.rate)
        if len(self.buckets) > 100_000:  # a spoofed-source flood cannot grow this without bound
            self.buckets.clear()
        if tokens < 1:
            self.buckets[source] = (tokens, now)
            return False
        self.buckets[source] = (tokens - 1, now)
        return True
