"""The case life cycle's transition table, walked pair by pair: every (state, action) against an expected
matrix written out here, so a change to the table shows up as a change to this test."""

from __future__ import annotations

import itertools

import pytest

from hub.policy.lifecycle import ACTIONS, STATUSES, Refusal, clock_stage, requirement, transition

R = None  # refused
EXPECTED = {  # state -> action -> new state (None: refused); close: no callback in the policy
    "reported": {"dispatch": "open", "accept": R, "resolve": R, "close": R, "reject": R, "callback": R,
                 "hold": "on_hold", "resume": R, "transfer": "reported", "comment": "reported"},
    "open":     {"dispatch": "open", "accept": "accepted", "resolve": R, "close": R, "reject": R, "callback": R,
                 "hold": "on_hold", "resume": R, "transfer": "open", "comment": "open"},
    "accepted": {"dispatch": R, "accept": R, "resolve": "resolved", "close": R, "reject": R, "callback": R,
                 "hold": "on_hold", "resume": R, "transfer": "accepted", "comment": "accepted"},
    "resolved": {"dispatch": R, "accept": R, "resolve": R, "close": "closed", "reject": "accepted", "callback": R,
                 "hold": "on_hold", "resume": R, "transfer": "resolved", "comment": "resolved"},
    "verified": {"dispatch": R, "accept": R, "resolve": R, "close": R, "reject": R, "callback": "closed",
                 "hold": "on_hold", "resume": R, "transfer": "verified", "comment": "verified"},
    "on_hold":  {"dispatch": R, "accept": R, "resolve": R, "close": R, "reject": R, "callback": R, "hold": R,
                 "resume": "accepted", "transfer": "on_hold", "comment": "on_hold"},  # held from accepted
    "closed":   {"dispatch": R, "accept": R, "resolve": R, "close": R, "reject": R, "callback": R, "hold": R,
                 "resume": R, "transfer": R, "comment": "closed"},
}


@pytest.mark.parametrize(("status", "action"), list(itertools.product(STATUSES, ACTIONS)))
def test_every_state_and_action(status, action):
    got = transition(status, action, held_from="accepted" if status == "on_hold" else None)
    want = EXPECTED[status][action]
    if want is None:
        assert isinstance(got, Refusal)
        assert got.reason.startswith(f"cannot {action} a case that is {status}") and "allowed from" in got.reason
    else:
        assert got == want


def test_the_matrix_covers_the_whole_table():
    assert set(EXPECTED) == set(STATUSES)
    assert all(set(row) == set(ACTIONS) for row in EXPECTED.values())


@pytest.mark.parametrize("held_from", ["open", "accepted", "resolved"])
def test_resume_returns_to_the_state_held_from_and_keeps_its_stage(held_from):
    assert transition("on_hold", "resume", held_from) == held_from
    assert clock_stage("on_hold", held_from) == clock_stage(held_from, None)


def test_resume_without_a_recorded_state_reopens():
    assert transition("on_hold", "resume", None) == "open"


def test_requirements_name_what_is_missing():
    assert requirement("resolve", note=None, unit=None) == Refusal("resolve needs a note saying what was done",
                                                                   "needs_note", {"action": "resolve"})
    assert requirement("hold", note="", unit=None) == Refusal("hold needs a reason", "needs_note", {"action": "hold"})
    assert requirement("comment", note=None, unit=None) == Refusal("comment needs text", "needs_note",
                                                                   {"action": "comment"})
    assert isinstance(requirement("transfer", note="x", unit=None), Refusal)
    assert requirement("transfer", note=None, unit="grid-02") is None
    assert requirement("accept", note=None, unit=None) is None
    assert requirement("resolve", note="valve closed", unit=None) is None


def test_clock_stages():
    assert [clock_stage(s, None) for s in ("open", "accepted", "resolved", "closed")] == [
        "accept", "resolve", "feedback", None]


def test_verification_leads_to_the_callback_when_the_policy_asks_for_one():
    assert transition("resolved", "close", callback=True) == "verified"
    assert transition("resolved", "close", callback=False) == "closed"
    assert clock_stage("verified", None) == "callback"
    assert clock_stage("reported", None) == "dispatch"


@pytest.mark.parametrize(("rating", "reopen", "want"), [
    ("satisfied", True, "closed"), ("basically", True, "closed"), ("unsatisfied", True, "accepted"),
    ("unsatisfied", False, "closed")])
def test_a_callback_answered_unsatisfied_reopens_when_the_policy_says_so(rating, reopen, want):
    assert transition("verified", "callback", rating=rating, reopen_unsatisfied=reopen) == want


def test_a_callback_needs_a_known_rating_and_a_reject_needs_a_note():
    assert requirement("callback", note=None, unit=None, rating=None).code == "needs_rating"
    assert requirement("callback", note=None, unit=None, rating="great").code == "needs_rating"
    assert requirement("callback", note=None, unit=None, rating="basically") is None
    assert requirement("reject", note="", unit=None).code == "needs_note"
    assert requirement("dispatch", note=None, unit=None).code == "needs_unit"


def test_every_timeline_action_has_words_on_the_board_in_both_languages():
    """The typed timeline actions (`hub.policy.lifecycle.TimelineAction`: what intake, the scheduler, people and the
    controls write) each read as words on the board: its own `tl_<action>` line in both languages, or the
    built-in action label (`hub.policy.labels`), never the bare code."""
    import re
    from pathlib import Path

    from hub.policy.labels import Labels
    from hub.policy.lifecycle import TIMELINE_ACTIONS

    js = (Path(__file__).resolve().parent.parent / "hub/board/board.js").read_text(encoding="utf-8")
    built_in = Labels().table()["action"]
    bare = []
    for action in TIMELINE_ACTIONS:
        lines = len(re.findall(rf"\btl_{action}\s*:", js))  # the zh-CN and the en dictionary
        named = action in built_in and {"zh-CN", "en"} <= set(built_in[action])
        if lines < 2 and not named:
            bare.append(action)
    assert bare == [], f"timeline actions the board would show as codes: {bare}"
