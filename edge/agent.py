"""The edge agent: MQTT in, decode and validate, rules, durable outbox, forwarder, metrics, live rule reload.

Threads: paho's network loop puts messages on a bounded queue (a full queue back-pressures the broker);
one worker owns the rule engine, drains the queue in batches, fires timers on the wall clock, commits
alerts and rule state to the outbox in one transaction and only then acknowledges the batch; the
forwarder sends the outbox to the hub; a watcher reloads the rule file.
"""

from __future__ import annotations

import json
import logging
import math
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from edge.clockstep import StepWatch
from edge.committer import Committer, Job
from edge.config import DeviceEntry, EdgeConfig
from edge.devices import DevicePolicy
from edge.errors import ConfigError, Rejected
from edge.feeds import FeedSet
from edge.fleet_client import FleetClient, device_entries
from edge.forwarder import Forwarder
from edge.inbox import Inbox
from edge.message import Event, Message
from edge.metrics import AgentMetrics
from edge.mqtt import MqttIngest
from edge.outbox import Outbox
from edge.recorder import Recorder
from edge.refusals import Refusals
from edge.rulefile import RuleFile
from edge.rules.engine import Engine
from edge.rules.loader import parse_rules
from edge.rules.ruleset import RuleSet
from edge.topics import feed_filters
from edge.video.pipeline import Video
from gridwatch import __version__
from gridwatch.core.alert import Alert, Place, from_epoch, iso_ms
from gridwatch.core.heartbeat import text_hash
from gridwatch.core.kinds import VIDEO_KINDS

if TYPE_CHECKING:
    from edge.timeseries import TimeSeriesWriter

logger = logging.getLogger(__name__)

SCENE = "scene:"  # outbox meta prefix of saved camera baselines
SCENE_SAVE_EVERY = 60.0


