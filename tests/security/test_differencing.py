"""Exports that cannot be subtracted (issue 21, finding 6). Two reports of one plan whose periods overlap
(May-Oct and May-Sep), or the same period before and after members withdraw consent, used to publish
cells whose member counts differed by 1..10: subtracting them revealed a cell CMS forbids. The release
ledger (docs/decisions.md) hides such a cell in the later report. Checked on the files themselves,
against a population where the attack works without the ledger."""

from __future__ import annotations

import json
import random
from datetime import date
from itertools import combinations

from sqlalchemy import text

from companion import db
from companion.domain import outcomes as o
from companion.domain.suppression import is_small
from companion.exports import build_tx, queries
from tests.exports import population

LONG = o.Period(o.Month(2026, 5), o.Month(2026, 10))
SHORT = o.Period(o.Month(2026, 5), o.Month(2026, 9))
NOW = population.utc(2026, 11, 20, 12)
BREAKDOWNS = [o.Breakdown.GOAL_TYPE, o.Breakdown.MEDICATION, o.Breakdown.PROGRAM_MONTH]


def published(content: bytes) -> dict[tuple[str, str, str, str], int]:
    """Every member count a JSON report shows: (breakdown, category, measure, members|numerator)."""
    found = {}
    for cell in json.loads(content)["cells"]:
        for m in cell["measures"]:
            for field in ("members", "numerator"):
                if m[field] is not None:
                    found[(cell["breakdown"], cell["category"], m["measure"], field)] = m[field]
    return found


def small_differences(a: dict, b: dict) -> dict:
    return {k: (a[k], b[k]) for k in a.keys() & b.keys() if is_small(abs(a[k] - b[k]))}


def counts_without_ledger(app, insurer_id, period) -> dict:
    with app.extensions["engine"].connect() as conn:
        totals = queries.cohort_totals(
            conn, insurer_id=insurer_id, period=period, breakdowns=BREAKDOWNS, now=NOW
        )
    return {
        (*key, column): n
        for key, row in o.published_counts(totals, BREAKDOWNS).items()
        for column, n in row.items()
    }


def build(app, insurer_id, period) -> dict:
    with app.app_context():
        return published(build_tx.build_file(insurer_id, period, "json", BREAKDOWNS, now=NOW).content)


def test_overlapping_periods_and_a_consent_change_cannot_be_subtracted(app):
    with app.app_context(), db.unit_of_work() as s:
        pop = population.build(
            s, rng=random.Random(21), members=160, first_day=date(2026, 5, 1), last_day=date(2026, 10, 31)
        )
    # Without the ledger, the attack works on this population: that is what makes the test worth having.
    before = counts_without_ledger(app, pop.insurer_id, LONG)
    shorter = counts_without_ledger(app, pop.insurer_id, SHORT)
    assert small_differences(before, shorter), "the population must offer a differencing attack"

    long_report = build(app, pop.insurer_id, LONG)
    short_report = build(app, pop.insurer_id, SHORT)
    # Three members withdraw consent; the same period is exported again.
    withdrawn = sorted(pop.consenting)[:3]
    with app.app_context(), db.unit_of_work() as s:
        s.execute(
            text("UPDATE members SET outcome_sharing = false WHERE id = ANY(:ids)"), {"ids": list(withdrawn)}
        )
    after_withdrawal = build(app, pop.insurer_id, SHORT)
    assert counts_without_ledger(app, pop.insurer_id, SHORT) != shorter  # the withdrawal changed counts

    reports = {"May-Oct": long_report, "May-Sep": short_report, "May-Sep after withdrawal": after_withdrawal}
    for (name_a, a), (name_b, b) in combinations(reports.items(), 2):
        assert small_differences(a, b) == {}, (name_a, name_b, small_differences(a, b))
    assert sum(1 for (b, _, _, _), n in long_report.items() if b == o.TOTAL and n > 10) >= 5  # still useful
    # The same report asked for again is the same: nothing differs, nothing more is hidden.
    assert build(app, pop.insurer_id, SHORT) == after_withdrawal
