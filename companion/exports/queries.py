"""The insurer report, computed in PostgreSQL: set-based SQL over the day rows.

One statement per chunk of the cohort (members in id order, CHUNK_MEMBERS at a time) turns the
chunk's drink logs, cravings, dose slots and check-ins into per-member measures and sums them into
report cells (`domain.outcomes.CellTotals`); chunks add up. Python only sees a few rows per chunk,
and the cohort's ids are read with a server-side cursor keeping only the chunk boundaries, so memory
stays flat however large the cohort; the chunks give the progress bar its steps.

Everything is read in one REPEATABLE READ, READ ONLY transaction: the cohort (who consents right
now) and every chunk see the same snapshot.

`domain.outcomes` is the definition; tests/exports/test_queries.py checks on random data that this
SQL reproduces it exactly. Rounding matches because each per-member value is one division of exact
numbers rounded once (PostgreSQL's `round` on numeric is half away from zero, which is Decimal's
ROUND_HALF_UP for these non-negative values), and sums of those are exact.

Dose slots follow `domain.plans.dose_slots`: the regimen in force is the last step started by the
day (else the base), each time is placed in the member's zone, and a wall time the clocks pass twice
takes its *first* occurrence. PostgreSQL's `AT TIME ZONE` takes the later one for such a time (and
moves a skipped time forward, as zoneinfo's fold=0 does), so `slot_at` below tries the offset in
force three hours earlier and keeps it when that reading also lands on the same wall time.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import fields
from datetime import datetime
from decimal import Decimal

from sqlalchemy import text
from sqlalchemy.engine import Connection

from companion.domain import outcomes as o
from companion.domain import summary
from companion.domain.drinking import WHO_UPPER_BOUNDS, standard_drink_grams

#: Members per statement (ours): large enough to amortise each statement, small enough for steady
#: progress and a bounded working set.
CHUNK_MEMBERS = 2000

_ZERO_ID = uuid.UUID(int=0)
#: CellTotals' counting fields (PostgreSQL sums bigints as numeric).
_INT_FIELDS = {f.name: int for f in fields(o.CellTotals) if f.default == 0 and isinstance(f.default, int)}


def _literal(value: int | Decimal) -> str:
    """Our own constants, typed into the SQL (never user input)."""
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        raise TypeError(value)
    return str(value)


def _who_case(grams: str, days: str) -> str:
    """WHO level (1-4) of a mean of `grams` over `days` logged days, by the member's `sex`, compared
    without dividing: grams <= bound x days."""

    def levels(sex: str) -> str:
        whens = " ".join(
            f"WHEN {grams} <= {_literal(bound)} * {days} THEN {int(level)}"
            for level, bound in WHO_UPPER_BOUNDS[sex]
        )
        return f"CASE {whens} ELSE 4 END"

    return f"CASE WHEN w.sex = 'male' THEN {levels('male')} ELSE {levels('female')} END"


_COHORT = """
    SELECT m.id AS member_id
    FROM members m
    WHERE m.insurer_id = :insurer_id AND m.outcome_sharing
      AND (m.enrolled_at AT TIME ZONE m.timezone)::date <= :pe
"""

_SLOT_AT = """
    CASE WHEN alt.at < pg.at AND (alt.at AT TIME ZONE sl.zone) = sl.local THEN alt.at ELSE pg.at END
"""


def _statement(breakdowns: Sequence[o.Breakdown]) -> str:
    bd, fud, ad, pmd, cap = (
        o.BASELINE_DAYS,
        o.FOLLOW_UP_DAYS,
        o.ACTIVE_DAYS,
        o.PROGRAM_MONTH_DAYS,
        o.PROGRAM_MONTH_CAP,
    )
    r30, r90 = o.RETENTION_DAYS
    drink_g = _literal(standard_drink_grams(o.REPORT_COUNTRY))
    pct = -int(summary.PERCENT_QUANTUM.as_tuple().exponent)
    crq = -int(o.MEMBER_CRAVING_QUANTUM.as_tuple().exponent)
    program_months = f"""
        UNION ALL
        SELECT c.member_id, c.enrolled_on, c.sex, c.goal_type, 'pm', k,
               greatest(CAST(:ps AS date), c.enrolled_on + {pmd} * (k - 1)),
               CASE WHEN k = {cap} THEN CAST(:pe AS date)
                    ELSE least(CAST(:pe AS date), c.enrolled_on + ({pmd} * k - 1)) END
        FROM cohort c
        CROSS JOIN LATERAL generate_series(
            least({cap}, (greatest(CAST(:ps AS date), c.enrolled_on) - c.enrolled_on) / {pmd} + 1),
            least({cap}, (CAST(:pe AS date) - c.enrolled_on) / {pmd} + 1)) AS k
    """
    wants = set(breakdowns)
    return f"""
