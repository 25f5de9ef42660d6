"""Names and severities: what a grid, device, unit and rule id may look like, and the severity scale."""

from __future__ import annotations

import re
from typing import Final, Literal

NAME: Final = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
"""Grid, device and org-unit ids: they appear in MQTT topics, so no `/`, `+`, `#` or spaces."""

RESERVED: Final[frozenset[str]] = frozenset({"cases"})
"""Not a grid or unit id: `gw/cases/…` carries the hub's case events, never a feed."""

RULE_ID: Final = r"^[A-Za-z0-9_.:-]{1,64}$"
CATEGORY: Final = r"^[a-z0-9_]{1,64}$"

Severity = Literal["info", "minor", "major", "critical"]
SEVERITY_RANK: Final[dict[str, int]] = {"info": 0, "minor": 1, "major": 2, "critical": 3}
