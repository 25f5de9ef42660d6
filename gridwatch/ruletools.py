"""The edge's rule checker and backtest, lent to the hub (which never imports the edge): `gridwatch hub
serve` and the demo hand an `EdgeRuleTools` to `hub.boot.app.create_app`, so a rule set saved or typed in the
board is checked by exactly the code an agent will load it with (`gridwatch rules check`)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any


class EdgeRuleTools:
    """`hub.fleet.agents.RuleTools` backed by the edge's own loader and backtest. The edge (and with it OpenCV and
    NumPy) is imported at the first check, not at the hub's start: a hub that never edits rules does not
    carry it, and its cycle collector does not walk it."""

    def check(self, text: str) -> tuple[int, list[str]]:
        from edge.errors import ConfigError
        from edge.rules.loader import parse_rules

        try:
            rf = parse_rules(text)
        except ConfigError as exc:
            return 0, list(exc.problems)
        return len(rf.rules), []

    def backtest(self, text: str, capture: Path) -> dict[str, Any]:
        from edge.backtest import backtest
        from edge.rules.loader import parse_rules
        from edge.rules.ruleset import RuleSet

        res = backtest(RuleSet(parse_rules(text)), capture)
        per: Counter[str] = Counter()
        for (rule, state), n in res.per_rule().items():
            per[f"{rule} {state}"] += n
        return {"messages": res.messages, "alerts": len(res.alerts), "rejected": dict(res.rejected),
                "per_rule": dict(sorted(per.items())),
                "first": [a.model_dump(mode="json", exclude={"evidence"}) for a in res.alerts[:100]]}
