"""Building insurer exports: the worker's task body, the command line's export, the release ledger.

Owns its transactions (docs/architecture.md, "Who commits"): a build commits its claim, its progress,
the release ledger (under the insurer's row lock, so two reports are checked one after the other) and
its file, each on its own, so a worker killed half-way leaves a job the sweep can queue again; the
cohort is read in a REPEATABLE READ, READ ONLY transaction on a connection of its own.

A job is a row first and `exports.build` is sent after commit; a message lost on the way (Redis down, a
worker killed) is caught by `resend_stale`, which beat runs every minute: a queued job not started within
STALE_QUEUED is sent again, and a running job whose heartbeat stopped for STALE_RUNNING is queued
again, up to MAX_ATTEMPTS builds. Building is idempotent: it claims the job (queued -> running)
under a row lock, so a duplicate message finds nothing to do.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import or_, select, update

from companion import jobs
from companion.accounts.models import Insurer
from companion.audit import services as audit
from companion.db import session, unit_of_work, utcnow
from companion.domain import outcomes
from companion.domain.errors import InvalidInput, NotFound
from companion.exports import formats, queries
from companion.exports.models import ExportJob, ExportRelease, ExportStatus

log = logging.getLogger(__name__)

#: A queued job whose build has not started this long after its message was sent is sent again.
STALE_QUEUED = timedelta(minutes=3)
#: A running job whose heartbeat is this old lost its worker; it is queued again.
STALE_RUNNING = timedelta(minutes=15)
#: Builds tried before a job is failed for good.
MAX_ATTEMPTS = 3
#: Progress is written to the job at most this often (every chunk would be a write per 2,000 members).
PROGRESS_EVERY = timedelta(seconds=2)


@dataclass(frozen=True, slots=True)
class ExportFile:
    content: bytes
    content_type: str
    filename: str
    row_count: int


# --- the report itself (shared by the worker and the command line) --------------------------------


def build_file(
    insurer_id: uuid.UUID,
    period: outcomes.Period,
    fmt: str,
    breakdowns: Sequence[outcomes.Breakdown],
    *,
    now: datetime,
    progress: Callable[[int, int], None] | None = None,
) -> ExportFile:
    """Compute the report in PostgreSQL, suppress it and render it.

    The cohort and its rows are read in one REPEATABLE READ, READ ONLY transaction on a connection
    of its own: who consents, and what they logged, hold still while the chunks run.
    """
    engine = session.get_bind()
    with engine.connect() as conn:
        conn = conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
        with conn.begin():
            totals = queries.cohort_totals(
                conn, insurer_id=insurer_id, period=period, breakdowns=breakdowns, now=now, progress=progress
            )
    forced = release(insurer_id, period, totals, breakdowns, now=now)
    report = outcomes.build_report(totals, period=period, breakdowns=breakdowns, forced=forced)
    content = formats.render(report, fmt, now=now)
    name = f"outcomes-{period.start}-{period.end}.{formats.EXTENSIONS[fmt]}"
    return ExportFile(content, formats.CONTENT_TYPES[fmt], name, report.row_count)


def _cell_name(key: outcomes.CellKey) -> str:
    return f"{key[0]}/{key[1]}"


def release(
    insurer_id: uuid.UUID,
    period: outcomes.Period,
    totals: Mapping[outcomes.CellKey, outcomes.CellTotals],
    breakdowns: Sequence[outcomes.Breakdown],
    *,
    now: datetime,
) -> dict[outcomes.CellKey, frozenset[str]]:
    """Check the report against the insurer's release ledger and add it there, in a transaction of its
    own that holds the insurer's row: two reports built at once are checked one after the other.
    Returns the cells to hide beyond rules 1-3. Releases whose periods overlap this one are compared
    (their members overlap, so counts can be subtracted); a release recorded for a build that is then
    lost only makes later reports more cautious."""
    with unit_of_work():
        session.execute(select(Insurer.id).where(Insurer.id == insurer_id).with_for_update())
        earlier = [
            {tuple(name.split("/", 1)): counts for name, counts in row.items()}
            for row in session.execute(
                select(ExportRelease.cells).where(
                    ExportRelease.insurer_id == insurer_id,
                    ExportRelease.start_month <= period.end.first_day,
                    ExportRelease.end_month >= period.start.first_day,
                )
            ).scalars()
        ]
        forced = outcomes.release_forced(totals, breakdowns, earlier)
        published = outcomes.published_counts(totals, breakdowns, forced)
        session.add(
            ExportRelease(
                insurer_id=insurer_id,
                start_month=period.start.first_day,
                end_month=period.end.first_day,
                released_at=now,
                cells={_cell_name(key): counts for key, counts in published.items()},
            )
        )
    return forced


def breakdowns_of(values: Sequence[str]) -> list[outcomes.Breakdown]:
    return [outcomes.Breakdown(v) for v in dict.fromkeys(values)]


def _period(job: ExportJob) -> outcomes.Period:
    """The job's period; a period ending in the month it was requested in runs to the day before."""
    start, end = outcomes.Month.of(job.start_month), outcomes.Month.of(job.end_month)
    requested_on = job.created_at.astimezone(UTC).date()
    if end == outcomes.Month.of(requested_on):
        return outcomes.partial_period(start, end, today=requested_on)
    return outcomes.Period(start, end)


# --- the worker's side ---------------------------------------------------------------------------


