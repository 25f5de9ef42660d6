"""The notice queue's queries: what is due (pending and due, or claimed by a sender whose lease ran out), the
administrators' listing, and people's display names."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import Session

from hub.store.cases import Store
from hub.store.models import Notice, User


def listing(store: Store, *, case_id: str | None = None, state: str | None = None, limit: int = 200) -> list[Notice]:
    """The administrators' notices view: newest first."""
    q = select(Notice).order_by(Notice.id.desc()).limit(limit)
    if case_id is not None:
        q = q.where(Notice.case_id == case_id)
    if state is not None:
        q = q.where(Notice.state == state)
    with store.reading() as s:
        return list(s.scalars(q))


def due(now: datetime, stale: datetime) -> Any:
    return or_(and_(Notice.state == "pending", Notice.due_at <= now),
               and_(Notice.state == "sending", Notice.claimed_at < stale))


def names_of(s: Session, *where: Any) -> dict[str, str]:
    """Username -> display name of the people who match `where` (everyone by default)."""
    return {u: n for u, n in s.execute(select(User.username, User.name).where(*where))}


def by_channel(store: Store) -> dict[tuple[str, str], int]:
    """Notices by (channel, state): every replica's, from the queue itself."""
    with store.reading() as s:
        return {(ch, st): n for ch, st, n in s.execute(
            select(Notice.channel, Notice.state, func.count()).group_by(Notice.channel, Notice.state))}


def retries(store: Store) -> dict[str, int]:
    """Attempts beyond each notice's first, by channel: the sends tried again, every replica's."""
    extra = func.sum(case((Notice.attempts > 1, Notice.attempts - 1), else_=0))
    with store.reading() as s:
        return {ch: int(n or 0) for ch, n in s.execute(select(Notice.channel, extra).group_by(Notice.channel))}
