"""Loading YAML into pydantic models with errors that name the file, the YAML path and the line."""

from __future__ import annotations

from collections.abc import Iterator
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


_BASE: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: about 6x faster than pure Python


class DuplicateKey(ValueError):
    """A mapping names the same key twice (PyYAML keeps the last one without a word)."""

    def __init__(self, key: Any, node: yaml.Node) -> None:
        super().__init__(f"{key!r} is given twice in one mapping (line {node.start_mark.line + 1}); the second "
                         f"would silently replace the first")
        self.key, self.node = key, node


class _Loader(_BASE):  # type: ignore[misc, unused-ignore]  # subclassing Any: --strict only
    """The safe loader, refusing a key given twice in one mapping."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode):
                key = self.construct_object(key_node, deep=deep)
                if key in seen:
                    raise DuplicateKey(key, key_node)
                seen.add(key)
        return super().construct_mapping(node, deep=deep)  # type: ignore[no-any-return, unused-ignore]


_Loader.add_constructor("tag:yaml.org,2002:map", _Loader.construct_yaml_map)
_LOADER: Any = _Loader


class YamlSource:
    """The text a file was loaded from; its node tree (for line numbers) is built only when a problem must
    be reported, since composing it costs as much as loading the data (0.7 s for a 1,000-rule set)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._node: yaml.Node | None = None
        self._done = False

    @property
    def node(self) -> yaml.Node | None:
        if not self._done:
            self._node, self._done = yaml.compose(self.text, Loader=_LOADER), True
        return self._node


Where = yaml.Node | YamlSource | None
"""Where line numbers come from: a node tree, a source that composes one when asked, or nothing."""


def _line(where: Where, loc: tuple[Any, ...]) -> int | None:
    """Line (1-based) of the deepest YAML node the location reaches."""
    node = where.node if isinstance(where, YamlSource) else where
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            node = next((v for k, v in node.value if k.value == str(part)), None)  # a key 2027 is "2027"
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


def read_yaml(path: str | Path) -> tuple[Any, YamlSource, str]:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{p}: cannot read: {exc.strerror}"]) from None
    return parse_yaml(text, p)


def parse_yaml(text: str, p: str | Path) -> tuple[Any, YamlSource, str]:
    """YAML text (named `p` in problems) as data and its source (for line numbers)."""
    try:
        data = yaml.load(text, Loader=_LOADER)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else "(top)"
        raise ConfigError([f"{p}:{where}: invalid YAML: {getattr(exc, 'problem', exc)}"]) from None
    except DuplicateKey as exc:
        root = yaml.compose(text, Loader=_BASE)
        loc = _path_of(root, exc.node) if root is not None else None
        raise ConfigError([f"{p}:{path_text(loc or ())}: {exc}"]) from None
    except ValueError as exc:  # a scalar YAML resolves but cannot build, such as the date 2027-02-30
        raise ConfigError([_unbuildable(text, p, exc)]) from None
    return data, YamlSource(text), text


def _entries(node: yaml.Node, loc: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], yaml.Node | None,
                                                                           yaml.Node]]:
    """Every value under `node` in document order: its YAML path, its key's node (in a mapping), the value."""
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            yield (*loc, k.value), k, v
            yield from _entries(v, (*loc, k.value))
    elif isinstance(node, yaml.SequenceNode):
        for i, v in enumerate(node.value):
            yield (*loc, i), None, v
            yield from _entries(v, (*loc, i))


def _path_of(root: yaml.Node, target: yaml.Node) -> tuple[Any, ...] | None:
    """The YAML path of the mapping holding the key at `target`'s position (found by its mark)."""
    return next((loc[:-1] for loc, key, _ in _entries(root)
                 if key is not None and key.start_mark.index == target.start_mark.index), None)


def _unbuildable(text: str, p: str | Path, exc: ValueError) -> str:
    """`file:path: reason (line N)` for the first scalar whose value cannot be built (PyYAML says no where)."""
    root = yaml.compose(text, Loader=_BASE)
    builder = _LOADER(text)
    for loc, _, node in _entries(root) if root is not None else ():
        if isinstance(node, yaml.ScalarNode):
            try:
                builder.construct_object(node)
            except ValueError as bad:
                return (f"{p}:{path_text(loc)}: {node.value!r} is not a valid {node.tag.rsplit(':', 1)[-1]}: "
                        f"{bad} (line {node.start_mark.line + 1})")
    return f"{p}: invalid YAML: {exc}"


def problem(path: str | Path, node: Where, loc: tuple[Any, ...], reason: str) -> str:
    line = _line(node, loc)
    suffix = f" (line {line})" if line else ""
    return f"{path}:{path_text(loc)}: {reason}{suffix}"


def validate(model: type[M], data: Any, path: str | Path, node: Where,
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
    return load_sourced(model, path, tags)[0]


def load_sourced(model: type[M], path: str | Path, tags: set[str] | None = None) -> tuple[M, YamlSource]:
    """`load`, and the source it read (to name lines of problems found later, as `hub check` does)."""
    data, node, _ = read_yaml(path)
    return validate(model, data, path, node, tags), node