def claim(export_id: uuid.UUID, *, now: datetime) -> ExportJob | None:
    """queued -> running, under a row lock; None when there is nothing to do (done, failed, running,
    or claimed by another worker right now). Flushes; the caller commits."""
    job = session.execute(
        select(ExportJob).where(ExportJob.id == export_id).with_for_update(skip_locked=True)
    ).scalar_one_or_none()
    if job is None or job.status != ExportStatus.QUEUED:
        return None
    job.status = ExportStatus.RUNNING.value
    job.attempts += 1
    job.started_at = job.heartbeat_at = now
    job.progress = 0
    job.error = None
    session.flush()
    return job


def build_export(export_id: uuid.UUID, *, now: datetime) -> str:
    """The whole task body: claim, build with progress, store. Commits its own steps; returns what
    happened ("done", "failed", "requeued", "skipped")."""
    with unit_of_work():
        job = claim(export_id, now=now)
        if job is None:
            return "skipped"
        insurer_id, period, fmt = job.insurer_id, _period(job), job.format
        breakdowns = breakdowns_of(job.breakdown)
    last_write = [now]

    def progress(done: int, total: int) -> None:
        at = utcnow()
        if at - last_write[0] < PROGRESS_EVERY and done < total:
            return
        last_write[0] = at
        percent = min(99, done * 100 // total) if total else 99
        with unit_of_work():
            session.execute(
                update(ExportJob)
                .where(ExportJob.id == export_id, ExportJob.status == ExportStatus.RUNNING)
                .values(progress=percent, heartbeat_at=at)
            )

    try:
        built = build_file(insurer_id, period, fmt, breakdowns, now=now, progress=progress)
    except Exception:
        log.exception("export build failed", extra={"export_id": str(export_id)})
        with unit_of_work():
            job = session.get(ExportJob, export_id, with_for_update=True)
            if job is None or job.status != ExportStatus.RUNNING:
                return "skipped"
            retry = job.attempts < MAX_ATTEMPTS
            job.status = (ExportStatus.QUEUED if retry else ExportStatus.FAILED).value
            job.finished_at = None if retry else utcnow()
            job.error = "build raised an error"
            job.sent_at = None if retry else job.sent_at  # the sweep sends it again soon
            return "requeued" if retry else "failed"
    with unit_of_work():
        job = session.get(ExportJob, export_id, with_for_update=True)
        if job is None or job.status != ExportStatus.RUNNING:
            return "skipped"  # re-queued by the sweep meanwhile: the newer build will store its file
        job.status = ExportStatus.DONE.value
        job.progress = 100
        job.content = built.content
        job.content_type = built.content_type
        job.row_count = built.row_count
        job.finished_at = utcnow()
        audit.record(
            "export.built",
            actor_id=job.requested_by,
            now=job.finished_at,
            export_id=str(job.id),
            insurer_id=str(job.insurer_id),
            period={"start": str(period.start), "end": str(period.end)},
            format=fmt,
            rows=built.row_count,
        )
    return "done"


def resend_stale(*, now: datetime) -> int:
    """The safety net beat runs: re-send queued jobs whose message seems lost, re-queue running jobs
    whose worker died (or fail them after MAX_ATTEMPTS). Returns how many were sent. Flushes."""
    stale = session.execute(
        select(ExportJob)
        .where(
            or_(
                (ExportJob.status == ExportStatus.QUEUED)
                & (or_(ExportJob.sent_at.is_(None), ExportJob.sent_at < now - STALE_QUEUED)),
                (ExportJob.status == ExportStatus.RUNNING) & (ExportJob.heartbeat_at < now - STALE_RUNNING),
            )
        )
        .order_by(ExportJob.created_at)
        .with_for_update(skip_locked=True)
    ).scalars()
    sent = 0
    for job in stale:
        if job.status == ExportStatus.RUNNING and job.attempts >= MAX_ATTEMPTS:
            job.status = ExportStatus.FAILED.value
            job.error = "the worker building it was lost"
            job.finished_at = now
            continue
        job.status = ExportStatus.QUEUED.value
        job.sent_at = now
        jobs.enqueue_after_commit(jobs.BUILD_EXPORT, export_id=str(job.id))
        sent += 1
    session.flush()
    return sent


# --- the command line's side ---------------------------------------------------------------------


def export_for_insurer(
    code: str,
    start: str,
    end: str,
    fmt: str,
    breakdowns: Sequence[str],
    *,
    now: datetime,
    progress: Callable[[int, int], None] | None = None,
) -> ExportFile:
    """`companion export`: the same file as the API's, built here and now, and audited."""
    insurer = session.execute(
        select(Insurer).where(Insurer.code == code.strip().upper())
    ).scalar_one_or_none()
    if insurer is None:
        raise NotFound(f"No insurer with code {code}.")
    if fmt not in formats.CONTENT_TYPES:
        raise InvalidInput(f"Unknown format {fmt}.")
    period = outcomes.make_period(start, end, today=now.date())
    built = build_file(insurer.id, period, fmt, breakdowns_of(breakdowns), now=now, progress=progress)
    audit.record(
        "export.built_by_command_line",
        actor_id=None,
        now=now,
        insurer_id=str(insurer.id),
        period={"start": str(period.start), "end": str(period.end)},
        format=fmt,
        rows=built.row_count,
    )
    return built
