"""A validated rule file compiled for evaluation: evaluators built, rules indexed by what they watch."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from edge.message import Event
from edge.rules import correlation, levels, registry
from edge.rules.base import Evaluator, Severity
from edge.rules.spec import RuleFile, RuleSpec
from gridwatch.core.kinds import FEED_KINDS
from gridwatch.core.words import Lang


@dataclass(slots=True)
class CompiledRule:
    spec: RuleSpec
    evaluator: Evaluator
    version: str
    hold: float
    clear_hold: float
    id: str = ""
    plausible: tuple[float, float] | None = None
    lang: Lang = "zh-CN"  # the rule file's: the language of the default message
    severities: dict[str, Severity] | None = None  # warning level -> severity, for a rule with `levels:`

    def __post_init__(self) -> None:
        self.id = self.spec.id  # plain attributes: read for every evaluation
        self.plausible = self.spec.plausible
        self.severities = levels.severities(self.spec.when) or None


def compile_rule(spec: RuleSpec, lang: Lang = "zh-CN") -> CompiledRule:
    evaluator = registry.KINDS[spec.kind].evaluator(spec, spec.when)
    hold, clear_hold = evaluator.hold, evaluator.clear_hold
    return CompiledRule(spec, evaluator, spec.version, getattr(spec.when, "for_", 0.0) if hold is None else hold,
                        getattr(spec.when, "clear_for", 0.0) if clear_hold is None else clear_hold, lang=lang)


def expand(spec: RuleSpec) -> list[RuleSpec]:
    """A rule and the rules it implies (a hotspot's pre-alarm)."""
    hook = registry.KINDS[spec.kind].expand
    return list(hook(spec)) if hook is not None else [spec]


Candidate = tuple[CompiledRule, str | None, bool]  # rule, state key if fixed, accepts() still to ask
Correlator = tuple[CompiledRule, correlation.Evaluator]  # a correlation rule and its evaluator


class RuleSet:
    """Rules by id, plus indexes so one event is offered only to rules that may want it."""

    def __init__(self, rf: RuleFile) -> None:
        self.rules: dict[str, CompiledRule] = {}
        self.by_metric: dict[str, list[CompiledRule]] = defaultdict(list)
        self.by_kind: dict[str, list[CompiledRule]] = defaultdict(list)
        self.correlators: dict[str, list[Correlator]] = defaultdict(list)  # referenced rule id -> rules
        self.suppresses: dict[str, list[str]] = defaultdict(list)  # suppressor id -> suppressed rule ids
        for spec in (s for written in rf.rules for s in expand(written)):
            if not spec.enabled:
                continue
            cr = compile_rule(spec, rf.lang)
            self.rules[spec.id] = cr
            for sid in spec.suppressed_by:
                self.suppresses[sid].append(spec.id)
            if isinstance(cr.evaluator, correlation.Evaluator):
                for ref in cr.evaluator.refs:
                    self.correlators[ref].append((cr, cr.evaluator))
            elif cr.evaluator.needs_metric:
                self.by_metric[spec.match.metric or ""].append(cr)
            else:
                kinds: list[str] = [spec.match.kind] if spec.match.kind else list(FEED_KINDS)
                for k in kinds:
                    self.by_kind[k].append(cr)
                if spec.kind == "stale":
                    self.by_kind["status"].append(cr)
        self._selects: dict[tuple[str, str, str], bool] = {}
        self._candidates: dict[tuple[str, ...], list[Candidate]] = {}

    def candidates(self, ev: Event) -> list[Candidate]:
        """Rules that may want this event, each with its state key when it does not depend on the event
        and whether `accepts()` must still be asked; cached per device and metric set."""
        key = (ev.kind, ev.grid, ev.device, *ev.metrics)
        cached = self._candidates.get(key)
        if cached is not None:
            return cached
        found: list[Candidate] = []
        if ev.kind == "sensor":
            for m in ev.metrics:
                found += [(cr, f"{cr.id}|{ev.device}|", False) for cr in self.by_metric.get(m, ())]
        for cr in self.by_kind.get(ev.kind, ()):
            found.append((cr, f"{cr.id}|{ev.device}|" if cr.evaluator.fixed_sub else None, True))
        found = [c for c in found if self.selects(c[0], ev.grid, ev.device)]
        if len(self._candidates) > 500_000:
            self._candidates.clear()
        self._candidates[key] = found
        return found

    def selects(self, cr: CompiledRule, grid: str, device: str) -> bool:
        key = (cr.id, grid, device)
        hit = self._selects.get(key)
        if hit is None:
            m = cr.spec.match
            hit = m.selects(grid, device)
            if len(self._selects) < 1_000_000:
                self._selects[key] = hit
        return hit
