"""Which devices an agent takes readings from: one grid per device, a cap on how many, strict lists.

A device id names one device: the first grid it is heard in (or the device list's grid) is its grid, and a
message that says otherwise is refused (`grid_mismatch`) instead of sharing, and blinding, that device's
rule state. Devices beyond `limits.max_devices` are refused (`device_cap`), so made-up ids cannot grow
the agent's state (and the hub's cases) without bound. With `devices.strict`, only listed devices count.
Gateways' own status events (`Event.members`) are not devices and pass.
"""

from __future__ import annotations

from collections.abc import Iterable

from edge.message import Event


class DevicePolicy:
    def __init__(self, listed: dict[str, str], *, strict: bool, cap: int) -> None:
        self.listed = listed
        self.strict = strict
        self.cap = cap
        self.grid_of: dict[str, str] = dict(listed)

    def relist(self, listed: dict[str, str]) -> None:
        """A new device list (the hub's registry changed): listed devices take their listed grid, devices
        no longer listed are forgotten (heard again, they count as new)."""
        for device in self.listed.keys() - listed.keys():
            self.grid_of.pop(device, None)
        self.listed = listed
        self.grid_of.update(listed)

    def learn(self, pairs: Iterable[tuple[str, str]]) -> None:
        """Devices already known (from saved rule state after a restart)."""
        for device, grid in pairs:
            if len(self.grid_of) < self.cap:
                self.grid_of.setdefault(device, grid)

    def refusal(self, ev: Event) -> tuple[str, str] | None:
        """(reason, detail) when the event is refused, else None (and the device is now known)."""
        if ev.members is not None:
            return None
        grid = self.grid_of.get(ev.device)
        if grid is not None:
            if grid == ev.grid:
                return None
            where = "listed" if ev.device in self.listed else "heard"
            return "grid_mismatch", f"device {ev.device!r} is {where} in grid {grid!r}, the message says {ev.grid!r}"
        if self.strict:
            return "unknown_device", f"device {ev.device!r} in grid {ev.grid!r} is not in the device list"
        if len(self.grid_of) >= self.cap:
            return "device_cap", (f"device {ev.device!r} would be device {len(self.grid_of) + 1}; "
                                  f"limits.max_devices is {self.cap}")
        self.grid_of[ev.device] = ev.grid
        return None
