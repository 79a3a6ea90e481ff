"""The insurer report, computed in PostgreSQL: set-based SQL over the day rows.

One statement per chunk of the cohort (members in id order, CHUNK_MEMBERS at a time) turns the
chunk's drink logs, cravings, breath readings, medication plans and check-ins into per-member
measures and sums them into report cells (`domain.outcomes.CellTotals`); chunks add up. Python only
sees a few rows per chunk, and the cohort's ids are read with a server-side cursor keeping only the
chunk boundaries, so memory stays flat however large the cohort; the chunks give the progress bar
its steps.

The statement reads each day table once (`_statement`): every row is tagged from its date alone with
its 30-day bucket of enrollment and its place in the windows, and grouped by (member, bucket). The
period, the program months, baselines, follow-ups and active days are unions of those buckets or
flags within them, so every measure and breakdown is derived from that small intermediate (a few
rows per member and month). Doses due are counted from the plans' regimen segments (days x times),
slot by slot only on the few days where instants matter (a zone's offset changes nearby, or `now`
is close); a check-in taken on any other day answers a slot exactly when its local time is one of
the regimen's times that day, read from one bit string per plan (a bit per dose time and day of the
period). A member's plans' bit strings ride along with the buckets the check-ins are read by, so
each taken check-in finds its bit from its own row (`member_plans`). Its local time is its instant
plus the UTC offset of its zone's longest run of ordinary days (`zone_run`), when the instant falls
in that run, where the offset cannot change; any other instant is converted by zone name, which
costs ~0.2 us more a row (the zone's rules are looked up and applied each time).

Day rows are read bucket by bucket (migration a5e7c3d19f62): each day table has a (member_id, date)
index carrying the columns read here, so an index-only range scan per cohort member and 30-day
bucket (members in id order) yields them in (member, bucket) order, and each group is summed as it
streams by, with no sort. Hashing them instead (the rows in the heap come day by day
across members) built tables of ~670 k groups that missed the caches and spilled at 100,000 members.

Weekly PACS are few (one a member and week): each member's baseline PACS and each window's follow-up
PACS are read by (member_id, week_of), the pacs_reports key, one index probe per member and window
(`pacs_base`, and a lateral join in `mw`).

Everything is read in one REPEATABLE READ, READ ONLY transaction: the cohort (who consents right
now) and every chunk see the same snapshot.

`domain.outcomes` is the definition; tests/exports/test_queries.py checks on random data that this
SQL reproduces it exactly. Rounding matches because each per-member value is one division of exact
numbers rounded once (PostgreSQL's `round` on numeric is half away from zero, which is Decimal's
ROUND_HALF_UP for these non-negative values), and sums of those are exact.

Dose slots follow `domain.plans.dose_slots`: the regimen in force is the last step started by the
day (else the base), each time is placed in the member's zone, and a wall time the clocks pass twice
takes its *first* occurrence. PostgreSQL's `AT TIME ZONE` takes the later one for such a time (and
moves a skipped time forward, as zoneinfo's fold=0 does), so `_SLOT_AT` tries the offset in force
three hours earlier and keeps it when that reading also lands on the same wall time.
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
from companion.domain.drinking import STANDARD_DRINKS_QUANTUM, WHO_UPPER_BOUNDS, standard_drink_grams

#: Members per statement (ours). Each statement reads every day table once; day rows are stored as
#: they arrive (day by day across members), so a chunk of members is spread over nearly every page
#: and each chunk costs a pass over the tables: a cohort up to this size is one pass. Progress is
#: reported per chunk.
CHUNK_MEMBERS = 100_000
#: The export transaction's work_mem (ours; the server's default is 4 MB). Hash tables get twice this
#: (hash_mem_multiplier 2). At 100,000 members the drink logs' (member, bucket) groups spill (~400 MB
#: written), yet 192 MB measured no faster (docs/performance/insurer-export.md), so the memory stays bounded.
WORK_MEM = "64MB"
#: Chunks of at least this many members run with the server's JIT setting (on by default; the bench's
#: GROUP BY baseline runs with it too), smaller ones with JIT off (ours). Compiling this statement
#: costs seconds: at 10k members x 180 days it cost more than it saved, at 100k x 180 it saved ~10 %
#: of the backend's CPU (docs/performance/insurer-export.md).
JIT_MIN_MEMBERS = 50_000

_ZERO_ID = uuid.UUID(int=0)
#: CellTotals' counting fields (PostgreSQL sums bigints as numeric).
_INT_FIELDS = {f.name: int for f in fields(o.CellTotals) if f.default == 0 and isinstance(f.default, int)}


def _literal(value: int | Decimal) -> str:
    """Our own constants, typed into the SQL (never user input)."""
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        raise TypeError(value)
    return str(value)


def _who_case(centigrams: str, days: str) -> str:
    """WHO level (1-4) of a mean of `centigrams` over `days` logged days, by the member's `sex`,
    compared without dividing: centigrams <= 100 x bound x days."""

    def levels(sex: str) -> str:
        whens = " ".join(
            f"WHEN {centigrams} <= {_literal(_units(bound, _CENTI))} * {days} THEN {int(level)}"
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

#: A taken check-in's place among its member's dose times (`member_plans`), NULL if none.
_MEMBER_SLOT = (
    "array_position(r.mp_keys, DATE '2000-01-01' + array_position(r.mp_ids, r.taken_plan) + r.at_time)"
)

_SLOT_AT = """
    CASE WHEN alt.at < pg.at AND (alt.at AT TIME ZONE sl.zone) = sl.local THEN alt.at ELSE pg.at END
