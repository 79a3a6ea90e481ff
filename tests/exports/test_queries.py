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


def _sql_equals_definition(app, pop, **options):
    """Asserts that the SQL's cells are the definition's, every breakdown; returns the definition's."""
    breakdowns = list(o.Breakdown)
    with app.extensions["engine"].connect() as conn:
        got = queries.cohort_totals(
            conn, insurer_id=pop.insurer_id, period=PERIOD, breakdowns=breakdowns, now=NOW, **options
        )
    expected = o.cohort_totals(
        [pop.records[m] for m in sorted(pop.consenting)], period=PERIOD, breakdowns=breakdowns, now=NOW
    )
    for key in sorted(set(_nonempty(got)) | set(_nonempty(expected))):
        assert got.get(key) == expected.get(key), key
    return expected


@pytest.mark.parametrize("seed", [7, 2026])
def test_sql_equals_the_pure_definition(app, seed):
    rng = random.Random(seed)
    with app.app_context(), db.unit_of_work() as s:
        pop = population.build(s, rng=rng, members=30, first_day=PERIOD.days.start, last_day=PERIOD.days.end)
    expected = _sql_equals_definition(app, pop, chunk=7)
    assert expected[(o.TOTAL, o.ALL)].members > 10  # a cohort worth comparing
    assert expected[(o.TOTAL, o.ALL)].doses_scheduled > 0 and expected[(o.TOTAL, o.ALL)].change_members > 0
    assert expected[(o.TOTAL, o.ALL)].pacs_members > 0  # PACS baselines and follow-ups compared too
    with app.extensions["engine"].connect() as conn:
        alone = queries.cohort_totals(conn, insurer_id=pop.insurer_id, period=PERIOD, breakdowns=[], now=NOW)
    assert alone == {(o.TOTAL, o.ALL): expected[(o.TOTAL, o.ALL)]}


#: Zones whose offset changes in or just before PERIOD: by an hour, by half an hour (Lord Howe), at
#: half- and quarter-hour offsets (St John's, Chatham, whose change is three days before the period).
WALKERS = ("America/New_York", "Europe/London", "Australia/Lord_Howe", "America/St_Johns", "Pacific/Chatham")


def test_doses_taken_at_any_instant_around_clock_changes(app):
    """A check-in answers a dose only at the slot's own instant: taken check-ins every quarter hour
    around each change of offset, where the SQL moves from counting by local time (ordinary days) to
    probing slot by slot (special days), and where a local time read with the wrong offset would
    land on another day or dose time."""
    rng = random.Random(11)
    with app.app_context(), db.unit_of_work() as s:
        pop = population.build(
            s, rng=rng, members=3, first_day=PERIOD.days.start, last_day=PERIOD.days.end, walkers=WALKERS
        )
    total = _sql_equals_definition(app, pop)[(o.TOTAL, o.ALL)]
    assert 0 < total.doses_taken < total.doses_scheduled  # some quarter hours answer a slot


def test_jit_is_left_to_the_server_only_for_large_chunks(app, monkeypatch):
    with app.extensions["engine"].connect() as conn:
        server = conn.execute(text("SHOW jit")).scalar()
        queries.cohort_totals(conn, insurer_id=uuid.uuid4(), period=PERIOD, breakdowns=[], now=NOW)
        assert conn.execute(text("SHOW jit")).scalar() == "off"
    monkeypatch.setattr(queries, "JIT_MIN_MEMBERS", 0)
    with app.extensions["engine"].connect() as conn:
        queries.cohort_totals(conn, insurer_id=uuid.uuid4(), period=PERIOD, breakdowns=[], now=NOW)
        assert conn.execute(text("SHOW jit")).scalar() == server
