"""The org tree (`configs/org.yaml`): grids under communities under streets under a district.

Grids may name a `backup` grid (AB角): the adjacent grid that covers when the owner does not respond.

Functional departments (职能部门: 城管执法, 公安派出所, 应急管理, 水务, 燃气, 消防, 供电…) stand beside the
territorial units: `level: department`, attached to the street or the district that dispatches to them (their
`parent`, where their overdue cases escalate). `kind` says what the department is (城管, 燃气…).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from gridwatch.core.config import Strict, first_repeat
from gridwatch.core.names import NAME, RESERVED
from hub.policy.sla import Level

LEVELS: tuple[Level, ...] = ("grid", "community", "street", "district")
UnitLevel = Level | Literal["department"]


class Unit(Strict):
    id: str = Field(pattern=NAME.pattern)
    level: UnitLevel
    name: str = ""
    kind: str = Field("", max_length=32, description="departments: what it does (城管, 燃气, 消防…)")
    parent: str | None = None
    backup: str | None = Field(None, description="grids only: the AB-role grid notified first")
    area: list[tuple[float, float]] | None = Field(
        None, min_length=3, description="grids: the outline on the map, [longitude, latitude] pairs (WGS-84, "
                                        "GeoJSON order)")

    @field_validator("area")
    @classmethod
    def _area(cls, v: list[tuple[float, float]] | None) -> list[tuple[float, float]] | None:
        for lon, lat in v or []:
            if not (-180 <= lon <= 180 and -90 <= lat <= 90):
                raise ValueError(f"[{lon}, {lat}] is not a [longitude, latitude] pair")
        return v

    @field_validator("id")
    @classmethod
    def _not_reserved(cls, v: str) -> str:
        if v in RESERVED:
            raise ValueError(f"{v!r} is reserved (gw/{v}/… carries case events)")
        return v


class OrgFile(Strict):
    units: list[Unit] = Field(min_length=1)

    @model_validator(mode="after")
    def _tree(self) -> OrgFile:
        if (twice := first_repeat(u.id for u in self.units)) is not None:
            raise ValueError(f"duplicate unit id {twice!r}")
        by_id = {u.id: u for u in self.units}
        for u in self.units:
            if u.level == "district":
                if u.parent is not None:
                    raise ValueError(f"{u.id}: a district has no parent")
                continue
            parent = by_id.get(u.parent or "")
            if parent is None:
                raise ValueError(f"{u.id}: parent {u.parent!r} is not a unit")
            if u.level == "department" or parent.level == "department":
                if u.level != "department" or parent.level not in ("street", "district"):
                    raise ValueError(f"{u.id}: a department is attached to a street or the district, and has no "
                                     f"units under it")
                if u.backup is not None or u.area is not None:
                    raise ValueError(f"{u.id}: a department has no backup grid and no area")
                continue
            if LEVELS.index(parent.level) != LEVELS.index(u.level) + 1:
                raise ValueError(f"{u.id}: a {u.level}'s parent must be a {LEVELS[LEVELS.index(u.level) + 1]}, "
                                 f"not the {parent.level} {parent.id!r}")
            if u.backup is not None:
                other = by_id.get(u.backup)
                if u.level != "grid" or other is None or other.level != "grid" or other.id == u.id:
                    raise ValueError(f"{u.id}: backup must name another grid")
        return self


class Org:
    """Lookups over a validated tree."""

    def __init__(self, spec: OrgFile) -> None:
        self.units = {u.id: u for u in spec.units}
        self.children: dict[str, list[str]] = {u.id: [] for u in spec.units}
        for u in spec.units:
            if u.parent:
                self.children[u.parent].append(u.id)

    def parent(self, unit: str) -> str | None:
        return self.units[unit].parent

    def chain(self, unit: str) -> list[str]:
        """The unit and its ancestors, up to the district."""
        out = [unit]
        while (p := self.units[out[-1]].parent) is not None:
            out.append(p)
        return out

    def subtree(self, unit: str) -> set[str]:
        out, stack = set(), [unit]
        while stack:
            u = stack.pop()
            out.add(u)
            stack.extend(self.children.get(u, ()))
        return out

    def departments(self) -> list[Unit]:
        return [u for u in self.units.values() if u.level == "department"]

    def within(self, unit: str, ancestor: str) -> bool:
        return ancestor in self.chain(unit)

    def owner_at(self, grid: str, level: Level) -> str:
        """The unit at `level` above a grid (where a policy's start_level puts a new case)."""
        for u in self.chain(grid):
            if self.units[u].level == level:
                return u
        raise ValueError(f"grid {grid!r} has no {level} above it")
