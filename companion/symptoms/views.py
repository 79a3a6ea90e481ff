"""Symptom reports API (API.md "Tracking"): `POST/GET /symptom-reports`, `GET /symptoms`."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_login import current_user
from flask_smorest import Blueprint

from companion.accounts.models import Role, local_today
from companion.auth.access import allow
from companion.db import unit_of_work, utcnow
from companion.pagination import RangeArgsSchema, resolve_range
from companion.symptoms import schemas, services
from companion.sync_seq import current_login
from companion.tracking.services import CREATED

blp = Blueprint(
    "symptoms", __name__, url_prefix="/api/v1", description="Symptoms reported at any time, plan or not"
)


@blp.route("/symptoms")
class Symptoms(MethodView):
    @allow(Role.MEMBER, Role.COACH, Role.ADMIN, Role.INSURER_ANALYST)
    @blp.response(200, schemas.SymptomListSchema)
    def get(self):
        """Every symptom code a member may report: each medication's side effects, then general and
        withdrawal symptoms."""
        return {"items": schemas.symptom_catalogue()}


@blp.route("/symptom-reports")
class SymptomReports(MethodView):
    @allow(Role.MEMBER)
    @blp.arguments(RangeArgsSchema(), location="query")
    @blp.response(200, schemas.SymptomReportPageSchema)
    def get(self, args: dict[str, Any]):
        """Symptom reports in a local date range (default: the last 30 days), oldest first."""
        member = current_user.member
        window = resolve_range(args, local_today(member, utcnow()))
        return services.list_symptom_reports(member, window, cursor=args.get("cursor"), limit=args["limit"])

    @allow(Role.MEMBER)
    @blp.arguments(schemas.SymptomReportInputSchema())
    @blp.response(201, schemas.SymptomReportSchema)
    @blp.alt_response(
        200, schema=schemas.SymptomReportSchema, description="The same id and body again: the stored record."
    )
    @blp.alt_response(
        409, description="The same id with a different body; `error.current` holds the stored one."
    )
    def post(self, data: dict[str, Any]):
        """Report symptoms at any time, with or without a plan in force (idempotent by the phone's id).
        They feed the same safety rules as side effects reported on a dose check-in."""
        with unit_of_work():
            report, outcome = services.record_symptom_report(
                current_user.member, data, origin=current_login(), now=utcnow()
            )
            body = services.report_view(report)
        return body, 201 if outcome == CREATED else 200