"""

#: What each 30-day bucket of a member's enrollment adds up (see `_statement`), and how buckets of one
#: window combine: counts and sums add, the entry-day bitmask ORs, flags OR, the last entry is a max.
_BUCKET_SUMS = (
    "logged",
    "abstinent",
    "heavy_days",
    "grams",
    "pmf_logged",
    "pmf_grams",
    "pmf_ratings",
    "pmf_intensity",
    "scheduled",
    "taken",
)
_BUCKET_COLUMNS = {
    **{name: f"sum({name})::integer" for name in _BUCKET_SUMS},
    "mask": "bit_or(mask)",
    "last_entry": "max(last_entry)",
}

#: Typed NULLs for a branch's missing columns (UNION ALL would otherwise take them for text).
_NULLS = {
    **dict.fromkeys(_BUCKET_SUMS, "NULL::integer"),
    "mask": "NULL::integer",
    "last_entry": "NULL::date",
}


def _cast(name: str, value: str) -> str:
    return f"({value})::integer" if name in _BUCKET_SUMS else value


def _bucket_branch(source: str, given: dict[str, str]) -> str:
    """One source's part of the buckets' UNION ALL: its own columns, NULL for the others.

    Counts and sums go on as integers (a bucket's fit easily): PostgreSQL sums integers in a plain
    bigint, but bigints in a numeric state allocated per group, which cost ~2 kB per bucket."""
    columns = ", ".join(
        f"{_cast(name, given[name]) if name in given else _NULLS[name]} AS {name}" for name in _BUCKET_COLUMNS
    )
    return f"SELECT member_id, g, {columns} FROM {source}"


#: Grams are summed in hundredths (drink logs keep two decimals); member values are counted in units
#: of their quantum (a percentage in tenths, drinks in tenths, a craving mean in hundredths).
_CENTI = Decimal("0.01")
_PERCENT = summary.PERCENT_QUANTUM
_DRINKS = STANDARD_DRINKS_QUANTUM
_CRAVING = o.MEMBER_CRAVING_QUANTUM


def _units(value: Decimal, quantum: Decimal) -> int:
    """`value` as a whole number of `quantum`s (refuses a value that is not one)."""
    units = value / quantum
    if units != units.to_integral_value():
        raise ValueError(f"{value} is not a multiple of {quantum}")
    return int(units)


def _rounded(numerator: str, denominator: str) -> str:
    """numerator / denominator (integers, numerator >= 0, denominator > 0) to the nearest integer, half
    up, in integer arithmetic. Exactly Decimal's ROUND_HALF_UP of the quotient: a quotient of such
    integers is a tie only when it is exactly one, which the domain's 28-digit division also sees.
    Integers, not numeric: numeric division and rounding per member and window cost seconds at
    100,000 members (780,000 windows, seven values each)."""
    return f"((2 * ({numerator}) + ({denominator})) / (2 * ({denominator})))::integer"


def _tagged(
    table: str, columns: str = "", where: str = "true", buckets: str = "member_buckets", computed: str = ""
) -> str:
    """The chunk's rows of a day table (alias `l`) up to the period's end, each tagged with where it
    falls (OFFSET 0 keeps the planner from inlining the tags into every aggregate that reads them):

    * g: its 30-day bucket of enrollment (program month g + 1, uncapped), -1 before the window;
    * base: in the baseline;
    * pf: in the period's follow-up, if in the window;
    * pmf: in its program month's follow-up, if in the window. A program month's part of the window
      ends with the period or with its bucket (the capped month: with the period), so "in the last
      n days" is "in the period's last n days, or in its bucket's last n days";
    * bit: its day within the bucket, as a bit of the bucket's entry-day mask.

    Only the baseline sums and the last entry are read from bucket -1, so the other tags need not
    test that a row is in the window. Active days are not tagged: a bucket has one if its last entry
    is in the period's active days, or (a bucket not capped) its mask has a bit in the bucket's own.

    The rows are read bucket by bucket (`member_buckets`, in member and bucket order): one range of
    the table's covering (member_id, date) index per bucket, so they come out in (member, bucket)
    order and grouping them streams, with neither a hash table of every group of the chunk nor a
    sort (OFFSET 0 in the lateral keeps that nested loop: joined freely, the planner merge-joined
    each member's rows against all of the member's buckets). `computed` columns are computed there,
    once per row, so that `columns` can use them (as `l.<name>`) without computing them again.
    """
    bd, fud, pmd, cap = (
        o.BASELINE_DAYS,
        o.FOLLOW_UP_DAYS,
        o.PROGRAM_MONTH_DAYS,
        o.PROGRAM_MONTH_CAP,
    )
    pe = "CAST(:pe AS date)"
    bucket_last = f"(l.date < c.e + {pmd * (cap - 1)} AND (l.date - c.e) % {pmd} >= {pmd - fud})"

    return f"""(
        SELECT c.member_id, c.g, l.date AS day, {columns + "," if columns else ""}
               l.date BETWEEN c.e AND c.e + {bd - 1} AS base,
               l.date > {pe} - {fud} AND l.date >= c.e + {bd} AS pf,
               (l.date > {pe} - {fud} OR {bucket_last}) AND l.date >= c.e + {bd} AS pmf,
               1 << ((l.date - c.e) % {pmd}) AS bit
        FROM {buckets} c
        CROSS JOIN LATERAL (
            SELECT *{", " + computed if computed else ""} FROM {table} l
            WHERE l.member_id = c.member_id AND l.date BETWEEN c.lo AND c.hi AND {where}
            OFFSET 0
        ) AS l
        ORDER BY c.member_id, c.g
        OFFSET 0
    ) AS r"""


def _statement(breakdowns: Sequence[o.Breakdown]) -> str:
    """The chunk's report cells, in one pass over each kind of day row.

    Every day row of a cohort member is tagged with its 30-day bucket of enrollment and its place in
    the windows (`_tagged`), and each table is grouped once by (member, bucket): a few rows per member
    and month. The period, each program month (one bucket, or the capped tail), the baseline, the
    follow-ups and the active days are all unions of buckets or flags within them, so every measure
    and breakdown comes from that small intermediate. Entry days are counted once per day across
    tables by OR-ing a bitmask per bucket.

    Doses are counted without generating a slot per day: a plan's regimen segments give
    days x distinct times; the days that need instants (a time-zone transition near them, or close
    to `now`, where a slot may still be ahead) are counted slot by slot (`es`, each looked up in the
    check-ins' slot key). Every other day's slots are due, and a taken check-in on such a day answers
    one exactly when its local time is one of the regimen's times that day.
    """
    pmd, cap, ad = o.PROGRAM_MONTH_DAYS, o.PROGRAM_MONTH_CAP, o.ACTIVE_DAYS
    r30, r90 = o.RETENTION_DAYS
    # A standard drink in hundredths of a gram; member values in units of their quanta (`_rounded`).
    drink_cg = _units(standard_drink_grams(o.REPORT_COUNTRY), _CENTI)
    per_cent = _units(Decimal(100), _PERCENT)  # a share -> percentage units
    drinks = _units(Decimal(1), _DRINKS)  # drinks (centigrams / a drink's) -> drink units
    week = 7 * drinks
    craving = _units(Decimal(1), _CRAVING)
    days = "(CAST(:pe AS date) - CAST(:ps AS date) + 1)"

    def dose(r: str, bits: str, slot: str, day: str = "") -> str:
        """Whether taken check-in `r` (its local time `at`) answers a dose on an ordinary day of the
        period: bit (`slot` - 1) x days + day of `bits`, where `slot` is the position of its plan and
        local time among the dose times the bits are laid out by (NULL if none: no dose); `day`: its
        local date, if computed already."""
        day = day or f"{r}.at::date"
        return f"""CASE WHEN {day} - CAST(:ps AS date) BETWEEN 0 AND {days} - 1
                    THEN get_bit({bits}, ({slot} - 1) * {days} + ({day} - CAST(:ps AS date))) = 1 END"""

    wants = set(breakdowns)
    with_pm = o.Breakdown.PROGRAM_MONTH in wants
    # A program month is one bucket, but for the capped month (every bucket from cap - 1 on).
    bucket_sums = "logged, abstinent, heavy_days, logged - abstinent, grams, scheduled, taken"
    pm_totals = f"""
        UNION ALL
        SELECT member_id, 'pm', g + 1, {bucket_sums}, bit_count(mask::bit(32)),
               last_entry > CAST(:pe AS date) - {ad} OR mask >> {pmd - ad} <> 0,
               pmf_logged, pmf_grams, pmf_ratings, pmf_intensity
        FROM buckets WHERE g BETWEEN 0 AND {cap - 2}
        UNION ALL
        SELECT member_id, 'pm', {cap}, {{window}}, max(last_entry) > CAST(:pe AS date) - {ad},
               sum(pmf_logged), sum(pmf_grams), sum(pmf_ratings), sum(pmf_intensity)
        FROM buckets WHERE g >= {cap - 1} GROUP BY member_id
    """
    window_sums = (
        "sum(logged) AS logged, sum(abstinent) AS abstinent, sum(heavy_days) AS heavy_days, "
        "sum(logged) - sum(abstinent) AS drinking_days, sum(grams) AS grams, sum(scheduled) AS scheduled, "
        "sum(taken) AS taken, sum(bit_count(mask::bit(32))) AS entry_days"
    )
    branches = [
        _bucket_branch(
            "logs",
            {
                n: n
                for n in (
                    "logged",
                    "abstinent",
                    "heavy_days",
                    "grams",
                    "pmf_logged",
                    "pmf_grams",
                    "mask",
                    "last_entry",
                )
            },
        ),
        _bucket_branch("crav", {n: n for n in ("pmf_ratings", "pmf_intensity", "mask", "last_entry")}),
        _bucket_branch("breath", {n: n for n in ("mask", "last_entry")}),
        _bucket_branch("ck_grouped", {n: n for n in ("mask", "last_entry", "taken")}),
        _bucket_branch("ck_odd", {"taken": "taken"}),
        _bucket_branch("pieces", {"scheduled": "scheduled"}),
        _bucket_branch("es_counts", {"scheduled": "scheduled", "taken": "taken"}),
        # Every bucket of the window, so that every window of every member has its row (`win_totals`),
        # entries or not.
        _bucket_branch("member_buckets", {}),
    ]
    buckets_union = "\n    UNION ALL\n    ".join(branches)
    bucket_columns = ", ".join(f"{agg} AS {name}" for name, agg in _BUCKET_COLUMNS.items())
    return f"""
WITH c AS NOT MATERIALIZED (
    SELECT m.id AS member_id, m.timezone AS zone, m.sex, m.goal_type, x.e,
           greatest(CAST(:ps AS date), x.e) AS p_start
    FROM members m
    CROSS JOIN LATERAL (SELECT (m.enrolled_at AT TIME ZONE m.timezone)::date AS e) AS x
    WHERE m.insurer_id = :insurer_id AND m.outcome_sharing AND x.e <= :pe
      AND m.id > :after AND m.id <= :upto
    -- In id order, so that the day rows are read member by member from their indexes.
    ORDER BY m.id
    -- A fence: each member's dates computed once, not at every use; still inlined into each join,
    -- so the planner knows member_id is a key (a MATERIALIZED CTE hides that).
    OFFSET 0
),
-- The cohort's 30-day buckets of enrollment that reach into the window (g >= 0: program month
-- g + 1, uncapped; [lo, hi] their days in the window) and, as g = -1, the days before it; in
-- (member, bucket) order, the order the day rows are read and grouped in (`_tagged`).
member_buckets AS NOT MATERIALIZED (
    SELECT c.member_id, c.zone, c.e, b.g,
           CASE WHEN b.g < 0 THEN '-infinity'::date ELSE greatest(c.p_start, c.e + {pmd} * b.g) END AS lo,
           CASE WHEN b.g < 0 THEN c.p_start - 1
                ELSE least(CAST(:pe AS date), c.e + ({pmd} * b.g + {pmd - 1})) END AS hi
    FROM c CROSS JOIN LATERAL generate_series(-1, (CAST(:pe AS date) - c.e) / {pmd}) AS b(g)
    WHERE b.g < 0 OR b.g >= (c.p_start - c.e) / {pmd}
    ORDER BY c.member_id, b.g
    OFFSET 0
),
logs AS (
    SELECT member_id, g,
           count(*) AS logged, count(*) FILTER (WHERE grams = 0) AS abstinent,
           count(*) FILTER (WHERE heavy) AS heavy_days, sum(grams) AS grams,
           count(*) FILTER (WHERE pf) AS pf_logged, sum(grams) FILTER (WHERE pf) AS pf_grams,
           count(*) FILTER (WHERE pmf) AS pmf_logged, sum(grams) FILTER (WHERE pmf) AS pmf_grams,
           count(*) FILTER (WHERE base) AS b_logged, sum(grams) FILTER (WHERE base) AS b_grams,
           bit_or(bit) AS mask, max(day) AS last_entry
    FROM {_tagged("drink_logs", "(l.grams_ethanol * 100)::integer AS grams, l.heavy", "l.deleted_at IS NULL")}
    GROUP BY member_id, g
),
crav AS (
    SELECT member_id, g,
           count(*) FILTER (WHERE pf) AS pf_ratings, sum(intensity) FILTER (WHERE pf) AS pf_intensity,
           count(*) FILTER (WHERE pmf) AS pmf_ratings, sum(intensity) FILTER (WHERE pmf) AS pmf_intensity,
           count(*) FILTER (WHERE base) AS b_ratings, sum(intensity) FILTER (WHERE base) AS b_intensity,
           bit_or(bit) AS mask, max(day) AS last_entry
    FROM {_tagged("cravings", "l.intensity")}
    GROUP BY member_id, g
),
breath AS (
    SELECT member_id, g, bit_or(bit) AS mask, max(day) AS last_entry
    FROM {_tagged("bac_readings")}
    GROUP BY member_id, g
),
-- Regimens in `domain.plans` order (the base, then steps by date; the later of equal dates wins),
-- and the days each is in force within the member's window.
regimens AS (
    SELECT p.id AS plan_id, p.member_id, p.start_date, p.end_date, c.p_start, 0 AS idx,
           p.start_date AS since, p.times
    FROM medication_plans p JOIN c ON c.member_id = p.member_id
    WHERE p.start_date <= :pe AND (p.end_date IS NULL OR p.end_date >= c.p_start)
    UNION ALL
    SELECT p.id, p.member_id, p.start_date, p.end_date, c.p_start,
           row_number() OVER (PARTITION BY p.id ORDER BY (s.step ->> 'from_date')::date, s.n),
           (s.step ->> 'from_date')::date,
           ARRAY(SELECT jsonb_array_elements_text(s.step -> 'times')::time)
    FROM medication_plans p JOIN c ON c.member_id = p.member_id
    CROSS JOIN LATERAL jsonb_array_elements(p.steps) WITH ORDINALITY AS s(step, n)
    WHERE p.start_date <= :pe AND (p.end_date IS NULL OR p.end_date >= c.p_start)
),
segments AS MATERIALIZED (
    SELECT plan_id, member_id, times, seg_from, seg_to,
           (SELECT count(DISTINCT t) FROM unnest(times) AS t) AS n
    FROM (
        SELECT r.plan_id, r.member_id, r.times,
               greatest(r.since, r.start_date, r.p_start) AS seg_from,
               least(lead(r.since) OVER (PARTITION BY r.plan_id ORDER BY r.idx) - 1,
                     r.end_date, CAST(:pe AS date)) AS seg_to
        FROM regimens r
    ) AS s
    WHERE seg_from <= seg_to
),
-- Days whose doses need their instants: near a change of the zone's UTC offset (a gap or a repeated
-- hour, possibly moving a slot to the next day), or from the day before `now`'s local date on (a
-- slot may still be ahead and counts only if answered). Offsets are compared at noon UTC each day.
noon AS (
    SELECT z.zone, CAST(:ps AS date) + i AS d,
           ((CAST(:ps AS date) + i + time '12:00') AT TIME ZONE 'UTC') AT TIME ZONE z.zone
               - (CAST(:ps AS date) + i + time '12:00') AS off
    FROM (SELECT DISTINCT zone FROM c) AS z
    CROSS JOIN generate_series(-3, CAST(:pe AS date) - CAST(:ps AS date) + 3) AS i
),
special AS MATERIALIZED (
    SELECT DISTINCT zone, d FROM (
        SELECT n.zone, n.d + k AS d
        FROM (SELECT zone, d, off, lead(off) OVER (PARTITION BY zone ORDER BY d) AS next_off FROM noon) AS n
        CROSS JOIN generate_series(-2, 3) AS k
        WHERE n.off <> n.next_off
        UNION ALL
        SELECT zone, d FROM noon WHERE d >= (CAST(:now AS timestamptz) AT TIME ZONE zone)::date - 1
    ) AS s
),
special_days AS (
    SELECT sg.member_id, sg.plan_id, c.zone, sp.d, sg.times, sg.n, (sp.d - c.e) / {pmd} AS g
    FROM segments sg JOIN c ON c.member_id = sg.member_id
    JOIN special sp ON sp.zone = c.zone AND sp.d BETWEEN sg.seg_from AND sg.seg_to
),
slot_local AS (
    SELECT sd.member_id, sd.plan_id, sd.zone, sd.d AS day, sd.g, sd.d + t AS local
    FROM special_days sd CROSS JOIN LATERAL unnest(sd.times) AS t
),
-- The slots of those days, one per instant and day (two times the clocks merge are one slot).
es AS MATERIALIZED (
    SELECT DISTINCT sl.member_id, sl.plan_id, sl.day, sl.g, {_SLOT_AT} AS at
    FROM slot_local sl
    CROSS JOIN LATERAL (SELECT sl.local AT TIME ZONE sl.zone AS at) AS pg
    CROSS JOIN LATERAL (
        SELECT (sl.local - ((pg.at - interval '3 hours') AT TIME ZONE sl.zone
                            - (pg.at - interval '3 hours') AT TIME ZONE 'UTC')) AT TIME ZONE 'UTC' AS at
    ) AS alt
),
-- Slots by arithmetic: days x times for every segment and bucket, less the special days' share,
-- plus the special days' slots that are due.
pieces AS (
    SELECT sg.member_id, j AS g,
           (least(sg.seg_to, c.e + {pmd} * j + {pmd - 1}) - greatest(sg.seg_from, c.e + {pmd} * j) + 1)
               * sg.n AS scheduled
    FROM segments sg JOIN c ON c.member_id = sg.member_id
    CROSS JOIN LATERAL generate_series((sg.seg_from - c.e) / {pmd}, (sg.seg_to - c.e) / {pmd}) AS j
    UNION ALL
    SELECT member_id, g, -n FROM special_days
),
-- The special days' slots, each with its check-in if any (one probe of the slot key's index).
es_counts AS (
    SELECT member_id, g, count(*) FILTER (WHERE at <= :now OR status IS NOT NULL) AS scheduled,
           count(*) FILTER (WHERE status = 'taken') AS taken
    FROM (
        SELECT es.member_id, es.g, es.at,
               (SELECT x.status FROM medication_checkins x
                 WHERE x.plan_id = es.plan_id AND x.scheduled_for = es.at AND x.member_id = es.member_id)
                   AS status
        FROM es
    ) AS answered
    GROUP BY member_id, g
),
-- Per zone, the runs of ordinary days (none of them special) in the noon table's range, each with
-- the zone's UTC offset, which holds from three days before the run to three days after it.
ordinary AS (
    SELECT zone, min(d) AS o_from, max(d) AS o_to, min(off) AS off
    FROM (
        SELECT n.zone, n.d, n.off,
               n.d - (row_number() OVER (PARTITION BY n.zone ORDER BY n.d))::integer AS run
        FROM noon n WHERE NOT EXISTS (SELECT FROM special s WHERE s.zone = n.zone AND s.d = n.d)
    ) AS x
    GROUP BY zone, run
),
-- Each regimen segment's ordinary days, once per distinct dose time.
dose_times AS (
    SELECT DISTINCT sg.plan_id, t AS at_time,
           greatest(sg.seg_from, o.o_from) AS d_from, least(sg.seg_to, o.o_to) AS d_to
    FROM segments sg JOIN c ON c.member_id = sg.member_id
    JOIN ordinary o ON o.zone = c.zone AND o.o_from <= sg.seg_to AND o.o_to >= sg.seg_from
    CROSS JOIN LATERAL unnest(sg.times) AS t
),
-- Per plan, its dose times and one bit per (time, day of the period): set when the day is ordinary
-- and the time is one of the regimen's that day (a plan's segments do not overlap). One row per
-- plan (laid end to end per member in `member_plans`; `ck_odd` probes it by plan id).
plan_bits AS MATERIALIZED (
    SELECT plan_id, array_agg(at_time ORDER BY at_time) AS times,
           string_agg(bits, '' ORDER BY at_time)::varbit AS bits
    FROM (
        SELECT plan_id, at_time,
               rpad(string_agg(lpad('', d_from - coalesce(prev_to + 1, CAST(:ps AS date)), '0')
                               || lpad('', d_to - d_from + 1, '1'), '' ORDER BY d_from), {days}, '0') AS bits
        FROM (
            SELECT plan_id, at_time, d_from, d_to,
                   lag(d_to) OVER (PARTITION BY plan_id, at_time ORDER BY d_from) AS prev_to
            FROM dose_times
        ) AS x
        GROUP BY plan_id, at_time
    ) AS y
    GROUP BY plan_id
),
-- Per zone, its longest run of ordinary days in the period, as the instants [t_from, t_to) its local
-- days span: the zone's UTC offset is `off` all through them, so an instant in the run is `off` from
-- its local time (the check-ins' `at`).
zone_run AS (
    SELECT DISTINCT ON (zone) zone, off,
           (o_from - off) AT TIME ZONE 'UTC' AS t_from, (o_to + 1 - off) AT TIME ZONE 'UTC' AS t_to
    FROM ordinary
    ORDER BY zone, least(o_to, CAST(:pe AS date)) - greatest(o_from, CAST(:ps AS date)) DESC
),
-- Per member, the plans' bits end to end (plans in id order) and the dose times they are laid out
-- by, each a key of the plan's place k among them and the time (day k of 2000 at that time), so a
-- check-in finds its bit from its own row (`_MEMBER_SLOT`), with no join per check-in; with them,
-- the run of the member's zone (`zone_run`), for the check-ins' local times (joined here, per plan:
-- joined to the buckets instead, it cost a sort of every bucket before the merge join below).
member_plans AS (
    SELECT member_id, min(t_from) AS t_from, min(t_to) AS t_to, min(off) AS off,
           array_agg(plan_id ORDER BY k) FILTER (WHERE o = 1) AS plan_ids,
           array_agg(DATE '2000-01-01' + k + t ORDER BY k, o) AS slot_keys,
           string_agg(bits::text, '' ORDER BY k) FILTER (WHERE o = 1)::varbit AS bits
    FROM (
        SELECT p.member_id, pb.plan_id, pb.times, pb.bits, zr.t_from, zr.t_to, zr.off,
               (row_number() OVER (PARTITION BY p.member_id ORDER BY pb.plan_id))::integer AS k
        FROM plan_bits pb JOIN medication_plans p ON p.id = pb.plan_id
        JOIN members m ON m.id = p.member_id LEFT JOIN zone_run zr ON zr.zone = m.timezone
    ) AS mp
    CROSS JOIN LATERAL unnest(mp.times) WITH ORDINALITY AS u(t, o)
    GROUP BY member_id
),
-- The buckets the check-ins are read by, each with its member's plans.
ck_buckets AS NOT MATERIALIZED (
    SELECT b.*, mp.plan_ids, mp.slot_keys, mp.bits, mp.t_from, mp.t_to, mp.off
    FROM member_buckets b LEFT JOIN member_plans mp ON mp.member_id = b.member_id
    ORDER BY b.member_id, b.g
    OFFSET 0
),
-- Each check-in is an entry on its date; taken on an ordinary day, it answers a dose when its local
-- time is one of the times of the regimen in force (special days' doses are `es_counts`; ordinary
-- days' doses are all due, so only taken ones count), counted in the bucket of its local day
-- (g_taken).
ck AS (
    SELECT r.member_id, r.g, r.bit, r.day,
           CASE WHEN {dose("r", "r.mp_bits", _MEMBER_SLOT, "r.at_day")}
                THEN (r.at_day - r.e) / {pmd} END AS g_taken
    FROM {
        _tagged(
            "medication_checkins",
            "CASE WHEN l.status = 'taken' THEN l.plan_id END AS taken_plan, c.e, "
            "l.at::date AS at_day, l.at::time AS at_time, "
            "c.plan_ids AS mp_ids, c.slot_keys AS mp_keys, c.bits AS mp_bits",
            buckets="ck_buckets",
            computed=(
                "CASE WHEN l.status <> 'taken' THEN NULL"
                " WHEN l.scheduled_for >= c.t_from AND l.scheduled_for < c.t_to"
                " THEN (l.scheduled_for AT TIME ZONE 'UTC') + c.off"
                " ELSE l.scheduled_for AT TIME ZONE c.zone END AS at"
            ),
        )
    }
),
-- Grouped by the bucket of the check-in's date: a dose whose local day is in another bucket is only
-- flagged (`odd`) and counted in `ck_odd`.
ck_grouped AS (
    SELECT member_id, g, bit_or(bit) AS mask, max(day) AS last_entry,
           count(*) FILTER (WHERE g_taken = g) AS taken, bool_or(g_taken <> g) AS odd
    FROM ck GROUP BY member_id, g
),
-- The doses whose local day is in another bucket than their check-in's date (rare: the member's
-- zone changed since): those members' taken check-ins read again through the (member_id, date) index.
ck_odd AS (
    SELECT x.member_id, (x.at::date - x.e) / {pmd} AS g, count(*) AS taken
    FROM (SELECT DISTINCT member_id FROM ck_grouped WHERE odd) AS om
    JOIN c ON c.member_id = om.member_id
    CROSS JOIN LATERAL (
        SELECT l.member_id, l.plan_id, c.e, l.scheduled_for AT TIME ZONE c.zone AS at,
               CASE WHEN l.date >= c.p_start THEN (l.date - c.e) / {pmd} ELSE -1 END AS g
        FROM medication_checkins l
        WHERE l.member_id = om.member_id AND l.date <= CAST(:pe AS date) AND l.status = 'taken'
    ) AS x
    JOIN (medication_plans p JOIN plan_bits pb ON pb.plan_id = p.id)
        ON p.id = x.plan_id AND p.member_id = x.member_id
    WHERE (x.at::date - x.e) / {pmd} <> x.g AND {dose("x", "pb.bits", "array_position(pb.times, x.at::time)")}
    GROUP BY x.member_id, (x.at::date - x.e) / {pmd}
),
-- Per member and 30-day bucket (-1: before the window): the small intermediate.
buckets AS MATERIALIZED (
    SELECT member_id, g, {bucket_columns}
    FROM (
    {buckets_union}
    ) AS u
    GROUP BY member_id, g
),
-- Per member: the baseline and the period's follow-up (read from the logs and cravings, not per
-- bucket), and the last entry.
member_base AS (
    SELECT member_id, coalesce(sum(b_logged), 0) AS b_logged, coalesce(sum(b_grams), 0) AS b_grams,
           coalesce(sum(b_ratings), 0) AS b_ratings, coalesce(sum(b_intensity), 0) AS b_intensity,
           sum(pf_logged) FILTER (WHERE g >= 0) AS f_logged, sum(pf_grams) FILTER (WHERE g >= 0) AS f_grams,
           sum(pf_ratings) FILTER (WHERE g >= 0) AS f_ratings,
           sum(pf_intensity) FILTER (WHERE g >= 0) AS f_intensity,
           max(last_entry) AS last_entry
    FROM (
        SELECT member_id, g, b_logged::integer AS b_logged, b_grams::integer AS b_grams,
               NULL::integer AS b_ratings, NULL::integer AS b_intensity,
               pf_logged::integer AS pf_logged, pf_grams::integer AS pf_grams,
               NULL::integer AS pf_ratings, NULL::integer AS pf_intensity, NULL::date AS last_entry
        FROM logs
        UNION ALL
        SELECT member_id, g, NULL, NULL, b_ratings::integer, b_intensity::integer, NULL, NULL,
               pf_ratings::integer, pf_intensity::integer, NULL
        FROM crav
        UNION ALL
        SELECT member_id, g, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, last_entry FROM buckets
    ) AS u
    GROUP BY member_id
),
-- Per member, the sums of each of its windows: the period, and each program month it was enrolled in
-- during the period (each bucket of the window has its row in `buckets`, even with nothing in it).
win_totals AS (
    SELECT member_id, 'period' AS kind, 0 AS pm, {window_sums},
           max(last_entry) > CAST(:pe AS date) - {ad} AS active,
           NULL::bigint AS f_logged, NULL::bigint AS f_grams, NULL::bigint AS f_ratings,
           NULL::bigint AS f_intensity
    FROM buckets WHERE g >= 0 GROUP BY member_id
    {pm_totals.format(window=window_sums) if with_pm else ""}
),
-- Per member: the baseline PACS (`domain.outcomes.pacs_baseline`), from the (member_id, week_of) key.
pacs_base AS (
    SELECT c.member_id, b.week_of AS b_week, b.total AS b_total
    FROM c CROSS JOIN LATERAL (
        SELECT p.week_of, p.total FROM pacs_reports p
        WHERE p.member_id = c.member_id AND p.week_of BETWEEN c.e - 6 AND c.e + {o.PACS_BASELINE_DAYS - 1}
        ORDER BY p.week_of LIMIT 1
    ) AS b
),
medication AS (
    SELECT p.member_id, CASE count(DISTINCT p.medication) WHEN 1 THEN min(p.medication)
                             ELSE '{o.MULTIPLE_MEDICATIONS}' END AS medication
    FROM medication_plans p JOIN c ON c.member_id = p.member_id
    WHERE p.start_date <= :pe AND (p.end_date IS NULL OR p.end_date >= c.p_start)
    GROUP BY p.member_id
),
w AS (
    SELECT t.member_id, t.kind, t.pm,
           CASE WHEN t.kind = 'period' THEN c.p_start ELSE greatest(c.p_start, c.e + {pmd} * (t.pm - 1)) END
               AS w_start,
           CASE WHEN t.kind = 'period' OR t.pm = {cap} THEN CAST(:pe AS date)
                ELSE least(CAST(:pe AS date), c.e + ({pmd} * t.pm - 1)) END AS w_end,
           c.e, c.sex, c.goal_type,
           coalesce(md.medication, '{o.NO_MEDICATION}') AS medication,
           mb.last_entry,
           coalesce(mb.b_logged, 0) AS b_logged, coalesce(mb.b_grams, 0)::bigint AS b_cg,
           coalesce(mb.b_ratings, 0) AS b_ratings, coalesce(mb.b_intensity, 0) AS b_intensity,
           coalesce(t.logged, 0) AS logged, coalesce(t.abstinent, 0) AS abstinent,
           coalesce(t.heavy_days, 0) AS heavy_days, coalesce(t.drinking_days, 0) AS drinking_days,
           coalesce(t.grams, 0)::bigint AS cg,
           coalesce(CASE WHEN t.kind = 'period' THEN mb.f_logged ELSE t.f_logged END, 0) AS f_logged,
           coalesce(CASE WHEN t.kind = 'period' THEN mb.f_grams ELSE t.f_grams END, 0)::bigint AS f_cg,
           coalesce(CASE WHEN t.kind = 'period' THEN mb.f_ratings ELSE t.f_ratings END, 0) AS f_ratings,
           coalesce(CASE WHEN t.kind = 'period' THEN mb.f_intensity ELSE t.f_intensity END, 0)
               AS f_intensity,
           coalesce(t.entry_days, 0) AS entry_days,
           coalesce(t.active, false) AS active,
           coalesce(t.scheduled, 0) AS scheduled, coalesce(t.taken, 0) AS taken,
           pb.b_week, pb.b_total
    FROM win_totals t
    JOIN c ON c.member_id = t.member_id
    LEFT JOIN pacs_base pb ON pb.member_id = t.member_id
    LEFT JOIN medication md ON md.member_id = t.member_id
    LEFT JOIN member_base mb ON mb.member_id = t.member_id
),
mw AS (
    SELECT w.kind, w.pm, w.goal_type, w.medication,
           w.w_end - w.w_start + 1 AS enrolled_days,
           w.entry_days, w.active,
           w.kind = 'period' AND w.e + {r30} <= :pe AS elig30,
           w.kind = 'period' AND w.e + {r30} <= :pe AND w.last_entry >= w.e + {r30} AS ret30,
           w.kind = 'period' AND w.e + {r90} <= :pe AS elig90,
           w.kind = 'period' AND w.e + {r90} <= :pe AND w.last_entry >= w.e + {r90} AS ret90,
           w.logged,
           -- Member values in units of their quanta (`_rounded`; the cells scale the sums back).
           CASE WHEN w.logged > 0 THEN {_rounded(f"{per_cent} * w.abstinent", "w.logged")} END AS pda,
           CASE WHEN w.logged > 0 THEN {_rounded(f"{per_cent} * w.heavy_days", "w.logged")} END AS phdd,
           w.logged > 0 AND w.heavy_days = 0 AS nhdd,
           w.drinking_days,
           CASE WHEN w.drinking_days > 0
                THEN {_rounded(f"{drinks} * w.cg", f"w.drinking_days * {drink_cg}")} END AS ddd,
           CASE WHEN w.b_logged > 0 AND w.f_logged > 0
                THEN {_rounded(f"{week} * w.b_cg", f"w.b_logged * {drink_cg}")} END AS wb,
           CASE WHEN w.b_logged > 0 AND w.f_logged > 0
                THEN {_rounded(f"{week} * w.f_cg", f"w.f_logged * {drink_cg}")} END AS wf,
           CASE WHEN w.b_logged > 0 AND w.f_logged > 0
                THEN ({_who_case("w.b_cg", "w.b_logged")}) - ({_who_case("w.f_cg", "w.f_logged")})
           END AS who_drop,
           CASE WHEN w.b_ratings > 0 AND w.f_ratings > 0
                THEN {_rounded(f"{craving} * w.b_intensity", "w.b_ratings")} END AS cb,
           CASE WHEN w.b_ratings > 0 AND w.f_ratings > 0
                THEN {_rounded(f"{craving} * w.f_intensity", "w.f_ratings")} END AS cf,
           -- PACS: the baseline's total and the window's follow-up (`domain.outcomes.pacs_follow_up`).
           CASE WHEN pf.total IS NOT NULL THEN w.b_total END AS pacs_b,
           pf.total AS pacs_f,
           w.scheduled, w.taken
    FROM w
    LEFT JOIN LATERAL (
        SELECT p.total FROM pacs_reports p
        WHERE w.b_week IS NOT NULL AND p.member_id = w.member_id
          AND p.week_of BETWEEN greatest(w.w_start, w.b_week + {o.PACS_FOLLOW_UP_MIN_DAYS}) AND w.w_end
        ORDER BY p.week_of DESC LIMIT 1
    ) AS pf ON true
)
SELECT '{o.TOTAL}' AS breakdown, '{o.ALL}' AS category, {_AGGREGATES} FROM mw WHERE kind = 'period'
{_GOAL_TYPE if o.Breakdown.GOAL_TYPE in wants else ""}
{_MEDICATION if o.Breakdown.MEDICATION in wants else ""}
{_PROGRAM_MONTH.format(cap=cap) if with_pm else ""}
"""


_AGGREGATES = f"""
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
    coalesce(sum(pda), 0) * {_literal(_PERCENT)} AS pda_sum,
    coalesce(sum(phdd), 0) * {_literal(_PERCENT)} AS phdd_sum,
    count(*) FILTER (WHERE nhdd) AS nhdd_members,
    count(ddd) AS drinking_members,
    coalesce(sum(drinking_days) FILTER (WHERE ddd IS NOT NULL), 0) AS drinking_days,
    coalesce(sum(ddd), 0) * {_literal(_DRINKS)} AS ddd_sum,
    count(wb) AS change_members,
    coalesce(sum(wb), 0) * {_literal(_DRINKS)} AS weekly_baseline_sum,
    coalesce(sum(wf), 0) * {_literal(_DRINKS)} AS weekly_follow_up_sum,
    count(*) FILTER (WHERE who_drop >= 1) AS who_improved_1,
    count(*) FILTER (WHERE who_drop >= 2) AS who_improved_2,
    count(cb) AS craving_members,
    coalesce(sum(cb), 0) * {_literal(_CRAVING)} AS craving_baseline_sum,
    coalesce(sum(cf), 0) * {_literal(_CRAVING)} AS craving_follow_up_sum,
    count(pacs_f) AS pacs_members,
    coalesce(sum(pacs_b), 0) AS pacs_baseline_sum,
    coalesce(sum(pacs_f), 0) AS pacs_follow_up_sum,
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
    conn.execute(text(f"SET LOCAL work_mem = '{WORK_MEM}'"))
    ranges, members = chunk_boundaries(conn, insurer_id=insurer_id, period=period, chunk=chunk)
    # The chunk statement's estimates are large (date ranges, generate_series), which switches on JIT
    # compilation with every option; compiling it costs seconds per chunk, more than it saves on a
    # small chunk.
    if min(members, chunk) < JIT_MIN_MEMBERS:
        conn.execute(text("SET LOCAL jit = off"))
    # Sorting the cohort by id for the index reads, the planner would hand the 100,000 members to a
    # parallel worker (a Gather Merge per use): no faster, and the backend's CPU would no longer be
    # all of the export's (the benchmark reports it).
    conn.execute(text("SET LOCAL max_parallel_workers_per_gather = 0"))
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
