"""One (rule, device, sub)'s episode state, and the alert an episode raises.

The state is a JSON-able dict (the agent persists exactly the episodes that changed, in the outbox with the
alerts), typed here so every key has one meaning. Episode: idle → pending (condition true, hold `for`
running) → firing (alert sent) → clearing (optional `clear_for`) → idle (resolved sent). Alert id =
hash(rule, device, sub, episode start), so replays and restarts reproduce the same id.
"""

from __future__ import annotations

import hashlib
from typing import Any, Literal, NotRequired, TypedDict

from edge.rules.ruleset import CompiledRule
from gridwatch.core.alert import Alert, AlertState, from_epoch
from gridwatch.core.names import Severity
from gridwatch.core.warning import WarningLevel, warning_name
from gridwatch.core.words import category_name

FAULT_SUB = "!implausible"
"""The sub of a rule's device-fault episode (a reading outside the rule's plausible range)."""

Phase = Literal["idle", "pending", "firing", "clearing"]


class Episode(TypedDict):
    r: str
    """The rule's id."""
    dev: str
    """The device (a correlation rule: its scope)."""
    grid: str
    sub: str
    """Zone, or `FAULT_SUB`, or "" for the device as a whole."""
    k: Any
    """The feed kind of the device (`gridwatch.core.kinds.FeedKind`)."""
    ep: Phase
    d: dict[str, Any]
    """The evaluator's own state (windows, baselines, counters)."""
    lts: float | None
    """The last reading's time (device clock)."""
    lseq: int | None
    """The last frame's sequence number (video)."""
    since: NotRequired[float]
    """When the condition became true (pending) — the episode's start once it fires."""
    start: NotRequired[float]
    """The firing episode's start: part of its alert id."""
    fired: NotRequired[float]
    """When the alert fired."""
    cs: NotRequired[float]
    """When clearing began."""
    why: NotRequired[str]
    """Why it is clearing, when the evaluator said (`crossed`, `relearned`): the resolve's `resolved_by`."""
    sup: NotRequired[bool]
    """Firing but suppressed by another rule's firing alert (its alert waits)."""
    val: NotRequired[Any]
    """The value the alert carries."""
    note: NotRequired[dict[str, Any]]
    """Labels the evaluator adds, frozen when the alert fires (the resolve says what the firing said)."""
    adev: NotRequired[str]
    """A correlation's alert: the device of the alert that started it."""
    lv: NotRequired[WarningLevel]
    """A rule with warning levels: the level the last reading judged."""
    lvl: NotRequired[WarningLevel]
    """The episode's warning level since it fired (`edge.rules.levels.step` moves it)."""
    lvs: NotRequired[list[Any]]
    """`["+" or "-", since]`: readings have judged a level above / below `lvl` since then."""
    wseq: NotRequired[int]
    """Changes of level sent in this episode (the `warning_seq` of the last `warning` alert)."""


def alert_id(rule_id: str, device: str, sub: str, start: float) -> str:
    text = f"{rule_id}|{device}|{sub}|{round(start * 1000)}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def make_alert(cr: CompiledRule, st: Episode, state: AlertState, ts: float, edge_id: str,
               resolved_by: str | None = None) -> Alert:
    """The alert of an episode firing or resolving at `ts`."""
    spec = cr.spec
    labels = dict(spec.labels)
    if spec.match.metric:
        labels["metric"] = spec.match.metric
    category: str = spec.category
    severity: Severity = spec.severity
    if st["sub"] == FAULT_SUB:
        labels["fault"] = "implausible"
        category, severity = "device_fault", "minor"
    elif st["sub"]:
        labels["zone"] = st["sub"]
    if "note" in st:
        labels.update(st["note"])
    if resolved_by:
        labels["resolved_by"] = resolved_by
    level = st.get("lvl") if cr.severities else None
    if level is not None and st["sub"] != FAULT_SUB:
        severity = cr.severities[level] if cr.severities else severity
    device: str = st.get("adev") or st["dev"]
    value = st.get("val")
    return Alert(
        alert_id=alert_id(spec.id, st["dev"], st["sub"], st["start"]), state=state, rule_id=spec.id,
        rule_hash=cr.version, edge_id=edge_id, device_id=device, grid_id=st["grid"], kind=st["k"],
        category=category, severity=severity, started_at=from_epoch(st["start"]), observed_at=from_epoch(ts),
        value=value, message=message(cr, st, value, device, category), labels=labels,
        warning=level if st["sub"] != FAULT_SUB else None, warning_seq=st.get("wseq", 0) if state == "warning" else 0)


