"""Helpers the command groups share: problems printed as `file:path: reason`, loading with them, findings
reported, a gateway served until a signal."""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO, TypeVar

if TYPE_CHECKING:
    from gridwatch.core.findings import Findings

T = TypeVar("T")


def print_problems(problems: list[str], out: TextIO) -> None:
    """One `file:path: reason` line per problem."""
    for line in problems:
        print(line, file=out)


def load_or_say(loader: Callable[[Path], T], path: Path, out: TextIO | None = None) -> T | None:
    """The loaded file, or None after printing its `file:path: reason` lines (to stderr by default)."""
    from gridwatch.core.errors import ConfigError

    try:
        return loader(path)
    except ConfigError as exc:
        print_problems(exc.problems, out or sys.stderr)
        return None


def report(found: Findings, path: Path, strict: bool) -> int:
    """A check's problems on stdout, what was sound and a summary on stderr; the exit code."""
    code = found.print(sys.stdout, strict)
    for line in found.checked:
        print(f"  ok  {line}", file=sys.stderr)
    print(f"{path}: {'ok' if code == 0 else 'problems'} ({len(found.errors)} errors, "
          f"{len(found.warnings)} warnings)", file=sys.stderr)
    return code


def serve_gateway(gw: Any, banner: Callable[[], str]) -> int:
    """Start a gateway, say what it serves (and where its metrics are), run until SIGTERM or SIGINT, stop it."""
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    gw.start()
    print(banner() + (f", metrics on http://127.0.0.1:{gw.metrics_port}/metrics" if gw.metrics_port else ""),
          file=sys.stderr, flush=True)
    done.wait()
    gw.stop()
    return 0
