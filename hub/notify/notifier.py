"""The notification queue: case events become notices (`hub.policy.notices`), kept in the database, sent once
across replicas, retried, grouped for rate-limited robots, each on the case's timeline.

- **Planning** follows the timeline by id from its own cursor (`cursors.notifier`), as the MQTT publisher does:
  the notices of a batch of events and the cursor are written in one transaction, and each notice's key
  (event, template, recipient, channel) is unique, so a crash between two batches plans nothing twice.
- **One sender across replicas**: only the holder of the `notifier` leadership (`hub.ops.leader`) plans and sends;
  a leader that dies releases it with its connection (PostgreSQL) or its process (SQLite's file lock).
- **Sending** claims due notices (`sending`, with the time), commits, sends, then records the outcome. A
  notice claimed by a leader that died is claimed again after the policy's `lease`: delivery is at least once, and every
  message names its notices (`X-Gridwatch-Notice`, the SMS `OutId`, the mail header), so the receiving end
  counts each once: exactly once in effect.
- **Retries**: timeouts, 429, 5xx and the vendors' rate-limit codes come back after 2, 4, 8… seconds (at most
  five minutes, or the server's Retry-After) up to `max_attempts`; a wrong key or signature fails at once.
- **Rate limits**: no channel gets more than `rate_per_minute` messages in any minute; robots wait
  `group_wait` for more and send what is due as one message ("3 条通知: …", every case named, at most 4,000
  bytes each), so a storm of red cases is grouped, never dropped.
- **Guards**: a notice of a stage (a red light, an escalation, a delayed still-red) stops unsent when the case's
  status or stage start changed: 签收 ends them.
- **Visible**: delivered, failed and stopped notices go on the case's timeline (`notified`); counts by channel
  and result are metrics; `listing()` is the administrators' notices view.
- **Beside intake, not in its way**: a served hub runs the notifier in a child process of its own
  (`NotifierProcess`), at a lower CPU priority (nice 10) and ended with its parent, so sending thousands of
  notices does not take the interpreter lock or the cores from alert intake (bench/notify.py).
"""

from __future__ import annotations

import logging
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor, wait
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hub.notify.channels import Outcome, send
from hub.notify.files import Config, NoticeFiles
from hub.notify.messages import group, mask, message
from hub.notify.queue import by_channel, due, listing, names_of
from hub.ops.leader import Leadership, WokenThread
from hub.policy.calendar_watch import notices as calendar_notices
from hub.policy.labels import Labels
from hub.policy.notices import Draft, EventFacts, plan, plan_calendar
from hub.policy.notify_config import FIELDS
from hub.store.cases import EventRow, Store
from hub.store.models import Case, CaseRequest, Contact, Cursor, Notice, User

logger = logging.getLogger(__name__)
CURSOR = "notifier"
BATCH = 200


def init_cursor(store: Store) -> None:
    """The first notifier ever starts from now (history is on the board): set before the hub serves, so no
    event it takes is missed while the sender's process starts."""
    if store.cursor(CURSOR) is None:
        store.save_cursor(CURSOR, store.last_event_id())


