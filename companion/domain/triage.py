"""Triage on the coach's workbench (issue 22): how a member's drinking stands against their goal, the
risk a caseload row shows, and how long an urgent flag has before it escalates.

A member's risk is the higher of their unresolved flags' tier and their drinking against their goal
over the last 30 local days (ours; DOMAIN.md sets the heavy-day threshold, not this ladder):

* with an abstinence goal every drinking day is against the goal; with a moderation goal a heavy day is;
* WARNING from `WARNING_DAYS` days against the goal, or `WARNING_HEAVY_DAYS` heavy days whatever the goal
  (about one a week: a pattern, not a slip);
* INFO from one day against the goal;
* otherwise no risk from drinking.

Pure: counts in, values out.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from companion.domain.safety import Tier

ABSTAIN = "abstain"
#: Days against the goal in the last 30 from which drinking alone is a warning.
WARNING_DAYS = 4
#: Heavy days in the last 30 from which drinking alone is a warning, whatever the goal.
WARNING_HEAVY_DAYS = 4


def days_against_goal(goal_type: str, *, drinking_days: int, heavy_days: int) -> int:
    """Days of the window against the member's goal: any drinking day for abstinence, else heavy days."""
    return drinking_days if goal_type == ABSTAIN else heavy_days


def drinking_tier(goal_type: str, *, drinking_days: int, heavy_days: int) -> Tier | None:
    """The tier drinking alone gives over the last 30 days (the ladder in this module's docstring)."""
    against = days_against_goal(goal_type, drinking_days=drinking_days, heavy_days=heavy_days)
    if against >= WARNING_DAYS or heavy_days >= WARNING_HEAVY_DAYS:
        return Tier.WARNING
    if against >= 1:
        return Tier.INFO
    return None


def risk(flag_tier: int | None, drinking: int | None) -> str:
    """The label a caseload row shows: the higher of the flags' tier and drinking's, else "none"."""
    tiers = [Tier(t) for t in (flag_tier, drinking) if t]
    return max(tiers).label if tiers else "none"


def escalates_in(
    *,
    tier: int,
    status: str,
    created_at: datetime,
    escalated_at: datetime | None,
    sla: timedelta,
    now: datetime,
) -> timedelta | None:
    """Time left before an urgent flag still open escalates (zero or less: it is due or overdue), or
    None when it never will (not urgent, acknowledged, closed, or already escalated)."""
    if tier != Tier.URGENT or status != "open" or escalated_at is not None:
        return None
    return created_at + sla - now


def duration(span: timedelta) -> str:
    """A span as a coach reads it at a glance: "45 min", "3 h 05 min", "2 d 4 h"."""
    minutes = int(abs(span).total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {mins:02d} min"
    return f"{mins} min"
