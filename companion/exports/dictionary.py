"""The insurer report's data dictionary: what each measure and each CSV column means, in words an
analyst can check against the numbers (`GET /insurer/measures`, and inside every JSON export).

The definitions restate companion/domain/outcomes.py (the reference computation the SQL must equal);
the settings they quote are read from there, so the words follow the code. A test checks that every
measure a report publishes, and every CSV column, is defined here.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from companion.domain import outcomes as o
from companion.domain.suppression import MAX_SMALL_CELL

#: How a measure's value is made from its counts (the FHIR Measure's scoring, in our words).
COUNT, SHARE, POOLED, MEAN, CHANGE = "count", "share", "pooled_rate", "mean", "change"

WINDOWS: dict[str, str] = {
    "window": (
        "A member's days in the report: from the later of the period's first day and their enrollment "
        "day to the period's last day (yesterday, for a partial period), in the member's local dates. "
        "For a program-month row, only the part of the window in that program month."
    ),
    "baseline": (
        f"The first {o.BASELINE_DAYS} days of enrollment (enrollment day included), even before the period."
    ),
    "follow_up": (
        f"The last {o.FOLLOW_UP_DAYS} days of the window, never earlier than the day after baseline."
    ),
    "pacs_baseline": (
        "A member's baseline PACS: their first weekly Penn Alcohol Craving Scale whose week (Monday to "
        f"Sunday) ends on or after their enrollment day and starts within the first {o.PACS_BASELINE_DAYS} "
        "days of enrollment (enrollment day included), even before the period."
    ),
    "pacs_follow_up": (
        "A member's follow-up PACS: their latest PACS whose week starts in the window, at least "
        f"{o.PACS_FOLLOW_UP_MIN_DAYS} days after the week of their baseline PACS."
    ),
    "active": f"The last {o.ACTIVE_DAYS} days of the window.",
    "retention": (
        "From enrollment to the period's last day; retention at D days looks for an entry D or more "
        "days after enrollment."
    ),
}


@dataclass(frozen=True, slots=True)
class MeasureDefinition:
    code: str
    name: str
    definition: str
    scoring: str
    unit: str
    ucum: str
    numerator: str | None
    denominator: str
    denominator_unit: str
    windows: tuple[str, ...]
    source: str
    #: Which way is better: `increase`, `decrease`, or None (a count, or no direction).
    improvement: str | None


_LOGS = "drink logs (one per member and local day; a missing day is missing, never zero)"
_ENTRIES = "any entry: a drink log, craving, dose check-in or breath reading"
_US = "US standard drinks (14 g of ethanol) for every member, whatever their country's size"

MEASURES: tuple[MeasureDefinition, ...] = (
    MeasureDefinition(
        "members",
        "Members",
        "Consenting members of the plan enrolled by the period's last day whose window touches the row.",
        COUNT,
        "members",
        "{members}",
        None,
        "Not a ratio: the count itself.",
        "members",
        ("window",),
        "member accounts and their outcome-sharing consent when the report is built",
        None,
    ),
    MeasureDefinition(
        "active_members",
        "Active members",
        "Share of the members with an entry in the last days of their window.",
        SHARE,
        "%",
        "%",
        f"Members with {_ENTRIES} in the active window.",
        "Members.",
        "members",
        ("window", "active"),
        _ENTRIES,
        "increase",
    ),
    MeasureDefinition(
        "engagement",
        "Engagement",
        "Days with any entry as a share of the days enrolled, pooled over the row's members.",
        POOLED,
        "%",
        "%",
        f"Days in the windows with {_ENTRIES}.",
        "Days in the members' windows.",
        "days enrolled",
        ("window",),
        _ENTRIES,
        "increase",
    ),
    *(
        MeasureDefinition(
            f"retention_{days}d",
            f"Retention at {days} days",
            f"Of the members enrolled at least {days} days before the period's last day, the share with "
            f"an entry {days} or more days after enrollment. Not given per program month.",
            SHARE,
            "%",
            "%",
            f"Eligible members with {_ENTRIES} {days}+ days after enrollment, by the period's last day.",
            f"Members enrolled {days}+ days before the period's last day.",
            "members",
            ("retention",),
            _ENTRIES,
            "increase",
        )
        for days in o.RETENTION_DAYS
    ),
    MeasureDefinition(
        "pda",
        "Percent days abstinent (PDA)",
        "Each member's share of logged days with no drink, averaged over the members with a logged day.",
        MEAN,
        "%",
        "%",
        None,
        "Members with a logged day in their window.",
        "members",
        ("window",),
        _LOGS,
        "increase",
    ),
    MeasureDefinition(
        "phdd",
        "Percent heavy drinking days (PHDD)",
        "Each member's share of logged days that were heavy (at least 56 g of ethanol for women and "
        "unspecified, 70 g for men), averaged over the members with a logged day.",
        MEAN,
        "%",
        "%",
        None,
        "Members with a logged day in their window.",
        "members",
        ("window",),
        _LOGS,
        "decrease",
    ),
    MeasureDefinition(
        "psnhdd",
        "Percent subjects with no heavy drinking days (PSNHDD)",
        "Share of the members with a logged day who had no heavy drinking day in their window.",
        SHARE,
        "%",
        "%",
        "Members with a logged day and no heavy day.",
        "Members with a logged day in their window.",
        "members",
        ("window",),
        _LOGS,
        "increase",
    ),
    MeasureDefinition(
        "drinks_per_drinking_day",
        "Drinks per drinking day",
        f"Each member's mean {_US} on the days they drank, averaged over the members who drank.",
        MEAN,
        "US standard drinks",
        "{drinks}/d",
        None,
        "Members with a drinking day in their window.",
        "members",
        ("window",),
        _LOGS,
        "decrease",
    ),
    MeasureDefinition(
        "weekly_drinks_change",
        "Change in weekly drinks",
        f"A change, not a level: each member's mean weekly {_US} over follow-up minus over baseline, "
        "averaged over the members with logged days in both; negative is a reduction. `baseline` and "
        "`follow_up` give the two means.",
        CHANGE,
        "US standard drinks per week",
        "{drinks}/wk",
        None,
        "Members with logged days in both baseline and follow-up.",
        "members",
        ("baseline", "follow_up"),
        _LOGS,
        "decrease",
    ),
    *(
        MeasureDefinition(
            f"who_improved_{levels}_level{'s' if levels > 1 else ''}",
            f"WHO risk level down by {levels}+",
            f"Share of the members with logged days in baseline and follow-up whose WHO drinking risk "
            f"level (from mean grams a day) fell by at least {levels} level{'s' if levels > 1 else ''}.",
            SHARE,
            "%",
            "%",
            f"Members whose WHO risk level fell by {levels} or more.",
            "Members with logged days in both baseline and follow-up.",
            "members",
            ("baseline", "follow_up"),
            _LOGS,
            "increase",
        )
        for levels in (1, 2)
    ),
    MeasureDefinition(
        "craving_change",
        "Change in craving",
        "A change, not a level: each member's mean craving rating (0-10) over follow-up minus over "
        "baseline, averaged over the members with ratings in both; negative is a reduction.",
        CHANGE,
        "0-10 rating",
        "{score}",
        None,
        "Members with craving ratings in both baseline and follow-up.",
        "members",
        ("baseline", "follow_up"),
        "craving ratings",
        "decrease",
    ),
    MeasureDefinition(
        "pacs_change",
        "Change in PACS",
        "A change, not a level: each member's Penn Alcohol Craving Scale total (0-30, weekly, past-week "
        "recall) at follow-up minus at baseline, averaged over the members with both; negative is a "
        "reduction. `baseline` and `follow_up` give the mean PACS at baseline and at follow-up, "
        "suppressed with the value.",
        CHANGE,
        "PACS score (0-30)",
        "{score}",
        None,
        "Members with a baseline PACS and a follow-up PACS.",
        "members",
        ("pacs_baseline", "pacs_follow_up"),
        "weekly PACS questionnaires",
        "decrease",
    ),
    MeasureDefinition(
        "adherence",
        "Dose adherence",
        "Doses checked in as taken as a share of the doses the plans scheduled, pooled over the "
        "members with a scheduled dose.",
        POOLED,
        "%",
        "%",
        "Doses checked in as taken.",
        "Doses scheduled by the medication plans in the window (up to the build, for today).",
        "doses scheduled",
        ("window",),
        "medication plans and dose check-ins",
        "increase",
    ),
)

BY_CODE = {m.code: m for m in MEASURES}

CSV_COLUMNS: dict[str, str] = {
    "period_start": "The period's first month, YYYY-MM.",
    "period_end": "The period's last month, YYYY-MM.",
    "partial": "true when the last month is the current one, counted to yesterday (UTC).",
    "breakdown": "total, or the breakdown of this row: medication, program_month or goal_type.",
    "category": "all for the total; else the row's medication code (none, multiple), program month "
    f"(1-{o.PROGRAM_MONTH_CAP - 1}, {o.PROGRAM_MONTH_CAP}+) or goal type (abstain, moderate).",
    "measure": "The measure's code (see `measures`).",
    "value": "The measure's value in `unit`; empty when suppressed or not applicable.",
    "unit": "The value's unit.",
    "members": "The members the value rests on (0 or at least 11); empty when suppressed.",
    "numerator": "What the value counts: members (a share) or days or doses (a pooled rate); "
    "empty for counts, means and changes.",
    "denominator": "What the value is divided by, in `denominator_unit`: members, or days or doses "
    "for a pooled rate.",
    "denominator_unit": "members, days enrolled or doses scheduled.",
    "days": "For PDA, PHDD and drinks per drinking day: the logged (or drinking) days the members' "
    "means rest on.",
    "days_unit": "logged days or drinking days.",
    "baseline": "For a change: the members' mean over baseline (for PACS: the mean baseline PACS).",
    "follow_up": "For a change: the members' mean over follow-up (for PACS: the mean follow-up PACS).",
    "suppressed": "true when the value is hidden (see `status_reason`).",
    "status_reason": f"small_cell (it counts 1-{MAX_SMALL_CELL} members), complementary (hidden so "
    "that another hidden count cannot be worked out), not_applicable (no member is eligible: "
    "nothing to show, nothing hidden), or empty.",
}


def as_dict() -> dict[str, Any]:
    """The dictionary as JSON: measures, windows, CSV columns and the suppression rule."""
    return {
        "measures": [{**asdict(m), "windows": list(m.windows)} for m in MEASURES],
        "windows": WINDOWS,
        "csv_columns": [{"column": c, "definition": d} for c, d in CSV_COLUMNS.items()],
        "suppression": {
            "policy": "CMS cell-size policy with complementary suppression",
            "hidden_member_counts": f"1-{MAX_SMALL_CELL}",
            "reasons": {
                o.SMALL_CELL: f"The value's own member count is 1-{MAX_SMALL_CELL}.",
                o.COMPLEMENTARY: "Hidden so that another hidden count cannot be worked out from it.",
                o.NOT_APPLICABLE: "No member is eligible: there is nothing to show, nothing is hidden.",
            },
        },
    }
