"""Loading and checking a rule file: schema, then the checks that span rules (ids, references, cycles)."""

from __future__ import annotations

from pathlib import Path

from edge.errors import ConfigError
from edge.rules import correlation, registry
from edge.rules.spec import RuleFile
from gridwatch.core.yamlconf import Where, parse_yaml, problem, read_yaml, validate


def load_rules(path: str | Path) -> RuleFile:
    """Load a rule file or raise ConfigError listing every problem as `file:path: reason`."""
    data, node, _ = read_yaml(path)
    return _checked(data, node, path)


def parse_rules(text: str, name: str = "rules.yaml") -> RuleFile:
    """A rule set given as text (from the hub, or typed in the board), checked as a file would be; problems
    are named `name:path: reason (line n)`."""
    data, node, _ = parse_yaml(text, name)
    return _checked(data, node, name)


def _checked(data: object, node: Where, path: str | Path) -> RuleFile:
    rf = validate(RuleFile, data, path, node, set(registry.KINDS))
    problems = cross_check(rf, path, node)
    if problems:
        raise ConfigError(problems)
    return rf


def cross_check(rf: RuleFile, path: str | Path, node: Where) -> list[str]:
    problems: list[str] = []
    index: dict[str, int] = {}
    for i, r in enumerate(rf.rules):
        if r.id in index:
            problems.append(problem(path, node, ("rules", i, "id"),
                                    f"duplicate rule id {r.id!r} (first at rules[{index[r.id]}])"))
        index.setdefault(r.id, i)
    for i, r in enumerate(rf.rules):
        for j, ref in enumerate(r.suppressed_by):
            if ref not in index:
                problems.append(problem(path, node, ("rules", i, "suppressed_by", j), f"no rule with id {ref!r}"))
            elif ref == r.id:
                problems.append(problem(path, node, ("rules", i, "suppressed_by", j), "a rule cannot suppress itself"))
        if isinstance(r.when, correlation.Config):
            key = "all_of" if r.when.all_of is not None else "any_of"
            for j, ref in enumerate(r.when.refs):
                if ref not in index:
                    problems.append(problem(path, node, ("rules", i, "when", key, j), f"no rule with id {ref!r}"))
    problems += _cycles(rf, path, node, index)
    return problems


def _cycles(rf: RuleFile, path: str | Path, node: Where, index: dict[str, int]) -> list[str]:
    refs = {r.id: list(r.when.refs) for r in rf.rules if isinstance(r.when, correlation.Config)}
    problems = []
    for start in refs:
        stack, seen = list(refs[start]), set()
        while stack:
            cur = stack.pop()
            if cur == start:
                problems.append(problem(path, node, ("rules", index[start], "when"),
                                        f"correlation {start!r} refers back to itself"))
                break
            if cur not in seen:
                seen.add(cur)
                stack.extend(refs.get(cur, []))
    return problems
