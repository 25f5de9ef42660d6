"""Working-time calendars past 2026 (issue 26): the shipped cn-mainland calendar by year, checked against
python-holidays; local calendars on a base; a year removed is said at start, daily, on /metrics, /healthz and
the admin's board; `hub calendar show|import`; the hub reloads the calendars folder."""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import holidays
import pytest
import yaml

from gridwatch.core.errors import ConfigError
from gridwatch.core.yamlconf import load
from hub.cases.scheduler import Scheduler
from hub.config import load_hub_config
from hub.files.calendar_files import header_of, load_calendars, render, year_from_package
from hub.policy.calendar import CalendarFile
from hub.policy.calendar_watch import notices
from hub.policy.sla import SlaFile, limit_seconds
from tests.hubkit import ROOT, api_client

SH = ZoneInfo("Asia/Shanghai")
SHIPPED = ROOT / "configs/calendars/cn-mainland.yaml"


OPS_KEY = {"Authorization": "Bearer key-ops"}


def shipped_policy_calendar():
    """The calendar of the shipped default SLA policy, loaded as the hub loads it from configs/hub.yaml."""
    cfg = load_hub_config(ROOT / "configs/hub.yaml")
    sla = load(SlaFile, cfg.sla)
    default = next(p for p in sla.policies if p.id == "default")
    return load_calendars(cfg.calendars)[default.calendar]


def test_one_working_day_from_2027_02_04_falls_due_after_the_spring_festival_break():
    cal = shipped_policy_calendar()
    due = cal.add(datetime(2027, 2, 4, 10, 0, tzinfo=SH), limit_seconds("1d", cal)).astimezone(SH)
    # the break (除夕 Fri 5 Feb .. 10 Feb with the weekend moved on) is not counted: on the old main's 2026-only
    # calendar this fell due on Friday 2027-02-05 10:00, inside it
    assert due == datetime(2027, 2, 11, 10, 0, tzinfo=SH), due
    assert not any(cal.is_workday(date(2027, 2, d)) for d in range(5, 11))


@pytest.mark.parametrize("year", [2026, 2027])
def test_every_day_of_the_shipped_years_agrees_with_python_holidays(year):
    cal = load_calendars(SHIPPED.parent)["cn-mainland"]
    cn = holidays.country_holidays("CN", years=year)
    day, wrong = date(year, 1, 1), []
    while day.year == year:
        if cal.is_workday(day) != cn.is_working_day(day):
            wrong.append(day)
        day += timedelta(days=1)
    assert not wrong, wrong
    assert (year in cal.provisional) == (year == 2027)  # 2027's notice is not in the package: statutory days


# 国务院办公厅关于2026年部分节假日安排的通知 (4 November 2025, 新华社; e.g. https://politics.gmw.cn/2025-11/04/
# content_38391083.htm), written out by hand: (first, last) day off of each festival, and the weekend days worked.
NOTICE_2026_OFF = [((1, 1), (1, 3)), ((2, 15), (2, 23)), ((4, 4), (4, 6)), ((5, 1), (5, 5)), ((6, 19), (6, 21)),
                   ((9, 25), (9, 27)), ((10, 1), (10, 7))]
NOTICE_2026_WORKED = [(1, 4), (2, 14), (2, 28), (5, 9), (9, 20), (10, 10)]


def test_the_shipped_2026_follows_the_state_councils_notice_as_written():
    """Not python-holidays (which made the file): the notice's own dates. Every festival day off, every
    weekend day worked, and the days just outside each break are what the week makes them."""
    cal = load_calendars(SHIPPED.parent)["cn-mainland"]
    for (m1, d1), (m2, d2) in NOTICE_2026_OFF:
        first, last = date(2026, m1, d1), date(2026, m2, d2)
        day = first
        while day <= last:
            assert not cal.is_workday(day), day
            day += timedelta(days=1)
        for edge in (first - timedelta(days=1), last + timedelta(days=1)):
            assert cal.is_workday(edge) == (edge.weekday() < 5 or (edge.month, edge.day) in NOTICE_2026_WORKED), edge
    for m, d in NOTICE_2026_WORKED:
        assert date(2026, m, d).weekday() >= 5 and cal.is_workday(date(2026, m, d)), (m, d)


