"""Symptom reports: recorded once by the phone's id (like cravings), on the member's local date; each
new one asks for a safety scan (through `_record_once`)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select

from companion import privacy
from companion.accounts.models import Member
from companion.db import session
from companion.domain import localtime
from companion.domain.types import DateRange
from companion.symptoms.models import SymptomReport
from companion.symptoms.schemas import SymptomReportSchema
from companion.tracking import lists, rowset
from companion.tracking import services as tracking


def report_view(report: SymptomReport) -> dict[str, Any]:
    return {
        "id": report.id,
        "reported_at": report.reported_at,
        "date": report.date,
        "symptoms": [{"code": s["code"], "severity": s["severity"]} for s in report.symptoms],
        "note": report.note,
        "created_at": report.created_at,
    }


def _same(stored: SymptomReport, new: dict[str, Any]) -> bool:
    return (stored.reported_at, stored.symptoms, stored.note) == (
        new["reported_at"],
        new["symptoms"],
        new["note"],
    )


def _dump(stored: SymptomReport) -> dict[str, Any]:
    return SymptomReportSchema().dump(report_view(stored))


#: How a new report is inserted (tracking/rowset.py: one statement, its safety request riding on it).
SYMPTOM_REPORTS = rowset.RowSpec(
    "symptom_reports",
    (
        rowset.Column("id", "uuid"),
        rowset.Column("reported_at", "timestamptz"),
        rowset.Column("date", "date"),
        rowset.Column("symptoms", "jsonb"),
        rowset.Column("codes", "text[]"),
        rowset.Column("note", "text"),
        rowset.Column("created_at", "timestamptz"),
    ),
    conflict=("member_id", "id"),
    key=("id",),
)
SYMPTOM_REPORT = tracking.ById(SymptomReport, SYMPTOM_REPORTS, _same, _dump)


def record_symptom_report(
    member: Member, data: dict[str, Any], *, origin: uuid.UUID | None, now: datetime
) -> tuple[SymptomReport, str]:
    """`POST /symptom-reports` (and a sync item): stored once; the same id and body again is
    `unchanged`, the same id with another body a 409 holding the stored one."""
    tracking.check_instant("reported_at", data["reported_at"], member=member, now=now)
    symptoms = [{"code": s["code"], "severity": s["severity"]} for s in data["symptoms"]]
    values = {
        "reported_at": data["reported_at"],
        "date": localtime.local_date(data["reported_at"], member.timezone),
        "symptoms": symptoms,
        "codes": [s["code"] for s in symptoms],
        "note": data.get("note"),
    }
    return tracking._record_once(SYMPTOM_REPORT, member, data["id"], values, origin=origin, now=now)


def list_symptom_reports(
    member: Member, window: DateRange, *, cursor: str | None, limit: int
) -> dict[str, Any]:
    return lists.list_by_instant(
        SymptomReport, SymptomReport.reported_at, member, window, cursor, limit, report_view
    )


def _export(member_id: uuid.UUID) -> dict[str, Any]:
    reports = session.execute(
        select(SymptomReport).where(SymptomReport.member_id == member_id).order_by(SymptomReport.reported_at)
    ).scalars()
    return {"symptom_reports": SymptomReportSchema(many=True).dump([report_view(r) for r in reports])}


privacy.register_exporter("symptoms", _export)
