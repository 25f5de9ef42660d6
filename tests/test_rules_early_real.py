"""Early warning on real sensor series shipped by a package (river 0.26, a test dependency):

- `river/datasets/water-flow.csv`: hourly water flow through a pipeline branch of an Italian water network,
  March to May 2022, donated by Tecnojest s.r.l. Its documentation (river.datasets.WaterFlow) names four
  anomalous segments: three "low value moments" (water losses or maintenance) and a small peak (a pumping
  operation into the main pipeline) after the first two. In the data they are on 2022-03-24/25, 03-29,
  04-27/28 (the lows) and 04-03 (the peak).
- `river/drift/datasets/occupancy.csv`: the UCI room-occupancy sensors (Candanedo & Feldheim 2016; temperature,
  humidity, light, CO₂) of an office, one reading every 16 minutes, 2015-02-04 to 02-10, with the change points
  five annotators marked (river.drift.datasets.Occupancy, from the Turing change point benchmark).

Each test says what the rule did on the series; the deviation rule is judged against the documented changes,
the forecast rule against the threshold rule on the same line.
"""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from importlib import resources

import river  # noqa: F401  (the real series ship in river's package; a test dependency: missing fails, not skips)

from edge.message import Event
from tests.rulekit import Driver, engine


def series(package: str, name: str) -> list[list[str]]:
    with (resources.files(package) / name).open(encoding="utf-8") as f:
        return list(csv.reader(f))[1:]


def feed(d: Driver, rows: list[tuple[float, float]], metric: str, device: str = "dev-1") -> list[tuple[int, object]]:
    """Every reading through the engine; (row index, alert) of what it raised."""
    out = []
    for i, (ts, v) in enumerate(rows):
        for a in d.send(Event(kind="sensor", grid="grid-01", device=device, ts=ts, received_at=ts,
                              metrics={metric: v})):
            out.append((i, a))
    return out


FLOW_RULE = """
rules:
  - id: flow-unusual
    match: {metric: flow_lps}
    when: {deviation: 4, span: 72, warmup: 24h, min_samples: 24, min_spread: 0.5}
    severity: major
    category: other
"""
DOCUMENTED = {"2022-03-24": "low", "2022-03-25": "low", "2022-03-29": "low", "2022-04-03": "peak",
              "2022-04-27": "low", "2022-04-28": "low"}


def test_the_deviation_rule_finds_the_documented_anomalies_of_a_real_water_main(tmp_path):
    """About three days of normal (span 72 hourly readings), 4 spreads, at least 0.5 l/s: every documented
    anomalous segment raises an alert, and nothing fires on the 50-odd ordinary days between them (including
    the gaps in the data, 04-24..26 and 05-10..13)."""
    rows = [(datetime.fromisoformat(t).timestamp(), float(v))
            for t, v in series("river.datasets", "water-flow.csv")]
    assert len(rows) == 1268
    d = Driver(engine(tmp_path, FLOW_RULE))
    raised = feed(d, rows, "flow_lps")
    days = {datetime.fromtimestamp(rows[i][0], UTC).strftime("%Y-%m-%d") for i, a in raised if a.state == "firing"}
    assert days <= DOCUMENTED.keys(), days - DOCUMENTED.keys()
    for segment in (("2022-03-24", "2022-03-25"), ("2022-03-29",), ("2022-04-03",), ("2022-04-27", "2022-04-28")):
        assert days & set(segment), segment
    first_low = next(a for i, a in raised if a.state == "firing")
    assert float(first_low.labels["z"]) < -4 and "偏离其常态" in first_low.message
    peak = next(a for i, a in raised if a.state == "firing" and a.labels["z"][0] != "-"
                and datetime.fromtimestamp(a.observed_at.timestamp(), UTC).strftime("%m-%d") == "04-03")
    assert float(peak.value or 0) > 109  # the pumping operation's 109.7 l/s
    print(f"\nwater flow: {sum(a.state == 'firing' for _, a in raised)} episodes on {sorted(days)}")


def occupancy() -> list[tuple[float, list[float]]]:
    return [(datetime.fromisoformat(r[0]).replace(tzinfo=UTC).timestamp(), [float(x) for x in r[1:]])
            for r in series("river.drift.datasets", "occupancy.csv")]