def message(cr: CompiledRule, st: Episode, value: Any, device: str, category: str) -> str:
    """The alert's text: the rule's `message` template filled in, or a plain default in the rule file's
    language (`lang:`, Chinese unless it says en)."""
    spec = cr.spec
    zh = cr.lang == "zh-CN"
    if st["sub"] == FAULT_SUB:
        lo, hi = spec.plausible or (None, None)
        if zh:
            return f"{device} 读数 {spec.match.metric}={value} 超出合理范围 [{lo}, {hi}]，疑似设备故障"
        return f"{spec.match.metric}={value} at {device} is outside its plausible range [{lo}, {hi}]"
    note = st.get("note", {})
    gateway = note.get("gateway") if st["sub"] == "" else None
    if gateway is not None:
        if zh:
            return (f"网关 {device} 离线：其下 {note.get('devices', '?')} 台设备无法连接"
                    f"（{note.get('device_ids', '')}）")
        return (f"gateway {device} offline: {note.get('devices', '?')} devices behind it unreachable "
                f"({note.get('device_ids', '')})")
    level = st.get("lvl") if cr.severities else None
    if spec.message is None:
        prefix = "" if level is None else warning_name(level, cr.lang) + ("：" if zh else ": ")
        early = early_words(note, spec.match.metric or "", zh)
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if zh:
            return prefix + f"{category_name(category)}：{device}" + (
                f"，{early}" if early else f"，数值 {value:g}" if number else "")
        return prefix + f"{spec.id} ({category}) at {device}" + (
            f": {early}" if early else f" value {value:g}" if number else "")
    threshold = getattr(spec.when, "threshold", None)
    eta = note.get("eta_s")
    fields = {"value": value if value is not None else float("nan"), "device": device, "grid": st["grid"],
              "rule": spec.id, "metric": spec.match.metric or "", "zone": st["sub"],
              "threshold": threshold if threshold is not None else float("nan"),
              "category": category, "severity": spec.severity,
              "level": "" if level is None else warning_name(level, cr.lang),
              "eta_min": float(eta) / 60 if eta is not None else float("nan")}
    try:
        return spec.message.format(**fields)
    except (KeyError, IndexError, ValueError, TypeError):
        return f"{spec.id} at {device}"


def duration_words(seconds: float, zh: bool) -> str:
    """`约 25 分钟` / `about 25 min`; under a minute, `不到 1 分钟` / `under a minute`."""
    minutes = round(seconds / 60)
    if minutes < 1:
        return "不到 1 分钟" if zh else "under a minute"
    hours, minutes = divmod(minutes, 60)
    parts = ([f"{hours} 小时" if zh else f"{hours} h"] if hours else []) + (
        [f"{minutes} 分钟" if zh else f"{minutes} min"] if minutes or not hours else [])
    return ("约 " if zh else "about ") + " ".join(parts)


def early_words(note: dict[str, Any], metric: str, zh: bool) -> str:
    """What an early-warning rule saw, in words: where the trend is going (`eta_s`, `line`, `now`, `per_min`), or
    how far a reading is from the device's own normal (`normal`, `spread`, `z`); "" for other rules."""
    if "eta_s" in note:
        rate = float(note["per_min"])
        if zh:
            way = "上升" if rate >= 0 else "下降"
            return (f"{metric} 预计{duration_words(float(note['eta_s']), True)}后达到 {note['line']}"
                    f"（当前 {note['now']}，每分钟{way} {abs(rate):.3g}）")
        return (f"{metric} expected to reach {note['line']} in {duration_words(float(note['eta_s']), False)} "
                f"(now {note['now']}, {rate:+.3g} per minute)")
    if "normal" in note:
        if zh:
            return (f"{metric} 为 {note['now']}，偏离其常态 {note['normal']}±{note['spread']}"
                    f"（{note['z']} 倍离散度）")
        return (f"{metric} is {note['now']}, away from its normal {note['normal']}±{note['spread']} "
                f"({note['z']} spreads)")
    return ""
