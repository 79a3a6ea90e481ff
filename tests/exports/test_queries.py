"""The SQL computes exactly what the pure definition (`domain.outcomes`) says, on random members."""

from __future__ import annotations

import random
import uuid

import pytest
from sqlalchemy import text

from companion import db
from companion.domain import outcomes as o
from companion.exports import queries
from tests.exports import population

PERIOD = o.Period(o.Month(2025, 10), o.Month(2026, 3))  # both US and EU DST changes of the season
NOW = population.utc(2026, 3, 20, 12)  # inside the period: later dose slots count only if answered


def _nonempty(cells):
    return {k: v for k, v in cells.items() if v.members or k == (o.TOTAL, o.ALL)}


@pytest.mark.parametrize("seed", [7, 2026])
def test_sql_equals_the_pure_definition(app, seed):
    rng = random.Random(seed)
    with app.app_context(), db.unit_of_work() as s:
        pop = population.build(s, rng=rng, members=30, first_day=PERIOD.days.start, last_day=PERIOD.days.end)
    breakdowns = list(o.Breakdown)
    with app.extensions["engine"].connect() as conn:
        got = queries.cohort_totals(
            conn, insurer_id=pop.insurer_id, period=PERIOD, breakdowns=breakdowns, now=NOW, chunk=7
        )
    expected = o.cohort_totals(
        [pop.records[m] for m in sorted(pop.consenting)], period=PERIOD, breakdowns=breakdowns, now=NOW
    )
    assert got[(o.TOTAL, o.ALL)].members > 10  # a cohort worth comparing
    assert got[(o.TOTAL, o.ALL)].doses_scheduled > 0 and got[(o.TOTAL, o.ALL)].change_members > 0
    for key in sorted(set(_nonempty(got)) | set(_nonempty(expected))):
        assert got.get(key) == expected.get(key), key
    with app.extensions["engine"].connect() as conn:
        alone = queries.cohort_totals(conn, insurer_id=pop.insurer_id, period=PERIOD, breakdowns=[], now=NOW)
    assert alone == {(o.TOTAL, o.ALL): expected[(o.TOTAL, o.ALL)]}


def test_jit_is_left_to_the_server_only_for_large_chunks(app, monkeypatch):
    with app.extensions["engine"].connect() as conn:
        server = conn.execute(text("SHOW jit")).scalar()
        queries.cohort_totals(conn, insurer_id=uuid.uuid4(), period=PERIOD, breakdowns=[], now=NOW)
        assert conn.execute(text("SHOW jit")).scalar() == "off"
    monkeypatch.setattr(queries, "JIT_MIN_MEMBERS", 0)
    with app.extensions["engine"].connect() as conn:
        queries.cohort_totals(conn, insurer_id=uuid.uuid4(), period=PERIOD, breakdowns=[], now=NOW)
        assert conn.execute(text("SHOW jit")).scalar() == server
