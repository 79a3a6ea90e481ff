"""PACS API (API.md "Tracking"): `POST /pacs`, `GET /pacs?from&to`."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_login import current_user
from flask_smorest import Blueprint

from companion.accounts.models import Role, local_today
from companion.auth.access import allow
from companion.db import unit_of_work, utcnow
from companion.pacs import schemas, services
from companion.pagination import RangeArgsSchema, resolve_range
from companion.sync_seq import current_login
from companion.tracking.services import CREATED

blp = Blueprint("pacs", __name__, url_prefix="/api/v1", description="The weekly Penn Alcohol Craving Scale")


@blp.route("/pacs")
class Pacs(MethodView):
    @allow(Role.MEMBER)
    @blp.arguments(RangeArgsSchema(), location="query")
    @blp.response(200, schemas.PacsPageSchema)
    def get(self, args: dict[str, Any]):
        """PACS whose week starts in a local date range (default: the last 30 days), oldest first."""
        member = current_user.member
        window = resolve_range(args, local_today(member, utcnow()))
        return services.list_pacs(member, window, cursor=args.get("cursor"), limit=args["limit"])

    @allow(Role.MEMBER)
    @blp.doc(operationId="createPacs")  # not the derived `createPac`: PACS is one scale, not a plural
    @blp.arguments(schemas.PacsInputSchema())
    @blp.response(201, schemas.PacsSchema)
    @blp.alt_response(
        200, schema=schemas.PacsSchema, description="The same id and body again: the stored record."
    )
    @blp.alt_response(
        409,
        description="The same id with a different body, or another id for a week already answered; "
        "`error.current` holds the stored one.",
    )
    @blp.alt_response(422, description="Invalid body; `week_of` not a Monday, after this week or too old.")
    def post(self, data: dict[str, Any]):
        """Record the week's PACS (5 items, 0-6 each): the answer carries its `total` (0-30).
        Idempotent by the phone's id; one a week."""
        with unit_of_work():
            report, outcome = services.record_pacs(
                current_user.member, data, origin=current_login(), now=utcnow()
            )
            body = services.pacs_view(report)
        return body, 201 if outcome == CREATED else 200
