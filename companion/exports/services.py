"""Insurer exports, the API's side: request (a row, then a message), status, download. Flushes; the view
commits. Building (the worker, the command line) is `exports.build_tx`, which owns its transactions.

An analyst sees only their own insurer's exports; anything else is a 404. Every export is audited:
requested, built, downloaded, and built by the command line.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from companion import jobs
from companion.accounts.models import User
from companion.audit import services as audit
from companion.db import session
from companion.domain import outcomes
from companion.domain.errors import Conflict, NotFound
from companion.exports import formats
from companion.exports.build_tx import ExportFile, breakdowns_of
from companion.exports.models import ExportJob, ExportStatus


def request_export(user: User, data: dict[str, Any], *, now: datetime) -> ExportJob:
    """Queue an export of the analyst's own insurer; `exports.build` is sent once this commits."""
    if user.insurer_id is None:
        raise NotFound("No insurer plan.")
    period = outcomes.make_period(data["period"]["start"], data["period"]["end"], today=now.date())
    job = ExportJob(
        insurer_id=user.insurer_id,
        requested_by=user.id,
        start_month=period.start.first_day,
        end_month=period.end.first_day,
        format=data["format"],
        breakdown=[b.value for b in breakdowns_of(data.get("breakdown") or [])],
        status=ExportStatus.QUEUED.value,
        progress=0,
        attempts=0,
        created_at=now,
        sent_at=now,
    )
    session.add(job)
    session.flush()
    audit.record(
        "export.requested",
        actor_id=user.id,
        now=now,
        export_id=str(job.id),
        insurer_id=str(job.insurer_id),
        period={"start": str(period.start), "end": str(period.end)},
        format=job.format,
        breakdown=job.breakdown,
    )
    jobs.enqueue_after_commit(jobs.BUILD_EXPORT, export_id=str(job.id))
    return job


def own_export(user: User, export_id: uuid.UUID) -> ExportJob:
    """The analyst's insurer's export; another insurer's, or none, is the same 404."""
    job = session.get(ExportJob, export_id)
    if job is None or user.insurer_id is None or job.insurer_id != user.insurer_id:
        raise NotFound("No such export.")
    return job


def export_view(job: ExportJob) -> dict[str, Any]:
    done = job.status == ExportStatus.DONE
    return {
        "id": job.id,
        "status": job.status,
        "period": {
            "start": str(outcomes.Month.of(job.start_month)),
            "end": str(outcomes.Month.of(job.end_month)),
        },
        "format": job.format,
        "breakdown": list(job.breakdown),
        "progress": job.progress,
        "created_at": job.created_at,
        "finished_at": job.finished_at,
        "row_count": job.row_count,
        "download_url": f"/api/v1/insurer/exports/{job.id}/file" if done else None,
        # Never the exception text: it could hold data. The log has the details.
        "error": "The export could not be built." if job.status == ExportStatus.FAILED else None,
    }


def download(user: User, export_id: uuid.UUID, *, now: datetime) -> ExportFile:
    """The built file; 409 until the job is done."""
    job = own_export(user, export_id)
    if job.status != ExportStatus.DONE or job.content is None:
        raise Conflict(f"The export is {job.status}, not done.", export_status=job.status)
    audit.record(
        "export.downloaded", actor_id=user.id, now=now, export_id=str(job.id), insurer_id=str(job.insurer_id)
    )
    name = f"outcomes-{outcomes.Month.of(job.start_month)}-{outcomes.Month.of(job.end_month)}"
    return ExportFile(
        job.content,
        job.content_type or "application/octet-stream",
        f"{name}.{formats.EXTENSIONS[job.format]}",
        job.row_count or 0,
    )
