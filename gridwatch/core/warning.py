"""The four warning levels of early warning (预警): 蓝 / 黄 / 橙 / 红, Ⅳ级 to Ⅰ级, as public warnings name them.

A rule that names levels (`edge.rules.levels`) raises one alert per episode whose level can climb; each change
after the firing travels as an alert of state `warning` with its own sequence number (`Alert.warning_seq`), and
the hub raises the open case's severity and level with it (`hub.cases.ingest`). Both sides show the same words.
"""

from __future__ import annotations

from typing import Final, Literal

from gridwatch.core.names import Severity

WarningLevel = Literal["blue", "yellow", "orange", "red"]
LEVELS: Final[tuple[WarningLevel, ...]] = ("blue", "yellow", "orange", "red")
RANK: Final[dict[str, int]] = {name: n for n, name in enumerate(LEVELS, start=1)}
"""blue 1 … red 4: a higher rank is the more serious level."""

SEVERITY: Final[dict[WarningLevel, Severity]] = {"blue": "info", "yellow": "minor", "orange": "major",
                                                 "red": "critical"}
"""The severity a level raises unless the rule names its own."""

NAMES: Final[dict[str, tuple[str, str, str]]] = {  # level -> (zh-CN, grade, en)
    "blue": ("蓝色预警", "Ⅳ级", "Blue warning"), "yellow": ("黄色预警", "Ⅲ级", "Yellow warning"),
    "orange": ("橙色预警", "Ⅱ级", "Orange warning"), "red": ("红色预警", "Ⅰ级", "Red warning"),
}
COLOURS: Final[dict[str, str]] = {"blue": "#1e6fd9", "yellow": "#f2c200", "orange": "#f07800", "red": "#d9202c"}


def warning_name(level: str, lang: Literal["zh-CN", "en"] = "zh-CN") -> str:
    """`橙色预警（Ⅱ级）` or `Orange warning (II)`; an unknown level is shown as itself."""
    names = NAMES.get(level)
    if names is None:
        return level
    return f"{names[0]}（{names[1]}）" if lang == "zh-CN" else names[2]
