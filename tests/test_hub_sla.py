"""Working-time calendars and SLA clocks/lights: pure logic with explicit instants."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from edge.errors import ConfigError
from gridwatch.core.yamlconf import load
from hub.policy.calendar import Calendar
from hub.policy.sla import Pause, SlaFile, limit_seconds, stage_clock, worst

SH = ZoneInfo("Asia/Shanghai")
CAL = Calendar.from_file("configs/calendars/cn-mainland.yaml")


def at(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=SH)


def test_working_days_holidays_and_make_up_days():
    assert CAL.is_workday(at(2026, 11, 23).date())  # a Monday
    assert not CAL.is_workday(at(2026, 11, 22).date())  # a Sunday
    assert not CAL.is_workday(at(2026, 10, 5).date())  # National Day holiday on a Monday
    assert CAL.is_workday(at(2026, 10, 10).date())  # 调休: a Saturday that is a working day
    assert CAL.day_seconds == 7 * 3600


def test_working_seconds_skip_lunch_nights_and_weekends():
    assert CAL.working_seconds(at(2026, 11, 23, 11, 0), at(2026, 11, 23, 14, 0)) == 1.5 * 3600
    assert CAL.working_seconds(at(2026, 11, 27, 17, 0), at(2026, 11, 30, 9, 30)) == 3600  # Fri -> Mon
    assert CAL.working_seconds(at(2026, 11, 23, 14, 0), at(2026, 11, 23, 11, 0)) == 0


def test_add_lands_after_weekends_and_holidays():
    assert CAL.add(at(2026, 11, 27, 17, 0), 3600) == at(2026, 11, 30, 9, 30).astimezone(UTC)
    assert CAL.add(at(2026, 9, 30, 17, 0), 3600) == at(2026, 10, 8, 9, 30).astimezone(UTC)
    # the make-up Saturday counts: Friday 9 Oct 17:00 + 1h lands on Saturday 10 Oct
    assert CAL.add(at(2026, 10, 9, 17, 0), 3600) == at(2026, 10, 10, 9, 30).astimezone(UTC)
    start = at(2026, 11, 23, 10, 17)
    for secs in (1, 3600, 25200, 100000):
        assert CAL.working_seconds(start, CAL.add(start, secs)) == pytest.approx(secs)


def test_limits_in_days_are_working_days_on_a_working_calendar():
    assert limit_seconds("2d", CAL) == 2 * 7 * 3600
    assert limit_seconds("2d", Calendar.always()) == 2 * 86400
    assert limit_seconds("90m", CAL) == 5400


def test_light_goes_green_yellow_red_with_next_change():
    start = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)
    kw = {"started": start, "limit_s": 600.0, "yellow_at": 0.5, "calendar": Calendar.always()}
    r = stage_clock(now=start + timedelta(seconds=100), **kw)
    assert (r.light, r.elapsed_s, r.next_change) == ("green", 100, start + timedelta(seconds=300))
    r = stage_clock(now=start + timedelta(seconds=300), **kw)
    assert (r.light, r.next_change) == ("yellow", start + timedelta(seconds=600))
    r = stage_clock(now=start + timedelta(seconds=700), **kw)
    assert (r.light, r.remaining_s, r.next_change) == ("red", -100, None)


def test_hold_pauses_the_clock_and_resume_continues():
    start = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)
    kw = {"started": start, "limit_s": 600.0, "yellow_at": 0.5, "calendar": Calendar.always()}
    hold = Pause(start + timedelta(seconds=200))
    r = stage_clock(now=start + timedelta(seconds=5000), pauses=[hold], **kw)
    assert (r.elapsed_s, r.light, r.paused, r.next_change) == (200, "green", True, None)
    resumed = Pause(hold.start, start + timedelta(seconds=5000))
    r = stage_clock(now=start + timedelta(seconds=5100), pauses=[resumed], **kw)
    assert (r.elapsed_s, r.light) == (300, "yellow")


def test_finished_stage_is_frozen():
    start = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)
    r = stage_clock(started=start, limit_s=600.0, yellow_at=0.5, calendar=Calendar.always(),
                    now=start + timedelta(days=3), stopped=start + timedelta(seconds=100))
    assert (r.elapsed_s, r.light, r.next_change) == (100, "green", None)


def test_working_calendar_clock_stops_overnight():
    start = at(2026, 11, 23, 17, 0)
    kw = {"started": start, "limit_s": 3600.0, "yellow_at": 0.5, "calendar": CAL}
    r = stage_clock(now=at(2026, 11, 24, 8, 0), **kw)
    assert (r.elapsed_s, r.light, r.next_change) == (1800, "yellow", at(2026, 11, 24, 9, 30).astimezone(UTC))


def test_policy_matching_and_shipped_file():
    sla = load(SlaFile, "configs/sla.yaml")
    assert sla.policy_for("gas_leak", "critical").id == "life-safety"
    assert sla.policy_for("gas_leak", "minor").id == "default"
    assert sla.policy_for("flood", "major").id == "flood-intrusion"
    assert worst(["green", "red", "yellow"]) == "red"


def test_bad_sla_file_names_path(tmp_path):
    f = tmp_path / "sla.yaml"
    f.write_text("policies:\n  - id: a\n    limits: {accept: soon, resolve: 1h, feedback: 1d}\n    yellow_at: 2\n")
    with pytest.raises(ConfigError) as exc:
        load(SlaFile, f)
    text = str(exc.value)
    assert f"{f}:policies[0].limits.accept: expected a duration" in text
    assert f"{f}:policies[0].yellow_at: Input should be less than 1" in text


def test_friday_evening_case_turns_red_next_working_day_not_friday_night():
    start = at(2026, 11, 27, 17, 0)  # a Friday
    kw = {"started": start, "limit_s": 2 * 3600.0, "yellow_at": 0.5, "calendar": CAL}
    assert stage_clock(now=at(2026, 11, 27, 23, 0), **kw).light == "green"  # 30 working minutes so far
    r = stage_clock(now=at(2026, 11, 28, 12, 0), **kw)  # Saturday: no working time
    assert (r.light, r.elapsed_s) == ("green", 1800)
    assert r.next_change == at(2026, 11, 30, 9, 30).astimezone(UTC)  # yellow on Monday at 9:30
    assert stage_clock(now=at(2026, 11, 30, 10, 29), **kw).light == "yellow"
    assert stage_clock(now=at(2026, 11, 30, 10, 30), **kw).light == "red"


def test_make_up_saturday_counts_and_a_holiday_does_not():
    kw = {"limit_s": 2 * 3600.0, "yellow_at": 0.5, "calendar": CAL}
    # Friday 9 Oct 17:00: the make-up Saturday 10 Oct is a working day, so red on Saturday at 10:30
    assert stage_clock(started=at(2026, 10, 9, 17, 0), now=at(2026, 10, 10, 10, 30), **kw).light == "red"
    # Wednesday 30 Sep 17:00: 1-7 Oct are holidays, so still green on 5 Oct and red only on 8 Oct 10:30
    assert stage_clock(started=at(2026, 9, 30, 17, 0), now=at(2026, 10, 5, 12, 0), **kw).light == "green"
    assert stage_clock(started=at(2026, 9, 30, 17, 0), now=at(2026, 10, 8, 10, 30), **kw).light == "red"