def test_a_local_calendar_adds_its_own_days_to_its_base(tmp_path):
    shutil.copy(SHIPPED, tmp_path)
    (tmp_path / "district.yaml").write_text("name: district-a\nbase: cn-mainland\n"
                                            "holidays: [2027-03-15]  # the district's own day off\n"
                                            "workdays: [2027-02-10]\n", encoding="utf-8")
    cals = load_calendars(tmp_path)
    local, base = cals["district-a"], cals["cn-mainland"]
    assert base.is_workday(date(2027, 3, 15)) and not local.is_workday(date(2027, 3, 15))
    assert not base.is_workday(date(2027, 2, 10)) and local.is_workday(date(2027, 2, 10))
    assert local.years == {2026, 2027} and local.coverage(date(2027, 6, 1)).until == date(2027, 12, 31)


@pytest.mark.parametrize(("text", "reason"), [
    ("name: x\nbase: nowhere\n", "x.yaml:base: no calendar named 'nowhere'"),
    ("name: x\nyears:\n  2027:\n    source: s\n    holidays: [2028-03-01]\n", "x.yaml:years: 2027: "
                                                                            "2028-03-01 is not in 2027"),
    ("name: x\nyears:\n  2027:\n    holidays: [2027-03-01]\n", "x.yaml:years[2027].source: Field required"),
    ("name: cn-mainland\n", "x.yaml:name: calendar 'cn-mainland' is also defined in"),
])
def test_bad_calendar_files_are_refused_with_file_path_and_line(tmp_path, text, reason):
    shutil.copy(SHIPPED, tmp_path)
    (tmp_path / "x.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        load_calendars(tmp_path)
    assert any(reason in p and "(line " in p for p in e.value.problems), e.value.problems


def _config_without(tmp_path: Path, year: int) -> Path:
    """configs/ copied, with `year` removed from the cn-mainland calendar."""
    conf = tmp_path / "configs"
    shutil.copytree(ROOT / "configs", conf, ignore=shutil.ignore_patterns("*.sqlite*"))
    path = conf / "calendars/cn-mainland.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    del data["years"][year]
    path.write_text(render(CalendarFile.model_validate(data), header_of(path)), encoding="utf-8")
    return conf


def test_a_year_removed_is_a_warning_at_start_and_daily_a_metric_a_healthz_notice_and_a_board_notice(
        tmp_path, caplog):
    conf = _config_without(tmp_path, 2027)
    keys = {"admin": ("admin", None), "ops": ("operator", "district-a")}
    start = datetime(2026, 12, 3, 2, 0, tzinfo=UTC)  # 29 days of data left
    caplog.set_level(logging.INFO)
    with api_client(f"sqlite:///{tmp_path / 'hub.sqlite'}", keys, start, calendars=str(conf / "calendars")) as c:
        said = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert any("calendar 'cn-mainland'" in m and "data up to 2026-12-31, 29 days from now" in m
                   for m in said), said
        metrics = c.get("/metrics", headers=OPS_KEY).text
        assert 'gridwatch_hub_calendar_days_left{calendar="cn-mainland"} 29.0' in metrics
        body = c.get("/healthz").json()
        assert body["status"] == "ok" and body["notices"][0]["calendar"] == "cn-mainland"
        assert body["notices"][0]["days_left"] == 29 and "仅剩 29 天" in body["notices"][0]["text"]
        admin = c.get("/api/v1/me", headers={"Authorization": "Bearer key-admin"}).json()
        assert any("工作日历 cn-mainland 的数据截至 2026-12-31" in n for n in admin["notices"]), admin
        assert c.get("/api/v1/me", headers={"Authorization": "Bearer key-ops"}).json()["notices"] == []
        # the next day, and into the year with no data: said again, daily
        scheduler: Scheduler = c.app.state.scheduler
        caplog.clear()
        c.clock["now"] = datetime(2027, 1, 2, 2, 0, tzinfo=UTC)
        scheduler.run_due()
        said = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert any("has no data for 2027: every Monday-Friday counts as a working day" in m for m in said), said
        caplog.clear()
        scheduler.run_due(c.clock["now"] + timedelta(seconds=5))
        assert not [r for r in caplog.records if "calendar" in r.getMessage()]  # once a day, not every round
        metrics = c.get("/metrics", headers=OPS_KEY).text
        assert 'gridwatch_hub_calendar_days_left{calendar="cn-mainland"} 0.0' in metrics
        assert "缺少 2027 年数据" in c.get("/healthz").json()["notices"][0]["text"]


def test_the_shipped_calendars_give_no_warning_this_year_but_name_the_provisional_year():
    cfg = load_hub_config(ROOT / "configs/hub.yaml")
    said = notices(load_calendars(cfg.calendars), load(SlaFile, cfg.sla), date(2026, 12, 3))
    assert [n.level for n in said] == ["info"] and "2027 年为法定节假日推定数据" in said[0].text
    assert notices(load_calendars(cfg.calendars), load(SlaFile, cfg.sla), date(2026, 6, 1)) == []


def test_a_policy_naming_a_missing_calendar_is_a_notice_not_a_silent_24x7():
    sla = SlaFile.model_validate({"policies": [{"id": "default", "calendar": "gone",
                                                "limits": {"accept": "1h", "resolve": "1d", "feedback": "1d"}}]})
    said = notices({}, sla, date(2026, 12, 3))
    assert said[0].level == "warning" and "run 24x7" in said[0].detail and "不存在" in said[0].text


def gw(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gridwatch", *args], capture_output=True, text=True, cwd=cwd)


def test_calendar_import_from_the_package_and_from_a_notice_file_and_show(tmp_path):
    conf = _config_without(tmp_path, 2027)
    path = conf / "calendars/cn-mainland.yaml"
    r = gw("hub", "calendar", "import", str(path), "--year", "2027", "--from-package")
    assert r.returncode == 0, r.stderr
    assert "2027 imported from statutory days" in r.stdout and "(provisional: statutory days only)" in r.stdout
    assert "2027 days off (19): 2027-01-01, 2027-02-05..2027-02-10" in r.stdout
    assert load_calendars(path.parent)["cn-mainland"].holidays >= {date(2027, 2, 5), date(2027, 10, 5)}
    assert path.read_text(encoding="utf-8").startswith("# 中国大陆工作日历")  # the header comment is kept
    # the notice typed in replaces the provisional year: its 调休 counts, and the year is no longer provisional
    notice = tmp_path / "notice.yaml"
    notice.write_text("source: 国务院办公厅关于2027年部分节假日安排的通知 (typed in)\n"
                      "holidays: [2027-02-05..2027-02-13]\nworkdays: [2027-02-14]\n", encoding="utf-8")
    r = gw("hub", "calendar", "import", str(path), "--year", "2027", "--file", str(notice))
    assert r.returncode == 0, r.stderr
    cal = load_calendars(path.parent)["cn-mainland"]
    assert cal.is_workday(date(2027, 2, 14)) and not cal.is_workday(date(2027, 2, 12))
    assert cal.provisional == set() and "provisional" not in gw("hub", "calendar", "show", str(path)).stdout
    # a bad notice is refused with its file, path and line, and the calendar is left as it was
    notice.write_text("source: x\nholidays: [2027-13-01]\n", encoding="utf-8")
    before = path.read_text(encoding="utf-8")
    r = gw("hub", "calendar", "import", str(path), "--year", "2027", "--file", str(notice))
    assert r.returncode == 1 and f"{notice}:holidays[0]:" in r.stderr and "(line 2)" in r.stderr, r.stderr
    assert path.read_text(encoding="utf-8") == before


def test_the_package_import_matches_the_shipped_2026_notice():
    shipped = load_calendars(SHIPPED.parent)["cn-mainland"]
    y = year_from_package(2026)
    assert not y.provisional and "State Council notice for 2026" in y.source
    from hub.policy.calendar import _days
    assert {d for s in y.workdays for d in _days(s)} == {d for d in shipped.workdays if d.year == 2026}


def test_the_hub_reloads_the_calendars_folder_and_keeps_the_last_good_one(tmp_path):
    conf = _config_without(tmp_path, 2027)
    path = conf / "calendars/cn-mainland.yaml"
    with api_client(f"sqlite:///{tmp_path / 'hub.sqlite'}", {"ops": ("operator", "district-a")},
                    datetime(2026, 12, 3, 2, 0, tzinfo=UTC), calendars=str(conf / "calendars")) as c:
        watcher, store = c.app.state.watcher, c.app.state.hub.store
        watcher.stop()  # its own 1 s loop would otherwise take the change before this test's check() does
        assert 2027 not in store.calendars["cn-mainland"].years
        assert gw("hub", "calendar", "import", str(path), "--year", "2027", "--from-package").returncode == 0
        assert watcher.check() == {"calendars": True} and 2027 in store.calendars["cn-mainland"].years
        (conf / "calendars/broken.yaml").write_text("name: broken\nbase: nowhere\n", encoding="utf-8")
        assert watcher.check() == {"calendars": False} and 2027 in store.calendars["cn-mainland"].years