class Notifier(WokenThread):
    thread_name = "gridwatch-hub-notifier"

    def __init__(self, store: Store, labels: Labels, *, notify_path: Path | None = None,
                 rosters_path: Path | None = None, files: NoticeFiles | None = None, poll: float = 0.5,
                 http: httpx.Client | None = None) -> None:
        super().__init__()
        self.store, self.labels = store, labels
        self.files = files or NoticeFiles(store, notify_path, rosters_path)
        self.poll = poll
        self.tz = ZoneInfo(store.tz)
        self.leader = Leadership(store.engine, CURSOR)
        self.http = http or httpx.Client()
        self.leading = False
        self._calendars_said: Any = None
        self._windows: dict[str, deque[datetime]] = {}
        self._busy: dict[str, Future[None]] = {}
        self._pool = ThreadPoolExecutor(4, thread_name_prefix="gridwatch-hub-notify")  # a round per channel
        self._senders = ThreadPoolExecutor(16, thread_name_prefix="gridwatch-hub-send")  # its messages at once

    # ---- configuration ----------------------------------------------------------------------------
    @property
    def cfg(self) -> Config:
        return self.files.cfg

    @property
    def notify_path(self) -> Path | None:
        return self.files.notify_path

    @property
    def rosters_path(self) -> Path | None:
        return self.files.rosters_path

    def load(self) -> Config:
        return self.files.load()

    def reload(self) -> bool | None:
        return self.files.reload()

    # ---- life ---------------------------------------------------------------------------------------
    def stop(self) -> None:
        super().stop()
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._senders.shutdown(wait=False, cancel_futures=True)
        self.leader.release()

    def _run(self) -> None:
        while not self._stop.is_set():
            if not self.leader.try_acquire():
                self.leading = False
                self._stop.wait(2.0)
                continue
            if not self.leading:
                logger.info("notifier: leading")
                self.leading = True
                self._windows.clear()
            try:
                self.reload()
                self.run_once()
            except Exception:
                logger.exception("notifier round failed; retrying")
                self._stop.wait(2.0)
            self._wake.wait(self.poll)
            self._wake.clear()

    def run_once(self, now: datetime | None = None, *, wait: bool = False) -> None:
        """Plan what new events call for, then start a send on every channel with notices due (`wait`: and
        wait for them; tests drive it by hand)."""
        now = now or self.store.now()
        while self.plan_round() == BATCH:
            pass
        if (today := self.store.today(now)) != self._calendars_said:
            self._calendars_said = today
            self.plan_calendars(now)
        for cid in self.due_channels(now):
            busy = self._busy.get(cid)
            if busy is not None and not busy.done():
                continue
            self._busy[cid] = self._pool.submit(self._send_logged, cid, now if wait else None)
        if wait:
            for f in list(self._busy.values()):
                f.result()

    # ---- planning -----------------------------------------------------------------------------------
    def init_cursor(self) -> None:
        init_cursor(self.store)

    def plan_round(self) -> int:
        after = self.store.cursor(CURSOR)
        if after is None:
            self.init_cursor()
            return 0
        rows = self.store.events_after(after, None, BATCH)
        if not rows:
            return 0
        cfg = self.cfg
        made: list[Notice] = []
        with self.store.reading() as s:  # everything read, planned and rendered before the write: on SQLite the
            # write lock is then held for the inserts alone, not for the rendering (intake waits on that lock)
            contacts = {c.username: c for c in s.scalars(select(Contact))}
            names = names_of(s)
            drafts: list[tuple[EventRow, Draft]] = []
            for row in rows:
                e, c = row.entry, row.case
                facts = EventFacts(e.id, e.at, e.action, e.detail or {}, c.id, c.category, c.severity, c.owner,
                                   c.status, c.stage_started_at)
                drafts += [(row, d) for d in plan(facts, cfg.notify, cfg.rosters, self.store.org, contacts, self.tz)]
            keys = [d.key for _, d in drafts]
            have = set(s.scalars(select(Notice.key).where(Notice.key.in_(keys)))) if keys else set()
            now = self.store.now()
            clocks: dict[int, tuple[str, str, str]] = {}
            for row, d in drafts:
                if d.key in have:
                    continue
                if row.entry.id not in clocks:
                    clocks[row.entry.id] = self._clock(s, row)
                values = self._values(row, d, names, clocks[row.entry.id])
                body = cfg.notify.render(d.template, values) | {"mention": d.mention, **d.extra}
                made.append(Notice(key=d.key, event_id=row.entry.id, case_id=row.case.id, kind=d.template,
                                   channel=d.channel, target=d.target, recipient=d.recipient, urgent=d.urgent,
                                   body=body, guard=d.guard, state="failed" if d.problem else "pending",
                                   attempts=0, created_at=now, due_at=d.due_at, claimed_at=None,
                                   done_at=now if d.problem else None, error=d.problem))
        with self.store.transaction() as s:
            s.add_all(made)
            for n in made:
                if n.state == "failed":
                    s.flush()  # its id, for the timeline
                    self._timeline(s, n, now, names)
            cursor = s.get(Cursor, CURSOR)
            assert cursor is not None
            cursor.last_id = rows[-1].entry.id
        return len(rows)

    def plan_calendars(self, now: datetime) -> int:
        """A working-time calendar running out, once a day (the pure planner's `plan_calendar`)."""
        said = calendar_notices(self.store.calendars, self.store.sla, self.store.today(now))
        if not any("calendar" in r.events for r in self.cfg.notify.spec.rules) or not said:
            return 0
        made = 0
        with self.store.transaction() as s:
            admins = names_of(s, User.role == "sysadmin", User.disabled.is_(False))
            contacts = {c.username: c for c in s.scalars(select(Contact))}
            drafts = plan_calendar(said, self.cfg.notify, sorted(admins), contacts, self.store.today(now), now)
            have = set(s.scalars(select(Notice.key).where(Notice.key.in_([d.key for d in drafts]))))
            for d in (d for d in drafts if d.key not in have):
                values = dict.fromkeys(FIELDS, "") | d.values | {
                    "event": self.labels.name("event", "calendar"), "to": admins.get(d.recipient or "", "")}
                body = self.cfg.notify.render("calendar", values) | {"mention": d.mention, **d.extra}
                s.add(Notice(key=d.key, event_id=None, case_id=None, kind="calendar", channel=d.channel,
                             target=d.target, recipient=d.recipient, urgent=d.urgent, body=body, guard=None,
                             state="failed" if d.problem else "pending", attempts=0, created_at=now, due_at=now,
                             claimed_at=None, done_at=now if d.problem else None, error=d.problem))
                made += 1
        return made

    def _clock(self, s: Session, row: EventRow) -> tuple[str, str, str]:
        """The case's stage, light and time left at the event, in words."""
        found = self.store.clock_of(row.case, self.store.pauses(s, row.case.id), row.entry.at)
        if found is None:
            return "", "", ""
        st, reading = found
        mins = int(abs(reading.remaining_s) // 60)
        span = f"{mins // 60}小时{mins % 60}分" if mins >= 60 else f"{mins}分钟"
        return (self.labels.name("stage", st), self.labels.name("light", reading.light),
                f"剩余{span}" if reading.remaining_s > 0 else f"超时{span}")

    def _values(self, row: EventRow, d: Draft, names: dict[str, str],
                clock: tuple[str, str, str]) -> dict[str, str]:
        c, org, lab = row.case, self.store.org, self.labels
        stage, light, left = clock
        place = c.place or {}
        unit = d.values.get("unit", c.owner)
        detail = row.entry.detail or {}
        return {"event": lab.name("event", d.template), "case_id": c.id, "title": c.title or "",
                "category": lab.name("category", c.category), "severity": lab.name("severity", c.severity),
                "grid": org.units[c.grid].name if c.grid in org.units else c.grid,
                "owner": org.units[c.owner].name if c.owner in org.units else c.owner,
                "unit": org.units[unit].name if unit in org.units else unit,
                "place": str(place.get("address") or place.get("name") or c.device or ""),
                "stage": stage, "light": light, "left": left,
                "link": self.cfg.notify.spec.link.rstrip("/") + f"/?case={c.id}",
                "to": names.get(d.recipient or "", d.recipient or ""),
                "detail": str(detail.get("reason") or detail.get("note") or "")}

    # ---- sending ------------------------------------------------------------------------------------
    @property
    def lease_s(self) -> float:
        return self.cfg.notify.spec.lease

    def due_channels(self, now: datetime) -> list[str]:
        stale = now - timedelta(seconds=self.lease_s)
        with self.store.reading() as s:
            return list(s.scalars(select(Notice.channel).where(due(now, stale)).distinct()))

    def _window(self, cid: str, now: datetime) -> deque[datetime]:
        w = self._windows.get(cid)
        if w is None:  # a new leader: every message sent in the last minute counts too (one per `message`; a
            # notice from before migration 0016 counts as a message of its own)
            with self.store.reading() as s:
                sent = s.execute(select(func.coalesce(Notice.message, -Notice.id), func.min(Notice.done_at))
                                 .where(Notice.channel == cid, Notice.state == "delivered",
                                        Notice.done_at > now - timedelta(minutes=1))
                                 .group_by(func.coalesce(Notice.message, -Notice.id))).all()
                w = self._windows[cid] = deque(sorted(t for _, t in sent if t is not None))
        while w and w[0] <= now - timedelta(minutes=1):
            w.popleft()
        return w

    def _send_logged(self, cid: str, now: datetime | None) -> None:
        try:
            self.send_round(cid, now)
        except Exception:
            logger.exception("sending on %s failed; retrying", cid)
            if now is not None:
                raise

    def send_round(self, cid: str, now: datetime | None = None) -> None:
        """Send what is due on one channel, within its rate. A robot's messages go one at a time, each claimed
        just before it is sent and recorded as soon as it is answered: chat robots do not deduplicate, so a
        sender killed mid-round repeats (after the lease) at most the one message it had in flight. Other
        channels send a round at once and record each message as it is answered; their receivers count the
        notice ids each message names."""
        ch = self.cfg.notify.channels.get(cid)
        now = now or self.store.now()
        secrets = self.cfg.notify.secrets.get(cid, {})
        if ch is not None and ch.groups:
            while (claimed := self._claim(cid, ch, now, one=True)):
                self._record(cid, [(claimed[0], send(ch, secrets, message(claimed[0]), self.http))], now)
            return
        messages = self._claim(cid, ch, now, one=False)
        sends = {self._senders.submit(send, ch, secrets, message(b), self.http): b for b in messages}
        pending = set(sends)
        while pending:  # what was answered, recorded at most every quarter second (one write, not one each)
            done, pending = wait(pending, timeout=0.25)
            if done:
                self._record(cid, [(sends[f], f.result()) for f in done], now)

    def _claim(self, cid: str, ch: Any, now: datetime, *, one: bool) -> list[list[Notice]]:
        """The messages due now within the channel's rate (`one`: only the first), claimed (`sending`)."""
        with self.store.transaction() as s:
            rows = list(s.scalars(select(Notice).where(Notice.channel == cid,
                                                       due(now, now - timedelta(seconds=self.lease_s)))
                                  .order_by(Notice.id).limit(500).with_for_update(skip_locked=True)))
            if ch is None:  # the channel left the config (or is off): nothing can send these
                for n in rows:
                    self._finish(s, n, now, "failed", f"channel {cid!r} is not configured (or off)")
                return []
            live = self._guarded(s, rows, now)
            if not live:
                return []
            if ch.groups and ch.group_wait > 0 and len(live) < 50 and min(
                    n.created_at for n in live) > now - timedelta(seconds=ch.group_wait):
                return []  # wait for more to group
            room = ch.rate_per_minute - len(self._window(cid, now))
            if room <= 0:
                return []
            messages = group(live, 1 if one else room) if ch.groups else [[n] for n in live[:room]]
            for batch in messages:
                for n in batch:
                    n.state, n.claimed_at, n.attempts = "sending", now, n.attempts + 1
        return messages

    def _guarded(self, s: Session, rows: list[Notice], now: datetime) -> list[Notice]:
        live = []
        for n in rows:
            if n.guard and "request" in n.guard:  # a 督办 reply overdue: unless it was answered meanwhile
                req = s.get(CaseRequest, n.guard["request"])
                if req is None or req.decision is not None:
                    self._finish(s, n, now, "stopped", "督办已回复 (the order was answered)")
                    continue
            elif n.guard and n.case_id:
                c = s.get(Case, n.case_id)
                if c is None or c.status != n.guard.get("status") or \
                        c.stage_started_at.isoformat() != n.guard.get("stage_started_at"):
                    self._finish(s, n, now, "stopped", "案件已签收或环节已变化 (the case moved on)")
                    continue
            live.append(n)
        return live

    def _record(self, cid: str, results: list[tuple[list[Notice], Outcome]], sent_at: datetime) -> None:
        """The outcome of each message, for all its notices, in one transaction."""
        now = self.store.now()
        with self.store.transaction() as s:
            names = names_of(s)
            ids = [n.id for batch, _ in results for n in batch]  # read in one query before any write
            rows = {n.id: n for n in s.scalars(select(Notice).where(Notice.id.in_(ids)).with_for_update())}
            for batch, outcome in results:
                for stale in batch:
                    n = rows.get(stale.id)
                    if n is None or n.state != "sending":
                        continue
                    if outcome.ok:
                        n.message = batch[0].id
                        self._finish(s, n, sent_at, "delivered", "", names)
                    elif outcome.retry and n.attempts < self.cfg.notify.spec.max_attempts:
                        back = outcome.retry_after or min(300.0, 2.0 ** n.attempts)
                        n.state, n.due_at, n.error = "pending", now + timedelta(seconds=back), outcome.reason
                    else:
                        self._finish(s, n, now, "failed", outcome.reason, names)
        for batch, outcome in results:
            if outcome.ok:
                self._window(cid, sent_at).append(sent_at)
            else:
                logger.warning("notice %s on %s: %s%s", ",".join(str(n.id) for n in batch), cid, outcome.reason,
                               " (will retry)" if outcome.retry else "")

    def _finish(self, s: Session, n: Notice, now: datetime, state: str, error: str,
                names: dict[str, str] | None = None) -> None:
        n.state, n.done_at, n.error = state, now, error
        if names is None and n.recipient:
            names = names_of(s)
        self._timeline(s, n, now, names or {})

    def _timeline(self, s: Session, n: Notice, now: datetime, names: dict[str, str]) -> None:
        if n.case_id is None:
            return
        detail = {"kind": n.kind, "channel": n.channel, "to": names.get(n.recipient or "", n.recipient or ""),
                  "target": mask(n.target), "result": n.state, "error": n.error, "notice": n.id}
        Store.append_log(s, [{"case_id": n.case_id, "at": now, "actor": "notifier", "action": "notified",
                              "detail": detail}])

    def by_channel(self) -> dict[tuple[str, str], int]:
        return by_channel(self.store)


__all__ = ["Notifier", "listing", "mask"]
