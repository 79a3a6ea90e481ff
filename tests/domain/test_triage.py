"""Triage (issue 22): drinking against the goal, the caseload's risk, time left before escalation."""

from datetime import UTC, datetime, timedelta

import pytest

from companion.domain.safety import Tier
from companion.domain.triage import days_against_goal, drinking_tier, duration, escalates_in, risk

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
SLA = timedelta(hours=2)


@pytest.mark.parametrize(("goal", "drinking", "heavy", "against", "tier"), [
    ("abstain",  0, 0, 0, None),
    ("abstain",  1, 0, 1, Tier.INFO),          # a slip
    ("abstain",  6, 6, 6, Tier.WARNING),       # issue 22: six heavy days against abstinence is not "none"
    ("abstain",  4, 0, 4, Tier.WARNING),
    ("moderate", 12, 0, 0, None),              # drinking within a moderation goal
    ("moderate", 12, 1, 1, Tier.INFO),
    ("moderate", 12, 4, 4, Tier.WARNING),
])  # fmt: skip
def test_drinking_against_the_goal(goal, drinking, heavy, against, tier):
    assert days_against_goal(goal, drinking_days=drinking, heavy_days=heavy) == against
    assert drinking_tier(goal, drinking_days=drinking, heavy_days=heavy) == tier


def test_risk_is_the_higher_of_flags_and_drinking():
    assert risk(None, None) == "none"
    assert risk(None, Tier.WARNING) == "warning"
    assert risk(int(Tier.URGENT), Tier.WARNING) == "urgent"
    assert risk(int(Tier.INFO), Tier.WARNING) == "warning"
    assert risk(int(Tier.WARNING), None) == "warning"


@pytest.mark.parametrize(("tier", "status", "age", "escalated", "left"), [
    (3, "open", timedelta(minutes=30), False, timedelta(minutes=90)),
    (3, "open", timedelta(hours=3), False, -timedelta(hours=1)),   # overdue, not yet escalated
    (3, "open", timedelta(hours=3), True, None),                   # escalated already
    (3, "acknowledged", timedelta(minutes=5), False, None),
    (3, "resolved", timedelta(minutes=5), False, None),
    (3, "cleared", timedelta(minutes=5), False, None),             # any status but open never escalates
    (2, "open", timedelta(minutes=5), False, None),
])  # fmt: skip
def test_time_left_before_escalation(tier, status, age, escalated, left):
    created = NOW - age
    assert (
        escalates_in(
            tier=tier,
            status=status,
            created_at=created,
            escalated_at=NOW if escalated else None,
            sla=SLA,
            now=NOW,
        )
        == left
    )


@pytest.mark.parametrize(("span", "text"), [
    (timedelta(seconds=59), "0 min"),
    (timedelta(minutes=45), "45 min"),
    (timedelta(hours=3, minutes=5), "3 h 05 min"),
    (timedelta(days=2, hours=4, minutes=59), "2 d 4 h"),
    (-timedelta(hours=1), "1 h 00 min"),
])  # fmt: skip
def test_duration(span, text):
    assert duration(span) == text