CO2_RULE = """
rules:
  - id: co2-unusual
    match: {metric: co2_ppm}
    when: {deviation: 3, span: 18, warmup: 24h, min_samples: 12, min_spread: 10}
    category: environment
"""


def test_the_deviation_rule_follows_the_office_s_occupancy_and_is_quiet_over_the_weekend(tmp_path):
    """CO₂ of the office: the annotators' change points where people come in are rows 143 (Fri 02-06), 416
    (Mon 02-09) and 506 (Tue 02-10); they leave at 181 and 451. The first morning (row 53) is inside the 24 h
    warm-up. The rule fires within two readings (32 min) of each arrival, resolves after people leave (CO₂ decays
    for hours after they go), and raises nothing from Friday night to Monday morning."""
    rows = occupancy()
    d = Driver(engine(tmp_path, CO2_RULE))
    raised = feed(d, [(ts, vals[3]) for ts, vals in rows], "co2_ppm")
    fired = [i for i, a in raised if a.state == "firing"]
    resolved = [i for i, a in raised if a.state == "resolved"]
    assert len(fired) == 3, raised
    for got, documented in zip(fired, (143, 416, 506), strict=True):
        assert 0 <= got - documented <= 2, (got, documented)
    assert resolved[0] >= 181 and resolved[1] >= 451
    assert not [i for i, _ in raised if 190 <= i < 410]  # the weekend: the room's own normal, nothing raised
    print(f"\noccupancy CO2: fired at rows {fired} (documented 143, 416, 506), resolved at {resolved}")


CO2_FORECAST = """
rules:
  - id: co2-forecast
    match: {metric: co2_ppm}
    when: {forecast_above: 1000, horizon: 60m, window: 64m, min_samples: 3, max_gap: 40m, clear_horizon: 90m}
    category: environment
  - id: co2-high
    match: {metric: co2_ppm}
    when: {above: 1000}
    category: environment
"""


def test_the_forecast_warns_before_the_office_crosses_1000_ppm(tmp_path):
    """1000 ppm of CO₂ (a common indoor air-quality line) is first crossed on the mornings of 02-05 and 02-09:
    both times the forecast warned at least 30 minutes earlier. What it did not do, recorded rather than hidden:
    the afternoon return over the line on 02-05 (from 795 ppm, within two readings) came too fast for a
    64-minute fit, and the threshold rule caught it alone; on 02-06 the room rose to 947 ppm and turned back,
    and the forecast warned three times of a crossing that did not come, each time with the room peaking within
    15 % of the line (865-947 ppm)."""
    rows = occupancy()
    d = Driver(engine(tmp_path, CO2_FORECAST))
    raised = feed(d, [(ts, vals[3]) for ts, vals in rows], "co2_ppm")
    crossings = [a for _, a in raised if a.rule_id == "co2-high" and a.state == "firing"]
    warnings = [(i, a) for i, a in raised if a.rule_id == "co2-forecast" and a.state == "firing"]
    mornings = {}
    for c in crossings:
        mornings.setdefault(c.observed_at.strftime("%m-%d"), c)
    assert sorted(mornings) == ["02-05", "02-09"]

    def warned(c):
        return [a for _, a in warnings if a.observed_at <= c.observed_at
                and (c.observed_at - a.observed_at).total_seconds() <= 3 * 3600]

    leads = []
    for c in mornings.values():
        assert warned(c), c.observed_at
        leads.append((c.observed_at - warned(c)[-1].observed_at).total_seconds() / 60)
    assert min(leads) >= 30, leads
    alone = [c.observed_at.strftime("%m-%d %H:%M") for c in crossings if c not in mornings.values()]
    false = [(i, a) for i, a in warnings if not any(
        0 <= (c.observed_at - a.observed_at).total_seconds() <= 3 * 3600 for c in crossings)]
    assert len(false) == 3, [a.observed_at for _, a in false]  # the docstring's three, no more: a looser fit
    # or a shorter horizon that warned of every wobble would fail here
    assert alone == ["02-05 14:55"], alone
    for i, _ in false:
        assert max(vals[3] for _, vals in rows[i:i + 8]) >= 850  # it came within 15 % of the line
    print(f"\nCO2 forecast: warned {', '.join(f'{m:.0f}' for m in leads)} min before the morning crossings of "
          f"1000 ppm; re-crossings left to the threshold rule: {alone}; {len(false)} warnings of a rise that "
          f"turned back (rows {[i for i, _ in false]})")
