"""A rule as written in the rule file, and the whole file, as validated pydantic models."""

from __future__ import annotations

import functools
import hashlib
import json
import operator
from typing import Annotated, Any

from pydantic import Discriminator, Field, Tag, model_validator

from edge.rules import registry
from edge.rules.base import RULE_ID, Match, Schedule, Severity, Strict
from gridwatch.core.words import Lang


def _when_tag(v: Any) -> str | None:
    if isinstance(v, dict):
        return registry.kind_of(v)
    for name, kind in registry.KINDS.items():
        if isinstance(v, kind.config):
            return name
    return None


_WHEN_UNION: Any = functools.reduce(
    operator.or_, [Annotated[k.config, Tag(n)] for n, k in registry.KINDS.items()])
WhenConfig = Annotated[
    _WHEN_UNION,
    Discriminator(_when_tag, custom_error_type="unknown_condition",
                  custom_error_message="expected one condition key of: " + ", ".join(registry.all_keys())),
]

TEMPLATE_FIELDS = {"value": 1.0, "device": "d", "grid": "g", "rule": "r", "metric": "m", "zone": "z",
                   "threshold": 1.0, "category": "c", "severity": "s", "level": "l", "eta_min": 1.0}


class RuleSpec(Strict):
    id: str = Field(pattern=RULE_ID)
    match: Match = Field(default_factory=Match)
    when: WhenConfig
    severity: Severity = "major"
    category: str = Field(pattern=r"^[a-z0-9_]{1,64}$")
    message: str | None = None
    schedule: Schedule | None = None
    plausible: tuple[float, float] | None = Field(
        None, description="physical range of the metric; readings outside raise a device fault instead")
    suppressed_by: list[str] = Field(default_factory=list)
    suppress_scope: str = Field("device", pattern="^(device|grid)$")
    labels: dict[str, str] = Field(default_factory=dict)
    enabled: bool = True

    @model_validator(mode="after")
    def _coherent(self) -> RuleSpec:
        needs_metric = registry.KINDS[self.kind].needs_metric
        if needs_metric and self.match.metric is None:
            raise ValueError(f"a {self.kind} condition needs match.metric")
        if self.plausible is not None:
            if self.match.metric is None:
                raise ValueError("plausible needs match.metric")
            if self.plausible[0] >= self.plausible[1]:
                raise ValueError("plausible: expected [min, max] with min < max")
        if self.message is not None:
            try:
                self.message.format(**TEMPLATE_FIELDS)
            except (KeyError, IndexError, ValueError) as exc:
                raise ValueError(f"message template: {exc!r}; fields are {sorted(TEMPLATE_FIELDS)}") from None
        return self

    @property
    def kind(self) -> str:
        kind = _when_tag(self.when)
        assert kind is not None
        return kind

    @property
    def version(self) -> str:
        """Hash of this rule's definition; every alert carries it."""
        text = json.dumps(self.model_dump(mode="json", by_alias=True), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]


class RuleFile(Strict):
    lang: Lang = Field("zh-CN", description="the language of the default alert messages (rules without their own "
                                            "`message:`): zh-CN, or en")
    rules: list[RuleSpec] = Field(default_factory=list)
