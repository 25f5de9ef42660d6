"""The rule file an agent runs when the hub has deployed none: read at start (or, when it is broken, the last
good text kept in the outbox), watched for edits, an edit that does not check refused with every problem
logged and counted while the last good rules keep running."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from edge.errors import ConfigError
from edge.metrics import AgentMetrics
from edge.outbox import Outbox
from edge.rules.loader import load_rules
from edge.rules.ruleset import RuleSet

logger = logging.getLogger(__name__)

LAST_GOOD = "last_good_rules"
"""Outbox meta key of the last rule text that checked (the file's or the hub's)."""


class RuleFile:
    def __init__(self, path: Path | str, outbox: Outbox, metrics: AgentMetrics) -> None:
        self.path = Path(path)
        self.outbox = outbox
        self.metrics = metrics
        self._sig = self._signature()

    def keep(self, text: str) -> None:
        """Remember `text` as the last good rules (it checked)."""
        self.outbox.set_meta(LAST_GOOD, text)

    def initial(self) -> RuleSet:
        """The file's rules, or the last good text when the file does not check (ConfigError if none)."""
        try:
            rf = load_rules(self.path)
        except ConfigError as exc:
            text = self.outbox.get_meta(LAST_GOOD)
            if text is None:
                raise
            for line in exc.problems:
                logger.error("%s", line)
            logger.error("rule file %s is invalid; running the last good version kept in the outbox", self.path)
            with tempfile.TemporaryDirectory() as tmp:
                p = Path(tmp) / "last-good-rules.yaml"
                p.write_text(text, encoding="utf-8")
                return RuleSet(load_rules(p))
        self.keep(self.path.read_text(encoding="utf-8"))
        return RuleSet(rf)

    def _signature(self) -> tuple[int, int] | None:
        try:
            st = self.path.stat()
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size)

    def edited(self) -> bool:
        """The file changed since it was last looked at (and is now looked at)."""
        sig = self._signature()
        if sig == self._sig:
            return False
        self._sig = sig
        return True

    def reload(self, running: int) -> RuleSet | None:
        """The edited file's rules, or None when they do not check (logged and counted; `running` rules go on)."""
        try:
            text = self.path.read_text(encoding="utf-8")
            rf = load_rules(self.path)
        except (ConfigError, OSError) as exc:
            problems = exc.problems if isinstance(exc, ConfigError) else [f"{self.path}: {exc}"]
            for line in problems:
                logger.error("rule reload rejected: %s", line)
            logger.error("keeping the last good rules (%d rules)", running)
            self.metrics.reloads.labels("invalid").inc()
            return None
        self.keep(text)
        self.metrics.reloads.labels("ok").inc()
        logger.info("rule file %s reloaded: %d rules", self.path, len(rf.rules))
        return RuleSet(rf)
