"""JSON paths of feed mappings, compiled once by python-jsonpath (RFC 9535).

A path that names one value by keys and indexes only (`$.a.b`, `$.services[0]`, `$['x y']`) — nearly
every path a gateway mapping uses — is evaluated by walking those keys: the library's general evaluator
costs about 15 µs a call, which at ten metrics a message would halve ingestion. Everything else
(wildcards, filters, slices) goes through `findall`. `{{ value_json.a.b }}` (the Home Assistant
template form) and `{{ value }}` (the whole payload) are accepted as well.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import jsonpath
from jsonpath.selectors import IndexSelector, NameSelector

MISSING: Any = object()
"""What `Path.get` returns when nothing is there."""

_TEMPLATE = re.compile(r"^\{\{\s*(value_json(?P<rest>(\.[A-Za-z_][A-Za-z0-9_]*|\[[^\]]+\])*)|value)\s*\}\}$")


def _walker(keys: tuple[str | int, ...]) -> Callable[[Any], Any]:
    def get(body: Any) -> Any:
        for k in keys:
            if isinstance(k, str):
                if not isinstance(body, dict):
                    return MISSING
                body = body.get(k, MISSING)
                if body is MISSING:
                    return MISSING
            else:
                if not isinstance(body, list) or not -len(body) <= k < len(body):
                    return MISSING
                body = body[k]
        return body
    return get


class Path:
    """One compiled path: `get` gives the single value (or MISSING), `all` every match."""

    __slots__ = ("text", "_query", "_keys", "get")

    def __init__(self, text: str) -> None:
        self.text = text
        expr = text.strip()
        m = _TEMPLATE.match(expr)
        if m:  # Home Assistant's value_template form
            expr = "$" + (m.group("rest") or "") if m.group(1).startswith("value_json") else "$"
        try:
            self._query = jsonpath.compile(expr)
        except jsonpath.JSONPathError as exc:
            first = str(exc).splitlines()[0]
            raise ValueError(f"{text!r} is not a JSON path: {first}") from None
        self._keys: tuple[str | int, ...] | None = self._simple()
        self.get: Callable[[Any], Any] = _walker(self._keys) if self._keys is not None else self._first

    def _simple(self) -> tuple[str | int, ...] | None:
        keys: list[str | int] = []
        for seg in getattr(self._query, "segments", None) or ():
            sels: tuple[object, ...] = tuple(getattr(seg, "selectors", ()))
            if type(seg).__name__ != "JSONPathChildSegment" or len(sels) != 1:
                return None
            sel = sels[0]
            if isinstance(sel, NameSelector):
                keys.append(sel.name)
            elif isinstance(sel, IndexSelector):
                keys.append(sel.index)
            else:
                return None
        return tuple(keys)

    @property
    def root(self) -> bool:
        """True for `$` itself."""
        return self._keys == ()

    def _first(self, body: Any) -> Any:
        found = self.all(body)
        return found[0] if found else MISSING

    def all(self, body: Any) -> list[Any]:
        if self._keys is not None:
            v = self.get(body)
            return [] if v is MISSING else [v]
        if not isinstance(body, dict | list):  # the library would parse a str as a JSON document
            return []
        return list(self._query.findall(body))

    def __repr__(self) -> str:
        return f"Path({self.text!r})"