WITH cohort AS (
    SELECT m.id AS member_id, m.timezone AS zone, m.sex, m.goal_type,
           (m.enrolled_at AT TIME ZONE m.timezone)::date AS enrolled_on
    FROM members m
    WHERE m.insurer_id = :insurer_id AND m.outcome_sharing
      AND (m.enrolled_at AT TIME ZONE m.timezone)::date <= :pe
      AND m.id > :after AND m.id <= :upto
),
cohort_w AS (
    SELECT c.*, greatest(CAST(:ps AS date), c.enrolled_on) AS p_start FROM cohort c
),
win AS (
    SELECT c.member_id, c.enrolled_on, c.sex, c.goal_type, 'period' AS kind, 0 AS pm,
           c.p_start AS w_start, CAST(:pe AS date) AS w_end
    FROM cohort_w c
    {program_months if o.Breakdown.PROGRAM_MONTH in wants else ""}
),
w AS (
    SELECT win.*,
           greatest(win.w_end - {fud - 1}, win.w_start, win.enrolled_on + {bd}) AS f_start,
           greatest(win.w_start, win.w_end - {ad - 1}) AS a_start
    FROM win
),
logs AS (
    SELECT l.member_id, l.date, l.grams_ethanol AS grams, l.heavy
    FROM drink_logs l JOIN cohort_w c ON c.member_id = l.member_id
    WHERE l.deleted_at IS NULL
      AND (l.date BETWEEN c.enrolled_on AND c.enrolled_on + {bd - 1}
           OR l.date BETWEEN c.p_start AND :pe)
),
crav AS (
    SELECT cr.member_id, cr.date, cr.intensity
    FROM cravings cr JOIN cohort_w c ON c.member_id = cr.member_id
    WHERE cr.date BETWEEN c.enrolled_on AND c.enrolled_on + {bd - 1}
       OR cr.date BETWEEN c.p_start AND :pe
),
base AS MATERIALIZED (
    SELECT c.member_id,
           (SELECT count(*) FROM drink_logs l WHERE l.member_id = c.member_id AND l.deleted_at IS NULL
              AND l.date BETWEEN c.enrolled_on AND c.enrolled_on + {bd - 1}) AS b_logged,
           (SELECT coalesce(sum(l.grams_ethanol), 0) FROM drink_logs l
             WHERE l.member_id = c.member_id AND l.deleted_at IS NULL
              AND l.date BETWEEN c.enrolled_on AND c.enrolled_on + {bd - 1}) AS b_grams,
           (SELECT count(*) FROM cravings cr WHERE cr.member_id = c.member_id
              AND cr.date BETWEEN c.enrolled_on AND c.enrolled_on + {bd - 1}) AS b_ratings,
           (SELECT coalesce(sum(cr.intensity), 0) FROM cravings cr WHERE cr.member_id = c.member_id
              AND cr.date BETWEEN c.enrolled_on AND c.enrolled_on + {bd - 1}) AS b_intensity,
           greatest(
               (SELECT max(x.date) FROM drink_logs x
                 WHERE x.member_id = c.member_id AND x.deleted_at IS NULL AND x.date <= :pe),
               (SELECT max(x.date) FROM cravings x WHERE x.member_id = c.member_id AND x.date <= :pe),
               (SELECT max(x.date) FROM medication_checkins x
                 WHERE x.member_id = c.member_id AND x.date <= :pe),
               (SELECT max(x.date) FROM bac_readings x WHERE x.member_id = c.member_id AND x.date <= :pe)
           ) AS last_entry,
           (SELECT CASE count(DISTINCT p.medication) WHEN 0 THEN '{o.NO_MEDICATION}'
                        WHEN 1 THEN min(p.medication) ELSE '{o.MULTIPLE_MEDICATIONS}' END
              FROM medication_plans p
             WHERE p.member_id = c.member_id AND p.start_date <= :pe
               AND (p.end_date IS NULL OR p.end_date >= c.p_start)) AS medication
    FROM cohort_w c
),
entry AS (
    SELECT member_id, date FROM logs
    UNION
    SELECT member_id, date FROM crav
    UNION
    SELECT x.member_id, x.date FROM medication_checkins x JOIN cohort_w c ON c.member_id = x.member_id
     WHERE x.date BETWEEN c.p_start AND :pe
    UNION
    SELECT x.member_id, x.date FROM bac_readings x JOIN cohort_w c ON c.member_id = x.member_id
     WHERE x.date BETWEEN c.p_start AND :pe
),
plan_days AS (
    SELECT p.id AS plan_id, p.member_id, c.zone, d::date AS day, p.times, p.steps
    FROM cohort_w c JOIN medication_plans p ON p.member_id = c.member_id
    CROSS JOIN LATERAL generate_series(
        greatest(c.p_start, p.start_date), least(CAST(:pe AS date), coalesce(p.end_date, :pe)),
        interval '1 day') AS d
),
slot_local AS (
    SELECT pd.plan_id, pd.member_id, pd.zone, pd.day, pd.day + t AS local
    FROM plan_days pd
    LEFT JOIN LATERAL (
        SELECT s FROM jsonb_array_elements(pd.steps) AS s
        WHERE (s ->> 'from_date')::date <= pd.day
        ORDER BY (s ->> 'from_date')::date DESC LIMIT 1
    ) AS step ON true
    CROSS JOIN LATERAL unnest(
        CASE WHEN step.s IS NULL THEN pd.times
             ELSE ARRAY(SELECT jsonb_array_elements_text(step.s -> 'times')::time) END
    ) AS t
),
-- MATERIALIZED, so each slot's time is a plain column and doses can hash-join the check-ins on it.
-- Inlined, the planner merge-joined on (member, plan) alone and compared every slot of a plan with
-- every check-in of it (69 million rows for 2,000 members x 180 days).
slots AS MATERIALIZED (
    SELECT DISTINCT sl.member_id, sl.plan_id, sl.day, {_SLOT_AT} AS at
    FROM slot_local sl
    CROSS JOIN LATERAL (SELECT sl.local AT TIME ZONE sl.zone AS at) AS pg
    CROSS JOIN LATERAL (
        SELECT (sl.local - ((pg.at - interval '3 hours') AT TIME ZONE sl.zone
                            - (pg.at - interval '3 hours') AT TIME ZONE 'UTC')) AT TIME ZONE 'UTC' AS at
    ) AS alt
),
doses AS (
    SELECT s.member_id, s.day,
           (s.at <= :now OR x.status IS NOT NULL) AS due, coalesce(x.status = 'taken', false) AS taken
    FROM slots s
    LEFT JOIN medication_checkins x
      ON x.member_id = s.member_id AND x.plan_id = s.plan_id AND x.scheduled_for = s.at
),
wlog AS (
    SELECT w.member_id, w.kind, w.pm,
           count(l.date) AS logged,
           count(l.date) FILTER (WHERE l.grams = 0) AS abstinent,
           count(l.date) FILTER (WHERE l.heavy) AS heavy_days,
           count(l.date) FILTER (WHERE l.grams > 0) AS drinking_days,
           coalesce(sum(l.grams) FILTER (WHERE l.grams > 0), 0) AS drinking_grams,
           count(l.date) FILTER (WHERE l.date >= w.f_start) AS f_logged,
           coalesce(sum(l.grams) FILTER (WHERE l.date >= w.f_start), 0) AS f_grams
    FROM w LEFT JOIN logs l ON l.member_id = w.member_id AND l.date BETWEEN w.w_start AND w.w_end
    GROUP BY w.member_id, w.kind, w.pm
),
wcrav AS (
    SELECT w.member_id, w.kind, w.pm, count(cr.date) AS f_ratings,
           coalesce(sum(cr.intensity), 0) AS f_intensity
    FROM w LEFT JOIN crav cr ON cr.member_id = w.member_id AND cr.date BETWEEN w.f_start AND w.w_end
    GROUP BY w.member_id, w.kind, w.pm
),
went AS (
    SELECT w.member_id, w.kind, w.pm, count(e.date) AS entry_days,
           count(e.date) FILTER (WHERE e.date >= w.a_start) > 0 AS active
    FROM w LEFT JOIN entry e ON e.member_id = w.member_id AND e.date BETWEEN w.w_start AND w.w_end
    GROUP BY w.member_id, w.kind, w.pm
),
wdose AS (
    SELECT w.member_id, w.kind, w.pm,
           count(*) FILTER (WHERE ds.due) AS scheduled, count(*) FILTER (WHERE ds.taken) AS taken
    FROM w LEFT JOIN doses ds ON ds.member_id = w.member_id AND ds.day BETWEEN w.w_start AND w.w_end
    GROUP BY w.member_id, w.kind, w.pm
),
mw AS (
    SELECT w.kind, w.pm, w.goal_type, b.medication,
           w.w_end - w.w_start + 1 AS enrolled_days,
           e.entry_days, e.active,
           w.kind = 'period' AND w.enrolled_on + {r30} <= :pe AS elig30,
           w.kind = 'period' AND w.enrolled_on + {r30} <= :pe
               AND b.last_entry >= w.enrolled_on + {r30} AS ret30,
           w.kind = 'period' AND w.enrolled_on + {r90} <= :pe AS elig90,
           w.kind = 'period' AND w.enrolled_on + {r90} <= :pe
               AND b.last_entry >= w.enrolled_on + {r90} AS ret90,
           l.logged,
           CASE WHEN l.logged > 0 THEN round(100.0 * l.abstinent / l.logged, {pct}) END AS pda,
           CASE WHEN l.logged > 0 THEN round(100.0 * l.heavy_days / l.logged, {pct}) END AS phdd,
           l.logged > 0 AND l.heavy_days = 0 AS nhdd,
           l.drinking_days,
           CASE WHEN l.drinking_days > 0
                THEN round(l.drinking_grams / (l.drinking_days * {drink_g}), 1) END AS ddd,
           CASE WHEN b.b_logged > 0 AND l.f_logged > 0
                THEN round(b.b_grams * 7 / (b.b_logged * {drink_g}), 1) END AS wb,
           CASE WHEN b.b_logged > 0 AND l.f_logged > 0
                THEN round(l.f_grams * 7 / (l.f_logged * {drink_g}), 1) END AS wf,
           CASE WHEN b.b_logged > 0 AND l.f_logged > 0
                THEN ({_who_case("b.b_grams", "b.b_logged")}) - ({_who_case("l.f_grams", "l.f_logged")})
           END AS who_drop,
           CASE WHEN b.b_ratings > 0 AND c.f_ratings > 0
                THEN round(1.0 * b.b_intensity / b.b_ratings, {crq}) END AS cb,
           CASE WHEN b.b_ratings > 0 AND c.f_ratings > 0
                THEN round(1.0 * c.f_intensity / c.f_ratings, {crq}) END AS cf,
           d.scheduled, d.taken
    FROM w
    JOIN base b ON b.member_id = w.member_id
    JOIN wlog l ON (l.member_id, l.kind, l.pm) = (w.member_id, w.kind, w.pm)
    JOIN wcrav c ON (c.member_id, c.kind, c.pm) = (w.member_id, w.kind, w.pm)
    JOIN went e ON (e.member_id, e.kind, e.pm) = (w.member_id, w.kind, w.pm)
    JOIN wdose d ON (d.member_id, d.kind, d.pm) = (w.member_id, w.kind, w.pm)
)
SELECT '{o.TOTAL}' AS breakdown, '{o.ALL}' AS category, {_AGGREGATES} FROM mw WHERE kind = 'period'
{_GOAL_TYPE if o.Breakdown.GOAL_TYPE in wants else ""}
{_MEDICATION if o.Breakdown.MEDICATION in wants else ""}
{_PROGRAM_MONTH.format(cap=cap) if o.Breakdown.PROGRAM_MONTH in wants else ""}
"""


_AGGREGATES = """
    count(*) AS members,
    count(*) FILTER (WHERE active) AS active_members,
    coalesce(sum(enrolled_days), 0) AS enrolled_days,
    coalesce(sum(entry_days), 0) AS entry_days,
    count(*) FILTER (WHERE elig30) AS retention_30d_eligible,
    count(*) FILTER (WHERE ret30) AS retention_30d_retained,
    count(*) FILTER (WHERE elig90) AS retention_90d_eligible,
    count(*) FILTER (WHERE ret90) AS retention_90d_retained,
    count(pda) AS logged_members,
    coalesce(sum(logged) FILTER (WHERE pda IS NOT NULL), 0) AS logged_days,
    coalesce(sum(pda), 0) AS pda_sum,
    coalesce(sum(phdd), 0) AS phdd_sum,
    count(*) FILTER (WHERE nhdd) AS nhdd_members,
    count(ddd) AS drinking_members,
    coalesce(sum(drinking_days) FILTER (WHERE ddd IS NOT NULL), 0) AS drinking_days,
    coalesce(sum(ddd), 0) AS ddd_sum,
    count(wb) AS change_members,
    coalesce(sum(wb), 0) AS weekly_baseline_sum,
    coalesce(sum(wf), 0) AS weekly_follow_up_sum,
    count(*) FILTER (WHERE who_drop >= 1) AS who_improved_1,
    count(*) FILTER (WHERE who_drop >= 2) AS who_improved_2,
    count(cb) AS craving_members,
    coalesce(sum(cb), 0) AS craving_baseline_sum,
    coalesce(sum(cf), 0) AS craving_follow_up_sum,
    count(*) FILTER (WHERE scheduled > 0) AS adherence_members,
    coalesce(sum(taken) FILTER (WHERE scheduled > 0), 0) AS doses_taken,
    coalesce(sum(scheduled), 0) AS doses_scheduled
