"""Routing (分拣分拨, `configs/routing.yaml`): which unit a new case goes to. A route matches a case by
category, severity, grid and manual/alert, and names the lead unit (a functional department, by id or by
the kind of department nearest the grid: its street's, else the district's) and the assisting units of joint
handling (协办). `dispatch: manual` instead leaves the case at a command center (the grid's street or the
district) in the 派单 stage, for a person to dispatch by hand. A case no route matches goes up the grid's
own territorial chain, at its policy's `start_level`, as before.

The file is reloaded live with the org tree and the SLA policies (`hub.files.reload`); a route naming a unit or
kind the org tree lacks is refused with its file, YAML path and line, and the last good routing kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from gridwatch.core.config import Strict, first_repeat
from gridwatch.core.errors import ConfigError
from gridwatch.core.names import Severity
from gridwatch.core.yamlconf import Where, problem, read_yaml, validate
from hub.policy.org import Org


class RouteMatch(Strict):
    categories: list[str] = Field(default_factory=list, description="empty = any")
    severities: list[Severity] = Field(default_factory=list, description="empty = any")
    grids: list[str] = Field(default_factory=list, description="empty = any; a community or street id means its grids")
    manual: bool | None = Field(None, description="true: only hand-reported cases; false: only alert cases")


class Route(Strict):
    id: str = Field(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")
    match: RouteMatch = Field(default_factory=RouteMatch)
    dispatch: Literal["auto", "manual"] = Field("auto", description="auto: straight to the lead; manual: wait at "
                                                                    "the command center for 派单 by hand")
    center: Literal["street", "district"] = Field("street", description="manual: which command center dispatches")
    lead: str | None = Field(None, description="the lead unit's id")
    lead_kind: str | None = Field(None, description="or: the department of this kind nearest the grid")
    assist: list[str] = Field(default_factory=list, description="assisting units' ids (协办)")
    assist_kinds: list[str] = Field(default_factory=list, description="or: assisting departments by kind")

    @model_validator(mode="after")
    def _lead(self) -> Route:
        if self.dispatch == "auto" and (self.lead is None) == (self.lead_kind is None):
            raise ValueError("an automatic route names its lead: `lead` (a unit id) or `lead_kind`, one of them")
        return self


class RoutingFile(Strict):
    routes: list[Route] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> RoutingFile:
        if (twice := first_repeat(r.id for r in self.routes)) is not None:
            raise ValueError(f"duplicate route id {twice!r}")
        return self


@dataclass(frozen=True, slots=True)
class Placement:
    """Where a new case goes: its owner, whether it waits for 派单 by hand, its assisting units, the route."""

    owner: str
    reported: bool
    assist: tuple[str, ...]
    route: str

    def logged(self) -> dict[str, Any]:
        """What the `opened` timeline entry says of the placement: the route, the assisting units, 派单 by hand."""
        return {"route": self.route, **({"assist": list(self.assist)} if self.assist else {}),
                **({"dispatch": "manual"} if self.reported else {})}


class Routing:
    def __init__(self, spec: RoutingFile) -> None:
        self.spec = spec

    @classmethod
    def empty(cls) -> Routing:
        return cls(RoutingFile())

    def place(self, org: Org, *, category: str, severity: str, grid: str, manual: bool) -> Placement | None:
        """The first route that matches and can be placed in today's org tree; None: the territorial chain."""
        if not self.spec.routes or grid not in org.units:
            return None
        chain = org.chain(grid)
        for r in self.spec.routes:
            m = r.match
            if ((m.categories and category not in m.categories) or (m.severities and severity not in m.severities)
                    or (m.manual is not None and m.manual != manual) or (m.grids and not set(m.grids) & set(chain))):
                continue
            if r.dispatch == "manual":
                center = next((u for u in chain if org.units[u].level == r.center), None)
                if center is not None:
                    return Placement(center, True, (), r.id)
                continue
            lead = r.lead if r.lead is not None else nearest(org, chain, r.lead_kind or "")
            if lead is None or lead not in org.units:
                continue
            assist = [*r.assist, *(u for k in r.assist_kinds if (u := nearest(org, chain, k)) is not None)]
            return Placement(lead, False, tuple(u for u in dict.fromkeys(assist) if u != lead and u in org.units),
                             r.id)
        return None


def nearest(org: Org, chain: list[str], kind: str) -> str | None:
    """The department of `kind` attached nearest up the grid's chain (its street's before the district's)."""
    for unit in chain:
        for child in org.children.get(unit, ()):
            u = org.units[child]
            if u.level == "department" and u.kind == kind:
                return u.id
    return None


def check(spec: RoutingFile, org: Org, path: str | Path, node: Where = None) -> list[str]:
    """What of a valid file the org tree cannot honour: unknown units, kinds no department has."""
    kinds = {u.kind for u in org.departments() if u.kind}
    out: list[str] = []
    for i, r in enumerate(spec.routes):
        units = [(("lead",), r.lead), *((("assist", j), a) for j, a in enumerate(r.assist))]
        for loc, unit in units:
            if unit is not None and unit not in org.units:
                out.append(problem(path, node, ("routes", i, *loc), f"{unit!r} is not a unit of the org tree"))
        wanted = [(("lead_kind",), r.lead_kind), *((("assist_kinds", j), k) for j, k in enumerate(r.assist_kinds))]
        for loc, kind in wanted:
            if kind is not None and kind not in kinds:
                known = ", ".join(sorted(kinds)) or "none"
                out.append(problem(path, node, ("routes", i, *loc),
                                   f"no department of kind {kind!r} in the org tree (kinds: {known})"))
    return out


def load_routing(path: str | Path, org: Org) -> Routing:
    """The routing file checked against the org tree; ConfigError naming file, YAML path and line."""
    data, node, _ = read_yaml(path)
    spec = validate(RoutingFile, data, path, node)
    problems = check(spec, org, path, node)
    if problems:
        raise ConfigError(problems)
    return Routing(spec)
