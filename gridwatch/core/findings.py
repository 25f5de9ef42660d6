"""What a configuration check found: errors (the program would refuse to start, or start wrong) and warnings
(it starts, but something will go wrong later: a calendar running out, a demo key), one `file:path: reason`
line each, as `gridwatch hub check` and `gridwatch edge check` print them."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO, TypeVar

from gridwatch.core.errors import ConfigError
from gridwatch.core.yamlconf import Where, problem

T = TypeVar("T")


@dataclass
class Findings:
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)  # what was read and found sound, for the summary

    def load(self, loader: Callable[[], T]) -> T | None:
        """`loader()`'s result, or None with its problems recorded as errors."""
        try:
            return loader()
        except ConfigError as exc:
            self.errors += exc.problems
            return None

    @contextmanager
    def catching(self) -> Iterator[None]:
        try:
            yield
        except ConfigError as exc:
            self.errors += exc.problems

    def files(self, path: str | Path, src: Where, wanted: Iterable[tuple[tuple[str, ...], Path | None]]) -> None:
        """An error for each named file (at its YAML path in `path`) that is not there."""
        for loc, p in wanted:
            if p is not None and not p.is_file():
                self.errors.append(problem(path, src, loc, f"{p}: no such file"))

    def print(self, out: TextIO, strict: bool = False) -> int:
        """Errors and warnings to `out`; the exit code: 1 with an error (or, when strict, a warning), else 0."""
        for line in self.errors:
            print(line, file=out)
        for line in self.warnings:
            print(f"warning: {line}", file=out)
        return 1 if self.errors or (strict and self.warnings) else 0
