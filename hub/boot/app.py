"""The hub application: FastAPI routers over the case store, /healthz and /metrics."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import generate_latest
from sqlalchemy.exc import InterfaceError, OperationalError

from gridwatch import __version__
from hub.api import (
    agents,
    alerts,
    assessment,
    board,
    cases,
    controls,
    device_guard,
    devices,
    maintenance,
    opsdoors,
    people,
    rules,
    stats,
    stream,
)
from hub.api import audit as audit_api
from hub.api import contacts as contacts_api
from hub.api import duty as duty_api
from hub.api import looks as looks_api
from hub.api import map as map_
from hub.api import notices as notices_api
from hub.api.audit import AuditTrail
from hub.api.deps import HubState
from hub.api.errors import Refused, invalid_answer, refused_answer, unencodable_answer
from hub.api.guard import FailureLimiter, Guard, IntakeLimiter, networks
from hub.api.headers import Hardening
from hub.audit import trail as audit
from hub.audit.forward import Forwarder
from hub.boot.notifier_process import NotifierProcess
from hub.boot.store import open_store
from hub.cases.scheduler import Scheduler
from hub.config import HubConfig
from hub.files.reload import ConfigWatcher
from hub.fleet.agents import RuleTools
from hub.notify.codes import SmsCodes
from hub.notify.files import NoticeFiles
from hub.notify.notifier import Notifier, init_cursor
from hub.ops.gcpolicy import GcPolicy
from hub.ops.metrics import HubMetrics
from hub.people.accounts import People
from hub.people.seed import load_people_file, seed_people
from hub.policy.calendar_watch import notices
from hub.policy.labels import load_labels
from hub.stream.fanout import EventFeed
from hub.stream.mqtt_events import CaseEventPublisher

logger = logging.getLogger(__name__)


def create_app(cfg: HubConfig, *, clock: Callable[[], datetime] | None = None,
               run_scheduler: bool = True, manage_gc: bool = False, rule_tools: RuleTools | None = None) -> FastAPI:
    """The app; its scheduler thread runs while the app is served (tests drive it by hand instead).
    `manage_gc`: the process is the hub's own (`gridwatch hub serve`), so it may steer the interpreter's
    cycle collector for its streams (`hub.ops.gcpolicy`). `rule_tools`: the edge's rule checker and backtest
    (`gridwatch.ruletools.EdgeRuleTools`), without which rule sets cannot be saved from the hub."""
    store = open_store(cfg, clock)
    engine = store.engine
    scheduler = Scheduler(store, heartbeat_limit=cfg.fleet.heartbeat_limit, audit_days=cfg.audit_retention_days)
    for k in cfg.keys:
        if k.role == "admin" and k.sources is None:  # (sign_in.admin_key_sources: require refuses the config)
            logger.warning("administrator key %s may be used from any address: bind it to its machines with "
                           "`sources` in hub.yaml (等保: administrators authenticate with two factors)", k.name)
    if cfg.audit_retention_days < audit.RETENTION_FLOOR_DAYS:
        logger.warning("audit records are kept %g days, under the %d days 等保 level 3 asks for "
                       "(audit_retention_days in hub.yaml)", cfg.audit_retention_days, audit.RETENTION_FLOOR_DAYS)
    watcher = ConfigWatcher(store, cfg.org, cfg.sla, routing=cfg.routing, calendars=cfg.calendars)
    publisher = CaseEventPublisher(store, cfg.mqtt) if cfg.mqtt is not None else None
    forwarder = Forwarder(store, cfg.audit.syslog) if cfg.audit.syslog is not None else None
    feed = EventFeed(store, queue_size=cfg.limits.stream_queue, gc=GcPolicy(manage_gc))
    labels = load_labels(cfg.labels)
    if cfg.people is not None:  # the people rosters name, made before the rosters are read (one start)
        made = seed_people(store, load_people_file(cfg.people, store.org))
        if made:
            logger.info("made %d accounts from %s (they sign in once an administrator sets a password)",
                        made, cfg.people)
    files = notifier = sender = None
    if cfg.notify is not None or cfg.rosters is not None:
        files = NoticeFiles(store, cfg.notify, cfg.rosters)
        files.load()  # a refused file stops the start, naming file, path and line
        watcher.also.append(files)  # reloaded with the other files, not per request
        sms_codes = SmsCodes(files)  # sign-in codes for people without an authenticator app
        init_cursor(store)
        if run_scheduler:  # served: the sender runs in a process of its own, beside intake, not in it
            sender = NotifierProcess(cfg)
        else:  # tests drive a notifier by hand
            notifier = Notifier(store, labels, files=files)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        scheduler.say_calendars(store.today())
        if run_scheduler:
            scheduler.start()
        watcher.start()
        if publisher is not None:
            publisher.start()
        if sender is not None:
            sender.start()
        if forwarder is not None:
            forwarder.start()
        await feed.start()
        yield
        await feed.stop()
        scheduler.stop()
        watcher.stop()
        if publisher is not None:
            publisher.stop()
        if sender is not None:
            sender.stop()
        if notifier is not None:
            notifier.stop()  # its pools (a notifier driven by hand in tests)
        if forwarder is not None:
            forwarder.stop()
        engine.dispose()

    app = FastAPI(title="gridwatch hub", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
                  openapi_url=None,  # behind hub.api.opsdoors
                  description="Cases from edge alerts: 挂单计时 clocks, 亮灯警告 lights, escalation.")
    metrics_ = HubMetrics(store)
    metrics_.watch_feed(feed, publisher)
    metrics_.watch_scheduler(scheduler)
    if forwarder is not None:
        metrics_.watch_forwarder(forwarder)
    app.state.forwarder = forwarder
    app.state.hub = HubState(store=store, metrics=metrics_, keys=cfg.keys, tz=cfg.tz,
                             unknown_grids=cfg.unknown_grids,
                             intake=IntakeLimiter(cfg.limits.intake_rate, cfg.limits.intake_burst),
                             fleet=cfg.fleet, rule_tools=rule_tools, labels=labels,
                             max_photo_bytes=cfg.limits.max_photo_bytes,
                             max_clip_bytes=cfg.limits.max_clip_bytes, notices=files,
                             people=People(store, cfg.keys, cfg.limits.account_failures, cfg.limits.account_lock,
                                           cfg.sign_in))
    if files is not None:
        app.state.hub.people.sms = sms_codes
    app.state.scheduler = scheduler
    app.state.config = cfg
    app.state.feed = feed
    app.state.watcher = watcher
    app.state.notifier = notifier
    if files is not None:
        metrics_.watch_notifier(files, notifier, sender)
    app.include_router(alerts.router)
    app.include_router(people.router)
    app.include_router(controls.router)
    app.include_router(cases.router)
    app.include_router(stream.router)
    app.include_router(stats.router)
    app.include_router(assessment.router)
    for r in (device_guard, looks_api, devices, rules, agents, maintenance, map_, notices_api, contacts_api, duty_api):
        app.include_router(r.router)
    app.include_router(board.router)
    app.include_router(audit_api.router)

    app.add_exception_handler(Refused, refused_answer)
    app.add_exception_handler(RequestValidationError, invalid_answer)
    app.add_exception_handler(UnicodeError, unencodable_answer)

    @app.exception_handler(OperationalError)
    @app.exception_handler(InterfaceError)
    async def database_down(request: Request, exc: Exception) -> JSONResponse:
        """The database is out of reach (a restart, a network cut): the client should come back later, as
        the forwarder does on 503; nothing was taken."""
        logger.warning("database unavailable for %s %s: %s", request.method, request.url.path,
                       str(exc).splitlines()[0][:200])
        return JSONResponse({"detail": "database unavailable; retry later"}, status_code=503,
                            headers={"Retry-After": "5"})

    @app.get("/healthz", tags=["ops"])
    def healthz() -> dict[str, Any]:
        """`ok` while the database answers; `notices` when a working-time calendar in use runs out (the hub
        still serves: clocks on it count every Monday-Friday as a working day past its data)."""
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
        said = [n.body() for n in notices(store.calendars, store.sla, store.today()) if n.level == "warning"]
        return {"status": "ok", "notices": said} if said else {"status": "ok"}

    opsdoors.mount(app, lambda: generate_latest(metrics_.registry))
    app.state.ops_doors = opsdoors.Doors(cfg.listen.ops_networks)

    guard = FailureLimiter(cfg.limits.auth_failures, cfg.limits.auth_window)
    app.state.auth_limiter = guard
    app.state.trusted_proxies = networks(cfg.listen.trusted_proxies)  # sign-in tells clients apart as the guard
    app.add_middleware(AuditTrail, proxies=app.state.trusted_proxies)  # inside the guard: who passed it
    def refused_key(client: str, where: str, reason: str, key: str | None) -> None:
        audit.append(store, audit.Act(f"key:{key}" if key else "key", "key_refused", "refused", address=client,
                                      target=where, detail={"reason": reason}))

    app.add_middleware(Guard, keys=lambda: app.state.hub.people.keys(), max_body=cfg.limits.max_body_bytes,
                       limiter=guard, failures=metrics_.auth_failures, proxies=cfg.listen.trusted_proxies,
                       record=refused_key)
    app.add_middleware(Hardening, tls=cfg.listen.tls_cert is not None,  # outermost: refusals get them too
                       frame_ancestors=cfg.listen.frame_ancestors)
    return app
