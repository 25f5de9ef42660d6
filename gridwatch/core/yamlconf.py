"""Loading YAML into pydantic models with errors that name the file, the YAML path and the line."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from gridwatch.core.errors import ConfigError

M = TypeVar("M", bound=BaseModel)


def path_text(loc: tuple[Any, ...] | list[Any]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top)"


def _line(node: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    """Line (1-based) of the deepest YAML node the location reaches."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            node = next((v for k, v in node.value if k.value == part), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
        else:
            break
        if node is None:
            break
        line = node.start_mark.line + 1
    return line


def clean_loc(loc: tuple[Any, ...], tags: set[str]) -> tuple[Any, ...]:
    """Drop pydantic's union tags (`when.threshold.for` -> `when.for`)."""
    out: list[Any] = []
    for i, part in enumerate(loc):
        if isinstance(part, str) and part in tags and i > 0 and loc[i - 1] == "when":
            continue
        if isinstance(part, str) and part.startswith("function-"):
            continue
        out.append(part)
    return tuple(out)


def read_yaml(path: str | Path) -> tuple[Any, yaml.Node | None, str]:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{p}: cannot read: {exc.strerror}"]) from None
    return parse_yaml(text, p)


def parse_yaml(text: str, p: str | Path) -> tuple[Any, yaml.Node | None, str]:
    """YAML text (named `p` in problems) as data and its node tree (for line numbers)."""
    try:
        data = yaml.safe_load(text)
        node = yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else "(top)"
        raise ConfigError([f"{p}:{where}: invalid YAML: {getattr(exc, 'problem', exc)}"]) from None
    return data, node, text


def problem(path: str | Path, node: yaml.Node | None, loc: tuple[Any, ...], reason: str) -> str:
    line = _line(node, loc)
    suffix = f" (line {line})" if line else ""
    return f"{path}:{path_text(loc)}: {reason}{suffix}"


def validate(model: type[M], data: Any, path: str | Path, node: yaml.Node | None,
             tags: set[str] | None = None) -> M:
    """Validate loaded YAML; on failure raise ConfigError with one `file:path: reason` line per error."""
    if data is None:
        data = {}
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = clean_loc(tuple(err["loc"]), tags or set())
            msg = str(err["msg"]).removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                msg = "unknown key (check the spelling)"
            problems.append(problem(path, node, loc, msg))
        raise ConfigError(problems) from None


def load(model: type[M], path: str | Path, tags: set[str] | None = None) -> M:
    data, node, _ = read_yaml(path)
    return validate(model, data, path, node, tags)