"""

_GOAL_TYPE = f"""
UNION ALL
SELECT '{o.Breakdown.GOAL_TYPE.value}', goal_type, {_AGGREGATES}
FROM mw WHERE kind = 'period' GROUP BY goal_type
"""

_MEDICATION = f"""
UNION ALL
SELECT '{o.Breakdown.MEDICATION.value}', medication, {_AGGREGATES}
FROM mw WHERE kind = 'period' GROUP BY medication
"""

_PROGRAM_MONTH = f"""
UNION ALL
SELECT '{o.Breakdown.PROGRAM_MONTH.value}',
       CASE WHEN pm >= {{cap}} THEN pm || '+' ELSE pm::text END, {_AGGREGATES}
FROM mw WHERE kind = 'pm' GROUP BY pm
"""


def chunk_boundaries(
    conn: Connection, *, insurer_id: uuid.UUID, period: o.Period, chunk: int = CHUNK_MEMBERS
) -> tuple[list[tuple[uuid.UUID, uuid.UUID]], int]:
    """(after, upto] id ranges of at most `chunk` cohort members each, and the cohort's size.

    The ids stream through a server-side cursor; only every chunk-th one is kept.
    """
    # Options for this statement only: `Connection.execution_options` would change the connection
    # in place, and every chunk after it would run through a server-side cursor too (planned for
    # its first rows, cursor_tuple_fraction), not as one plain statement.
    result = conn.execute(
        text(_COHORT + " ORDER BY m.id"),
        {"insurer_id": insurer_id, "pe": period.days.end},
        execution_options={"stream_results": True, "yield_per": chunk},
    )
    ranges: list[tuple[uuid.UUID, uuid.UUID]] = []
    after, last, count = _ZERO_ID, None, 0
    for (member_id,) in result:
        count += 1
        last = member_id
        if count % chunk == 0:
            ranges.append((after, member_id))
            after = member_id
    if last is not None and last != after:
        ranges.append((after, last))
    return ranges, count


def chunk_totals(
    conn: Connection,
    *,
    insurer_id: uuid.UUID,
    period: o.Period,
    breakdowns: Sequence[o.Breakdown],
    now: datetime,
    after: uuid.UUID,
    upto: uuid.UUID,
) -> dict[o.CellKey, o.CellTotals]:
    """The cells of the cohort members with `after` < id <= `upto`."""
    rows = conn.execute(
        text(_statement(breakdowns)),
        {
            "insurer_id": insurer_id,
            "ps": period.days.start,
            "pe": period.days.end,
            "now": now,
            "after": after,
            "upto": upto,
        },
    ).mappings()
    cells: dict[o.CellKey, o.CellTotals] = {}
    for row in rows:
        values = dict(row)
        key = (values.pop("breakdown"), values.pop("category"))
        cells[key] = o.CellTotals(**{k: _INT_FIELDS.get(k, Decimal)(v) for k, v in values.items()})
    return cells


def cohort_totals(
    conn: Connection,
    *,
    insurer_id: uuid.UUID,
    period: o.Period,
    breakdowns: Sequence[o.Breakdown],
    now: datetime,
    chunk: int = CHUNK_MEMBERS,
    progress: Callable[[int, int], None] | None = None,
) -> dict[o.CellKey, o.CellTotals]:
    """Every cell of the report, chunk by chunk; `progress(members_done, members)` after each chunk.

    Run it inside one REPEATABLE READ transaction (`snapshot`) so consent and data hold still.
    """
    # The chunk statement's estimates are large (date ranges, generate_series), which switches on
    # JIT compilation, and compiling it costs seconds per chunk, more than running it.
    conn.execute(text("SET LOCAL jit = off"))
    ranges, members = chunk_boundaries(conn, insurer_id=insurer_id, period=period, chunk=chunk)
    totals: dict[o.CellKey, o.CellTotals] = {(o.TOTAL, o.ALL): o.CellTotals()}
    done = 0
    for after, upto in ranges:
        for key, cell in chunk_totals(
            conn, insurer_id=insurer_id, period=period, breakdowns=breakdowns, now=now, after=after, upto=upto
        ).items():
            totals.setdefault(key, o.CellTotals()).merge(cell)
        done = min(members, done + chunk)
        if progress is not None:
            progress(done, members)
    return totals
