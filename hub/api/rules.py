"""Rule sets: check, save, read, diff, backtest, deploy and roll back. Readers see them; saving and
deploying are the district's (an operator of a district unit, or an admin), because one rule set runs on
every agent it reaches."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Response
from pydantic import BaseModel, Field

from hub.api.audited import audited, not_audited
from hub.api.deps import HubDep, HubState, Id, Operator, Reader, grids_of, rule_manager
from hub.api.errors import BODY, GUARD, responses
from hub.api.schemas import Text
from hub.fleet import agents as fleet
from hub.store.models import RuleVersion

router = APIRouter(prefix="/api/v1/rules", tags=["rules"], responses=responses(*GUARD, 403))


class RuleText(BaseModel):
    text: Text = Field(max_length=8 * 1024 * 1024)
    note: Text = Field("", max_length=2000)


class CheckOut(BaseModel):
    ok: bool
    rules: int
    problems: list[str]


class VersionOut(BaseModel):
    version: int
    hash: str
    rules: int
    author: str
    note: str
    created_at: datetime


class VersionText(VersionOut):
    text: str


class DeployIn(BaseModel):
    version: int = Field(ge=1, le=2**31 - 1)
    grids: list[Text] | None = Field(None, description="staged: only agents serving these grids; none: all")
    note: Text = Field("", max_length=2000)


class DeployOut(BaseModel):
    id: int
    version: int
    grids: list[str] | None
    actor: str
    note: str
    at: datetime


class RulesOut(BaseModel):
    versions: list[VersionOut]
    deploys: list[DeployOut]
    agents: list[dict[str, Any]] = Field(description="each agent with the version it should run and runs")


def _tools(hub: HubState) -> fleet.RuleTools:
    if hub.rule_tools is None:
        raise HTTPException(503, "this hub has no rule checker (start it with `gridwatch hub serve`)")
    return hub.rule_tools


def _v(v: RuleVersion) -> VersionOut:
    return VersionOut(version=v.version, hash=v.hash, rules=v.rules, author=v.author, note=v.note,
                      created_at=v.created_at)


@router.post("/check", responses=responses(*BODY, 503),
             openapi_extra=not_audited("a check of a draft: nothing is saved"))
def check_rules(body: RuleText, hub: HubDep, who: Reader) -> CheckOut:
    """The checks of `gridwatch rules check`, for the board's editor as one types."""
    n, problems = _tools(hub).check(body.text)
    return CheckOut(ok=not problems, rules=n, problems=problems)


@router.get("")
def rules_overview(hub: HubDep, who: Reader) -> RulesOut:
    store = hub.store
    now = store.now()
    with store.reading() as s:
        vs = fleet.versions(s)
        ds = fleet.deploys(s)
        agents = fleet.agent_list(s, now, hub.fleet.heartbeat_limit)
    return RulesOut(versions=[_v(v) for v in vs],
                    deploys=[DeployOut(id=d.id, version=d.version, grids=d.grids, actor=d.actor, note=d.note,
                                       at=d.at) for d in ds], agents=agents)


@router.get("/versions/{version}", responses=responses(404))
def rule_version(version: Id, hub: HubDep, who: Reader) -> VersionText:
    with hub.store.reading() as s:
        v = fleet.version(s, version)
    if v is None:
        raise HTTPException(404, "no such version")
    return VersionText(**_v(v).model_dump(), text=v.text)


@router.get("/versions/{version}/diff", response_class=Response, responses=responses(404))
def rule_diff(version: Id, hub: HubDep, who: Reader,
              against: Annotated[int | None, Query(ge=0, le=2**31 - 1)] = None) -> Response:
    """A unified diff from `against` (default: the version before) to `version`."""
    with hub.store.reading() as s:
        new = fleet.version(s, version)
        old = fleet.version(s, against if against is not None else version - 1)
    if new is None:
        raise HTTPException(404, "no such version")
    return Response(fleet.diff(old, new), media_type="text/x-diff; charset=utf-8")


@router.post("", status_code=201, responses=responses(*BODY, 422, 503),
             openapi_extra=audited("rules_saved"))
def save_rules(body: RuleText, hub: HubDep, who: Operator) -> VersionOut:
    """Save a rule set as the next version, after the checker passed it (422 with its messages if not).
    Saving deploys nothing."""
    store = hub.store
    rule_manager(store, who)
    n, problems = _tools(hub).check(body.text)
    if problems:
        raise HTTPException(422, problems)
    with store.transaction() as s:
        v = fleet.save_version(s, body.text, n, who.name, body.note, store.now())
    return _v(v)


@router.post("/deploy", status_code=201, responses=responses(*BODY, 404, 422),
             openapi_extra=audited("rules_deployed"))
def deploy_rules(body: DeployIn, hub: HubDep, who: Operator) -> DeployOut:
    """Send a version to the agents serving these grids (or to all); deploying an earlier version is a
    rollback."""
    store = hub.store
    rule_manager(store, who)
    if body.grids is not None:
        bad = [g for g in body.grids if g not in grids_of(store)]
        if bad or not body.grids:
            raise HTTPException(422, f"{len(bad)} of the grids are not grids of the org tree" if bad
                                else "grids is empty")
    with store.transaction() as s:
        if fleet.version(s, body.version) is None:
            raise HTTPException(404, f"no rule version {body.version}")
        d = fleet.deploy(s, body.version, body.grids, who.name, body.note, store.now())
    hub.changed()
    return DeployOut(id=d.id, version=d.version, grids=d.grids, actor=d.actor, note=d.note, at=d.at)


@router.get("/captures")
def captures(hub: HubDep, who: Reader) -> list[str]:
    """Recorded traffic a draft can be backtested on (JSONL files under `fleet.captures`)."""
    folder = hub.fleet.captures
    return sorted(p.name for p in folder.glob("*.jsonl")) if folder.is_dir() else []


class BacktestIn(BaseModel):
    text: Text = Field(max_length=8 * 1024 * 1024)
    capture: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,128}\.jsonl$")


@router.post("/backtest", responses=responses(*BODY, 404, 422, 503),
             openapi_extra=not_audited("a backtest of a draft on recorded captures: nothing is saved"))
def backtest(body: BacktestIn, hub: HubDep, who: Reader) -> dict[str, Any]:
    """What a draft would have raised on recorded traffic (in event time, no broker)."""
    tools = _tools(hub)
    path = hub.fleet.captures / body.capture
    if not path.is_file():
        raise HTTPException(404, f"no capture {body.capture!r}")
    _, problems = tools.check(body.text)
    if problems:
        raise HTTPException(422, problems)
    return tools.backtest(body.text, path)
