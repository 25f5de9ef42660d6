"""The module-size floor of `make lint`: no Python module over LIMIT lines outside tests and migrations, so a
module that grows past what a newcomer reads in one sitting is split by concern before it lands."""

from __future__ import annotations

import sys
from pathlib import Path

LIMIT = 450
ROOTS = ("gridwatch", "edge", "hub", "simulators", "bench", "scripts")


def oversized(root: Path, limit: int = LIMIT) -> list[tuple[str, int]]:
    """(path, lines) of every module over `limit`, largest first."""
    found = []
    for top in ROOTS:
        for p in (root / top).rglob("*.py"):
            if "migrations" in p.parts:
                continue
            n = len(p.read_text(encoding="utf-8").splitlines())
            if n > limit:
                found.append((str(p.relative_to(root)), n))
    return sorted(found, key=lambda x: -x[1])


def main() -> int:
    found = oversized(Path(__file__).resolve().parent.parent)
    for path, n in found:
        print(f"{path}: {n} lines, over the {LIMIT}-line limit: split it by concern")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
