"""The case store over the configured database, as every hub process opens it: the data key configured,
the schema migrated, contact points sealed with the newest key, the org tree, SLA policies, calendars and
routing loaded."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from gridwatch.core.yamlconf import load
from hub.boot import keys
from hub.config import HubConfig
from hub.files.calendar_files import load_calendars
from hub.people.accounts import People
from hub.policy.org import Org, OrgFile
from hub.policy.routing import Routing, load_routing
from hub.policy.sla import SlaFile
from hub.store.cases import Store
from hub.store.db import make_engine, migrate

logger = logging.getLogger(__name__)


def open_store(cfg: HubConfig, clock: Callable[[], datetime] | None = None) -> Store:
    """The case store over the configured database, migrated to the newest revision, with the org tree,
    SLA policies, calendars and routing the config names."""
    keys.configure(cfg)
    engine = make_engine(cfg.database)
    migrate(engine)
    if problems := keys.check(engine, write=True):
        engine.dispose()
        raise keys.KeyMismatch("; ".join(problems))
    if sealed := People.seal_contacts(engine):
        logger.info("contact points of %d people sealed with the newest data key", sealed)
    org = Org(load(OrgFile, cfg.org))
    return Store(engine, load(SlaFile, cfg.sla), org, load_calendars(cfg.calendars),
                 clock or (lambda: datetime.now(UTC)), tz=cfg.tz,
                 routing=load_routing(cfg.routing, org) if cfg.routing is not None else Routing.empty())
