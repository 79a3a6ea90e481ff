"""`next_check`: when time alone can change what the safety rules find, so the sweep visits a member
only then (issue 5: "the sweep visits only members with something to check").

The property that makes skipping safe: before `next_check(history)`, evaluating the same history at
any later instant finds nothing the rules do not find now (no new finding, no new evidence).
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from companion.domain import localtime
from companion.domain.safety import MemberHistory, evaluate, next_check
from tests.domain.test_safety import MODERATE, NY, TID, Member, histories


def _cited(history: MemberHistory) -> set[tuple[str, str]]:
    """(rule, evidence) pairs of every finding; a finding citing nothing (disengagement) by the day
    absence began, as the flags store it."""
    return {(f.rule, e) for f in evaluate(history) for e in (f.evidence or (f"since:{f.first_seen}",))}


def _past_only(history: MemberHistory) -> MemberHistory:
    """The history without entries dated after today: the API refuses entries from the future."""

    def past(entries):
        return tuple(e for e in entries if e.day <= history.today)

    return dataclasses.replace(
        history,
        doses=past(history.doses),
        side_effects=past(history.side_effects),
        day_logs=past(history.day_logs),
        cravings=past(history.cravings),
        breath=past(history.breath),
    )


def _at(history: MemberHistory, instant: datetime) -> MemberHistory:
    return dataclasses.replace(history, now=instant)


@settings(max_examples=150, deadline=None)
@given(histories(), st.integers(min_value=1, max_value=25 * 24 * 60), st.booleans())
def test_nothing_new_is_found_before_the_next_check(history, minutes, just_before):
    history = _past_only(history)
    now = localtime.to_utc(history.now)
    due = next_check(history)
    assert due is None or due > now
    if just_before and due is not None:
        later = due - timedelta(seconds=1)  # the most any skipped sweep could have missed
    else:
        later = now + timedelta(minutes=minutes)
    if due is not None and later >= due:
        return
    assert _cited(_at(history, later)) <= _cited(history), (due, later)


def test_an_unanswered_baclofen_dose_is_checked_at_its_deadline():
    m = Member()  # 21:00 in New York, doses at 08:00, 14:00 and 20:00
    plan = m.plan("baclofen", *TID)
    m.take(plan, range(1, 30))
    m.take(plan, [0], only="08:00")
    m.take(plan, [0], only="14:00")
    history = m.build()
    # Tonight's 20:00 dose, three hours late at 23:00, then tomorrow's 08:00 at 11:00.
    assert next_check(history) == datetime(2026, 11, 21, 4, tzinfo=UTC)
    m.take(plan, [0], only="20:00")
    assert next_check(m.build()) == datetime(2026, 11, 21, 16, tzinfo=UTC)


def test_disengagement_is_checked_at_the_midnight_it_crosses_then_daily_within_the_lookback():
    m = Member()
    m.drink(1, "0")
    m.last_entry_date = m.today - timedelta(days=1)
    # Last entry yesterday (19 November): five days without one on 24 November, local midnight.
    assert next_check(m.build()) == datetime(2026, 11, 24, 5, tzinfo=UTC)
    quiet = Member()
    quiet.drink(6, "0")
    quiet.last_entry_date = quiet.today - timedelta(days=6)
    assert next_check(quiet.build()) == datetime(2026, 11, 21, 5, tzinfo=UTC)  # the flag's next day
    gone = Member(enrolled=300)
    assert next_check(gone.build()) is None  # quiet for months: nothing left to change


def test_a_steady_member_on_naltrexone_is_next_checked_when_disengagement_could_begin():
    m = Member()
    plan = m.plan("naltrexone", "08:00")
    m.take(plan, range(0, 30))
    for ago in range(30):
        m.drink(ago, "0")
    m.report("nausea", MODERATE, 0, plan)
    history = m.build()
    # Entries today: disengagement is five days off; naltrexone has no withdrawal risk.
    assert next_check(history) == localtime.day_bounds_utc(history.today + timedelta(days=5), NY)[0]


def test_a_craving_baseline_sliding_away_is_checked_at_the_midnight_it_would_fire():
    m = Member()
    m.crave(0, 8)
    m.crave(1, 8)
    m.crave(4, 5)
    m.crave(9, 10)  # keeps the baseline mean at 7.5 today; out of the baseline from tomorrow
    history = m.build()
    assert not [f for f in evaluate(history) if f.rule == "craving_escalation"]
    midnight = datetime(2026, 11, 21, 5, tzinfo=UTC)
    assert next_check(history) == midnight
    assert [f.rule for f in evaluate(_at(history, midnight))] == ["craving_escalation"]