class Agent:
    def __init__(self, cfg: EdgeConfig, *, clock: Callable[[], float] = time.time,
                 monotonic: Callable[[], float] | None = None) -> None:
        self.cfg = cfg
        self.clock = clock
        # an injected wall clock without a monotonic one is its own: tests moving it are not clock steps
        self.steps = StepWatch(clock, monotonic or (time.monotonic if clock is time.time else clock))
        self.limits = cfg.limits.limits()
        self._stop = threading.Event()
        self.inbox = Inbox(cfg.queue_size, self._stop, self._frame_dropped)
        self.metrics = AgentMetrics()
        self.outbox = Outbox(cfg.outbox.path, cfg.outbox.synchronous)
        self.refusals = Refusals(self.metrics, self.outbox)
        self.video = Video()
        self.started_at = clock()
        self.frames_dropped = 0  # for the heartbeat (the metric counts the same)
        self.rule_version: int | None = None  # the hub's rule version in force (None: the rule file)
        self.rule_hash = ""
        self.rule_problem = ""  # why the last rule set or device list was refused
        self.fleet = FleetClient(cfg, self.outbox, self) if cfg.hub.heartbeat or cfg.hub.fleet else None
        self.places: dict[str, Place] = {}
        cached = self.fleet.cached_devices() if self.fleet is not None and cfg.hub.fleet else None
        hub_list: list[DeviceEntry] = []
        if cached is not None:
            hub_list, self.places, _ = device_entries(cached[1])
        self.listed = self._listing(hub_list)
        self.rule_file = RuleFile(cfg.rules, self.outbox, self.metrics)
        self.engine = Engine(self._initial_rules(), cfg.edge_id, evidence=self.video.evidence)
        self.engine.load(self.outbox.load_states())
        self._seed(clock())
        self.engine.silence_from(clock())  # a restart: silence counts from now, queued readings come first
        self.devices = DevicePolicy({d.id: d.grid for d in self.listed.values()}, strict=cfg.devices.strict,
                                    cap=cfg.limits.max_devices)
        joins = {cr.id for pairs in self.engine.rules.correlators.values() for cr, _ in pairs}  # scopes, not devices
        self.devices.learn((st["dev"], st["grid"]) for st in self.engine.states.values() if st["r"] not in joins)
        self.metrics.watch(lambda: self.engine, self.outbox.depth, lambda: self.mqtt.moves)
        restored = self.video.scenes.load(self.outbox.metas(SCENE))
        if restored:
            logger.info("restored the learned baselines of %d cameras", restored)
        self._scenes_saved = time.monotonic()
        self.forwarder = Forwarder(
            self.outbox, cfg.hub.url, cfg.hub.secret(), batch_size=cfg.hub.batch_size, timeout=cfg.hub.timeout,
            backoff_min=cfg.hub.backoff_min, backoff_max=cfg.hub.backoff_max,
            on_latency=self.metrics.forward_latency.observe,
            on_error=lambda r: self.metrics.forward_errors.labels(r).inc(),
            ca_file=str(cfg.hub.ca_file) if cfg.hub.ca_file else None)
        self.recorder = Recorder(cfg.record.path, cfg.record.max_bytes, cfg.record.backups) if cfg.record else None
        self.timeseries: TimeSeriesWriter | None = None
        if cfg.influx is not None:
            from edge.timeseries import TimeSeriesWriter
            self.timeseries = TimeSeriesWriter(cfg.influx, self.metrics.timeseries_errors.inc)
        self.feeds = FeedSet(cfg.feed_specs(), self.limits, cfg.mqtt.topic_root, self._registry(),
                             on_unmapped=lambda f: self.metrics.unmapped.labels(f).inc())
        self.grids = frozenset(cfg.grids)
        filters = feed_filters(self.feeds, cfg)
        self.mqtt = MqttIngest(cfg.mqtt, filters, cfg.mqtt.client_id or f"gridwatch-{cfg.edge_id}", self.inbox.put)
        self._next_rules: RuleSet | None = None
        self._next_version: tuple[int, str] | None = None  # the hub version `_next_rules` is
        self._next_devices: list[DeviceEntry] | None = None
        self._threads: list[threading.Thread] = []
        self._checkpointed = float("-inf")
        self.committer = Committer(self.outbox, self.metrics, self.refusals.gate, self._stop, self._committed)
        self.metrics_port: int | None = None
        self.beat = time.monotonic()  # the worker's last round

    # ---- life cycle ---------------------------------------------------------------------------
    def start(self) -> None:
        if self.cfg.metrics is not None:
            self.metrics_port = self.metrics.serve(self.cfg.metrics.host, self.cfg.metrics.port, self.health)
        self.forwarder.start()
        self.committer.start()
        for name, target in (("worker", self._work), ("rules-watch", self._watch)):
            t = threading.Thread(target=target, name=f"gridwatch-{name}", daemon=True)
            t.start()
            self._threads.append(t)
        self.mqtt.start()
        if self.fleet is not None:
            self.fleet.start()
        logger.info("edge %s started: %d rules, outbox %s", self.cfg.edge_id, len(self.engine.rules.rules),
                    self.cfg.outbox.path)

    def stop(self) -> None:
        if self.fleet is not None:
            self.fleet.stop()
        self.mqtt.stop()
        self._stop.set()
        for t in self._threads:
            t.join(timeout=10)
        self._checkpointed = float("-inf")
        self.save_scenes()
        self.committer.close(Job([], *self._snapshot(), []))  # the worker has stopped: checkpoint all it left
        self.forwarder.stop()
        self.metrics.close()
        if self.recorder is not None:
            self.recorder.close()
        if self.timeseries is not None:
            self.timeseries.close()
        self.outbox.close()

    def _frame_dropped(self) -> None:
        self.metrics.frames_dropped.inc()
        self.frames_dropped += 1

    # ---- the worker ---------------------------------------------------------------------------
    def _work(self) -> None:
        while not self._stop.is_set():
            self.beat = time.monotonic()
            due = self.engine.next_deadline()
            wait = 0.25 if due is None else min(0.25, max(0.0, due - self.clock()))
            batch = self.inbox.take(self.cfg.batch_max, wait)
            try:
                job = self._round(batch)
            except Exception as exc:  # a fault outside any one message (timers, a rule swap): keep going
                self.metrics.worker_errors.inc()
                for msg in batch:
                    self.refusals.failed_on(msg, f"worker round failed: {type(exc).__name__}: {exc}")
                job = Job([], {}, set(), batch)
            self.committer.jobs.put(job)

    def supervise(self) -> bool:
        """Restart the worker if it died (True when it did); called by the watcher thread."""
        worker = self._threads[0] if self._threads else None
        if worker is None or worker.is_alive() or self._stop.is_set():
            return False
        logger.error("the rule worker stopped; restarting it")
        self.metrics.worker_restarts.inc()
        t = threading.Thread(target=self._work, name="gridwatch-worker", daemon=True)
        self._threads[0] = t
        t.start()
        return True

    def health(self) -> tuple[bool, str]:
        """Healthy: the worker ran a round within the last 5 s and the broker link is up."""
        stale = time.monotonic() - self.beat
        if self._threads and not self._threads[0].is_alive():
            return False, "rule worker is not running"
        if stale > 5.0:
            return False, f"rule worker has not run for {stale:.0f}s"
        if not self.mqtt.connected.is_set():
            return False, "not connected to the broker"
        return True, "ok"

    def step(self, batch: list[Message]) -> list[Alert]:
        """One synchronous round: evaluate, commit, then acknowledge (the threaded agent pipelines these)."""
        job = self._round(batch)
        self.committer.finish(job)
        return job.alerts

    def _round(self, batch: list[Message]) -> Job:
        """Swap in new rules, fire due timers, evaluate the batch and snapshot what must be saved."""
        alerts: list[Alert] = []
        self._clock_step()
        if self.mqtt.reconnected.is_set():  # back after a broker outage: silence counts from now
            self.mqtt.reconnected.clear()
            self.engine.silence_from(self.clock())
        elif self.mqtt.deaf:  # while cut off no device is called silent (a broker node's death is not theirs)
            self.engine.silence_from(self.clock())
        entries, self._next_devices = self._next_devices, None
        if entries is not None:
            alerts += self._take_devices(entries)
        if self._next_rules is not None:
            ruleset, self._next_rules = self._next_rules, None
            alerts += self.engine.swap(ruleset, self.clock())
            self._seed(self.clock())  # new stale rules learn the listed devices
            if self._next_version is not None:
                (self.rule_version, self.rule_hash), self._next_version = self._next_version, None
                if self.fleet is not None:
                    self.fleet.poke()
        alerts += self.engine.tick(self.clock())
        alerts += self.evaluate(batch)
        if self.places:
            for a in alerts:
                if a.place is None:
                    a.place = self.places.get(a.device_id)
        for topic, payload in self.feeds.take_outgoing():  # Sparkplug B rebirth requests
            self.mqtt.publish(topic, payload)
        if time.monotonic() - self._scenes_saved >= SCENE_SAVE_EVERY:
            self.save_scenes()
        return Job(alerts, *self._snapshot(), batch)

    def _clock_step(self) -> float:
        """A step of the wall clock since the last round moves the timers with it (`edge.clockstep`)."""
        step = self.steps.step()
        if step:
            moved = self.engine.shift(step)
            self.metrics.clock_steps.inc()
            logger.warning("the wall clock stepped %+.1fs; %d timer stamps moved with it", step, moved)
        return step

    def save_scenes(self) -> None:
        self._scenes_saved = time.monotonic()
        dump = self.video.scenes.dump()
        if dump:
            try:
                self.outbox.set_metas({SCENE + k: v for k, v in dump.items()})
            except sqlite3.Error as exc:  # a courtesy for the next start: never stop evaluation over it
                logger.warning("could not save camera baselines: %s", exc)

    def _committed(self, job: Job) -> None:
        if job.alerts:
            self.forwarder.notify()
        if self.recorder is not None and job.batch:
            self.recorder.flush()

    def evaluate(self, batch: list[Message]) -> list[Alert]:
        alerts: list[Alert] = []
        kinds: Counter[str] = Counter()
        for msg in batch:
            try:
                alerts += self._one(msg, kinds)
            except Exception as exc:  # a fault of ours: never let one message stop the worker
                self.refusals.failed_on(msg, f"{type(exc).__name__}: {exc}")
        for kind, n in kinds.items():
            self.metrics.messages.labels(kind).inc(n)
        return alerts

    def _one(self, msg: Message, kinds: Counter[str]) -> list[Alert]:
        if self.recorder is not None:
            self.recorder.write(msg)
        out: list[Alert] = []
        for ev in self._decode(msg):
            kinds[ev.kind] += 1
            if self.timeseries is not None:
                self.timeseries.write(ev)
            if ev.kind in VIDEO_KINDS:
                t0 = time.perf_counter()
                out += self.video.observe(self.engine, ev)
                self.metrics.frame_seconds.labels(ev.kind).observe(time.perf_counter() - t0)
            else:
                out += self.engine.observe(ev)
        return out

    def _decode(self, msg: Message) -> list[Event]:
        try:
            events = self.feeds.decode(msg)
            out = []
            for ev in events:
                if ev.clock_ahead:
                    self.metrics.clock_ahead.inc()
                if self.grids and ev.grid not in self.grids:  # a mapped feed carries grids of other agents too
                    self.engine.ignored["other_grid"] += 1
                    continue
                refused = self.devices.refusal(ev)
                if refused is not None:  # this device's event alone; the message's others go on
                    self.refusals.refuse(msg.topic, Rejected(*refused))
                    continue
                out.append(ev)
            return out
        except Rejected as rej:
            self.refusals.refuse(msg.topic, rej)
            return []

    def _snapshot(self) -> tuple[dict[str, str], set[str]]:
        # Episode changes go with their alerts. The rest of the state (windows, last seen) is saved a slice
        # per commit, sized so that whatever is dirty now is saved within `state_checkpoint`: serialising
        # every touched window on every batch would halve throughput, and all at once would stall a batch.
        now = self.clock()
        elapsed = max(0.0, now - self._checkpointed)
        self._checkpointed = now
        share = elapsed / self.cfg.state_checkpoint if self.cfg.state_checkpoint > 0 else 1.0
        budget = None if share >= 1.0 else math.ceil(len(self.engine.dirty) * share)
        changed, deleted = self.engine.take_changes(budget)
        return {k: json.dumps(v, separators=(",", ":")) for k, v in changed.items()}, deleted

    # ---- devices and the hub's assignments -------------------------------------------------------
    def _listing(self, hub_list: list[DeviceEntry]) -> dict[str, DeviceEntry]:
        """The devices this agent knows: the hub's registry over the file's list, entry by entry."""
        return {d.id: d for d in self.cfg.devices.known} | {d.id: d for d in hub_list}

    def _registry(self) -> dict[str, tuple[str, str, str | None]]:
        return {d.id: (d.grid, d.kind, d.gateway) for d in self.listed.values()}

    def _seed(self, now: float) -> None:
        for d in self.listed.values():
            if not self.cfg.grids or d.grid in self.cfg.grids:  # a sharded agent watches its own grids' devices
                self.engine.seed(d.grid, d.id, d.kind, now)

    def _take_devices(self, entries: list[DeviceEntry]) -> list[Alert]:
        """In the worker, between rounds: the hub's list over the file's; new devices are watched from now,
        removed ones are forgotten (their firing alerts resolve)."""
        before = set(self.listed)
        self.listed = self._listing(entries)
        gone = before - set(self.listed)
        self.feeds.ctx.registry = self._registry()
        self.devices.relist({d.id: d.grid for d in self.listed.values()})
        self._seed(self.clock())
        if self.fleet is not None:
            self.fleet.poke()
        return self.engine.forget(gone, self.clock()) if gone else []

    def apply_devices(self, devices: list[dict[str, Any]]) -> str:
        entries, places, problem = device_entries(devices)
        self.places = places
        self._next_devices = entries
        logger.info("device list from the hub: %d devices%s", len(entries), f" ({problem})" if problem else "")
        return ""

    def apply_rules(self, version: int, text: str) -> str:
        """A rule set deployed by the hub: checked as a file is, swapped in at the next round."""
        try:
            rf = parse_rules(text, f"hub-rules-v{version}.yaml")
        except ConfigError as exc:
            self.rule_problem = "\n".join(exc.problems)
            for line in exc.problems:
                logger.error("hub rule set v%d rejected: %s", version, line)
            self.metrics.reloads.labels("invalid").inc()
            if self.fleet is not None:
                self.fleet.poke()
            return self.rule_problem
        self.rule_problem = ""
        self._next_version = (version, text_hash(text))
        self._next_rules = RuleSet(rf)
        self.rule_file.keep(text)
        self.metrics.reloads.labels("ok").inc()
        logger.info("hub rule set v%d taken: %d rules", version, len(rf.rules))
        return ""

    def heartbeat(self) -> dict[str, Any]:
        """What the hub's agent list shows (`hub.fleet.agents.Heartbeat`)."""
        oldest = self.outbox.oldest()
        return {"edge_id": self.cfg.edge_id, "version": __version__, "grids": list(self.cfg.grids),
                "rule_version": self.rule_version, "rule_hash": self.rule_hash,
                "broker": "up" if self.mqtt.connected.is_set() else "down", "outbox_depth": self.outbox.depth(),
                "oldest_unsent": iso_ms(from_epoch(oldest)) if oldest is not None else None,
                "dropped_frames": self.frames_dropped,
                "devices": len(self.devices.grid_of), "started_at": iso_ms(from_epoch(self.started_at)),
                "problem": self.rule_problem}

    # ---- rule files -----------------------------------------------------------------------------
    def _initial_rules(self) -> RuleSet:
        cached = self.fleet.cached_rules() if self.fleet is not None and self.cfg.hub.fleet else None
        if cached is not None:  # the hub's version this agent last took
            version, kept = cached
            self.rule_version, self.rule_hash = version, text_hash(kept)
            logger.info("running the hub's rule set v%d kept from the last assignment", version)
            return RuleSet(parse_rules(kept, f"hub-rules-v{version}.yaml"))
        return self.rule_file.initial()

    def _watch(self) -> None:
        while not self._stop.wait(self.cfg.rules_poll):
            self.supervise()
            try:
                self.check_rules()
            except Exception:  # the watcher must outlive a bad moment on the file system
                logger.exception("checking the rule file failed")

    def check_rules(self) -> bool | None:
        """Reload the rule file if it changed: True = swapped in, False = invalid (kept the old), None = same
        (or the hub's version is in force: then the file waits)."""
        if self.rule_version is not None or not self.rule_file.edited():
            return None
        rules = self.rule_file.reload(len(self.engine.rules.rules))
        if rules is None:
            return False
        self._next_rules = rules
        return True
