"""Calendar files on disk: a folder of them loaded with their bases resolved, a file written back in one
readable form, and a year's days imported from a notice typed in or from the `holidays` package.

`gridwatch hub calendar show|import` and the hub's start use these; the arithmetic is `hub.policy.calendar`.
"""

from __future__ import annotations

from datetime import date
from importlib.metadata import version
from pathlib import Path

import yaml

from gridwatch.core.errors import ConfigError
from gridwatch.core.yamlconf import load, load_sourced, problem
from hub.policy.calendar import Calendar, CalendarFile, CalendarYear, ranges

PACKAGE_SOURCE = ("State Council notice for {year} as recorded in python-holidays {v} (holidays.countries.china, "
                  "whose docstring cites the notice)")
STATUTORY_SOURCE = ("statutory days of 全国年节及纪念日放假办法 (2024 revision, 国务院令第795号) for {year}, with "
                    "weekend days moved to the next workday, computed by python-holidays {v}; the State Council's "
                    "notice for {year} (its 调休) was not in that package: import it when it is")


def load_calendars(folder: Path) -> dict[str, Calendar]:
    """Every `*.yaml` in the folder by name, each built on its `base`. A name defined twice, a base that is
    not there and a loop of bases are refused with the file, path and line."""
    specs: dict[str, tuple[Path, CalendarFile]] = {}
    problems: list[str] = []
    for f in sorted(folder.glob("*.yaml")) if folder.exists() else []:
        spec, src = load_sourced(CalendarFile, f)
        if spec.name in specs:
            problems.append(problem(f, src, ("name",), f"calendar {spec.name!r} is also defined in "
                                                       f"{specs[spec.name][0]}"))
            continue
        specs[spec.name] = (f, spec)
    built: dict[str, Calendar] = {}

    def build(name: str, chain: tuple[str, ...]) -> Calendar | None:
        if name in built:
            return built[name]
        f, spec = specs[name]
        base = None
        if spec.base is not None:
            if spec.base not in specs:
                problems.append(_base_problem(f, f"no calendar named {spec.base!r} in {folder} (known: "
                                                 f"{', '.join(sorted(specs))})"))
                return None
            if spec.base in chain:
                problems.append(_base_problem(f, f"bases loop: {' -> '.join((*chain, name, spec.base))}"))
                return None
            base = build(spec.base, (*chain, name))
            if base is None:
                return None
        built[name] = cal = Calendar(spec, base)
        cal.path = f
        return cal

    for name in specs:
        build(name, ())
    if problems:
        raise ConfigError(problems)
    return built


def _base_problem(f: Path, reason: str) -> str:
    _, src = load_sourced(CalendarFile, f)
    return problem(f, src, ("base",), reason)


def render(spec: CalendarFile, header: str = "") -> str:
    """The file's text: the header comment, then name, tz, hours, base and years in a fixed order."""
    head = "".join(f"# {line}\n" if line else "#\n" for line in header.splitlines())
    body: dict[str, object] = {"name": spec.name, "tz": spec.tz, "hours": [list(h) for h in spec.hours]}
    if spec.base is not None:
        body["base"] = spec.base
    if spec.years:
        body["years"] = {y: spec.years[y].model_dump(exclude_defaults=True) for y in sorted(spec.years)}
    for key in ("holidays", "workdays"):
        if getattr(spec, key):
            body[key] = getattr(spec, key)
    return head + yaml.safe_dump(body, allow_unicode=True, sort_keys=False, width=100, default_flow_style=None)


def header_of(path: Path) -> str:
    """The comment lines at the top of a file (kept when `import` writes it again)."""
    lines = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        lines.append(line[2:] if line.startswith("# ") else line[1:])
    return "\n".join(lines)


def year_from_package(year: int) -> CalendarYear:
    """A year's days off and make-up workdays as python-holidays has them for mainland China: the State
    Council's notice when the package has it, else the statutory days (marked provisional)."""
    import holidays

    cn = holidays.country_holidays("CN", years=year)
    off = [d for d in cn if d.year == year]
    work = sorted(d for d in cn.weekend_workdays if d.year == year)
    announced = year in getattr(type(cn), "special_public_holidays", {}) or bool(work)
    v = version("holidays")
    return CalendarYear(source=(PACKAGE_SOURCE if announced else STATUTORY_SOURCE).format(year=year, v=v),
                        provisional=not announced, holidays=ranges(off), workdays=ranges(work))


def import_year(path: Path, year: int, days: CalendarYear) -> CalendarFile:
    """Put `days` in as the file's `year` (replacing what it had) and write the file; the result is checked
    as a calendar before anything is written."""
    spec = load(CalendarFile, path)
    if spec.base is not None:
        raise ConfigError([f"{path}:base: calendar {spec.name!r} takes its years from {spec.base!r}: import the "
                           f"year there"])
    if not spec.years and (spec.holidays or spec.workdays):
        raise ConfigError([f"{path}: a one-year calendar file (no `years:`); start a calendar with `years:` "
                           f"(see the shipped cn-mainland.yaml) and name it in the SLA policies"])
    years = dict(spec.years)
    years[year] = days
    new = CalendarFile.model_validate(spec.model_dump() | {"years": {y: v.model_dump() for y, v in years.items()}})
    Calendar(new)
    path.write_text(render(new, header_of(path)), encoding="utf-8")
    return new


def show(cal: Calendar, year: int, today: date) -> list[str]:
    """The lines `calendar show` prints: coverage, then the year's days off and make-up workdays."""
    cov = cal.coverage(today)
    lines = [f"calendar {cal.name}: years {', '.join(map(str, sorted(cal.years))) or 'none'}"
             + (f" (provisional: {', '.join(map(str, sorted(cal.provisional)))})" if cal.provisional else "")]
    lines.append(f"data from {today} up to {cov.until} ({cov.days_left} days)" if cov.until is not None
                 else f"no data for {today.year}: Monday-Friday counted as working days")
    spec = cal.spec
    source = spec.years[year].source if spec is not None and year in spec.years else None
    if source:
        lines.append(f"{year} source: {source}")
    off = sorted(d for d in cal.holidays if d.year == year)
    work = sorted(d for d in cal.workdays if d.year == year)
    lines.append(f"{year} days off ({len(off)}): {', '.join(ranges(off)) or 'none'}")
    lines.append(f"{year} make-up workdays ({len(work)}): {', '.join(ranges(work)) or 'none'}")
    return lines
