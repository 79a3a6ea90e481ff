"""Tracking API (API.md "Tracking"): drink logs, cravings, breath readings, sync and the summary."""

from __future__ import annotations

from typing import Any

from flask import current_app
from flask.views import MethodView
from flask_login import current_user
from flask_smorest import Blueprint

from companion import metrics
from companion.accounts.models import Role, local_today
from companion.api import per_item_body
from companion.auth.access import allow
from companion.db import unit_of_work, utcnow
from companion.pagination import RangeArgsSchema, resolve_range
from companion.sync_seq import current_login
from companion.tracking import lists, schemas, services, summary, sync

blp = Blueprint("tracking", __name__, url_prefix="/api/v1", description="What members log, offline-first")

DATE_PARAMETER = {
    "in": "path",
    "name": "day",
    "required": True,
    "schema": {"type": "string", "format": "date"},
    "description": "The member's local date (YYYY-MM-DD).",
}


def _member():
    return current_user.member


def _window(args: dict[str, Any]):
    return resolve_range(args, local_today(_member(), utcnow()))


@blp.route("/drink-logs")
class DrinkLogs(MethodView):
    @allow(Role.MEMBER)
    @blp.arguments(RangeArgsSchema(), location="query")
    @blp.response(200, schemas.DrinkLogPageSchema)
    def get(self, args: dict[str, Any]):
        """The member's drink logs in a local date range (default: the last 30 days), oldest first."""
        return lists.list_drink_logs(_member(), _window(args), cursor=args.get("cursor"), limit=args["limit"])


@blp.route("/drink-logs/<day>", parameters=[DATE_PARAMETER])
class DrinkLog(MethodView):
    @allow(Role.MEMBER)
    @blp.response(200, schemas.DrinkLogSchema)
    @blp.alt_response(404, description="No log for this date.")
    def get(self, day: str):
        """One local day's log."""
        member = _member()
        return services.drink_log_view(services.get_drink_log(member, services.parse_log_date(day)), member)

    @allow(Role.MEMBER)
    @blp.arguments(schemas.DrinkLogInputSchema())
    @blp.response(
        200, schemas.DrinkLogSchema, description="An existing log replaced, or the same body again."
    )
    @blp.alt_response(201, schema=schemas.DrinkLogSchema, description="The first log of this date.")
    @blp.alt_response(
        409, description="`updated_at` is older than the stored log's; `error.current` holds it."
    )
    @blp.alt_response(422, description="Invalid body, or a date after today or more than 60 days ago.")
    def put(self, data: dict[str, Any], day: str):
        """Create or replace one local day's log. Safe to retry."""
        member = _member()
        with unit_of_work():
            log, outcome = services.put_drink_log(
                member, services.parse_log_date(day), data, origin=current_login(), now=utcnow()
            )
            body = services.drink_log_view(log, member)
        return body, 201 if outcome == services.CREATED else 200

    @allow(Role.MEMBER)
    @blp.response(204)
    @blp.alt_response(404, description="No log for this date.")
    def delete(self, day: str):
        """Delete one local day's log (the day becomes missing, not zero)."""
        with unit_of_work():
            services.delete_drink_log(
                _member(), services.parse_log_date(day), origin=current_login(), now=utcnow()
            )


@blp.route("/cravings")
class Cravings(MethodView):
    @allow(Role.MEMBER)
    @blp.arguments(RangeArgsSchema(), location="query")
    @blp.response(200, schemas.CravingPageSchema)
    def get(self, args: dict[str, Any]):
        """Cravings in a local date range, oldest first."""
        return lists.list_cravings(_member(), _window(args), cursor=args.get("cursor"), limit=args["limit"])

    @allow(Role.MEMBER)
    @blp.arguments(schemas.CravingInputSchema())
    @blp.response(201, schemas.CravingSchema)
    @blp.alt_response(
        200, schema=schemas.CravingSchema, description="The same id and body again: the stored record."
    )
    @blp.alt_response(
        409, description="The same id with a different body; `error.current` holds the stored one."
    )
    def post(self, data: dict[str, Any]):
        """Record a craving rating (idempotent by the phone's id)."""
        with unit_of_work():
            craving, outcome = services.record_craving(_member(), data, origin=current_login(), now=utcnow())
            body = services.craving_view(craving)
        return body, 201 if outcome == services.CREATED else 200


@blp.route("/bac-readings")
class BacReadings(MethodView):
    @allow(Role.MEMBER)
    @blp.arguments(RangeArgsSchema(), location="query")
    @blp.response(200, schemas.BacReadingPageSchema)
    def get(self, args: dict[str, Any]):
        """Breath alcohol readings in a local date range, oldest first."""
        return lists.list_bac_readings(
            _member(), _window(args), cursor=args.get("cursor"), limit=args["limit"]
        )

    @allow(Role.MEMBER)
    @blp.arguments(schemas.BacReadingInputSchema())
    @blp.response(201, schemas.BacReadingSchema)
    @blp.alt_response(200, schema=schemas.BacReadingSchema, description="The same id and body again.")
    @blp.alt_response(409, description="The same id with a different body.")
    def post(self, data: dict[str, Any]):
        """Record a breathalyzer reading (idempotent by the phone's id)."""
        with unit_of_work():
            reading, outcome = services.record_bac_reading(
                _member(), data, origin=current_login(), now=utcnow()
            )
            body = services.bac_view(reading)
        return body, 201 if outcome == services.CREATED else 200


@blp.route("/sync")
class Sync(MethodView):
    @allow(Role.MEMBER)
    @blp.doc(operationId="getSyncChanges")
    @blp.arguments(schemas.SyncQuerySchema(), location="query")
    @blp.response(200, schemas.SyncChangesSchema)
    def get(self, args: dict[str, Any]):
        """Records changed since the cursor by the member's other devices or by staff, oldest first."""
        return sync.changes_since(_member(), args.get("since"), login=current_login())

    @allow(Role.MEMBER)
    @blp.doc(operationId="syncBatch")
    @blp.arguments(schemas.SyncBatchSchema())
    @blp.response(200, schemas.SyncResultsSchema)
    @blp.alt_response(413, description="More than 500 items.")
    @per_item_body("items")
    def post(self, data: dict[str, Any]):
        """Store a batch written offline. Each item stands alone and answers its own status; replay-safe."""
        with unit_of_work():
            results = sync.apply_batch(_member(), data["items"], origin=current_login(), now=utcnow())
        metrics.count_sync_items(data["items"], results, sync.HANDLERS)  # after the commit: what was stored
        # The results are JSON-ready dicts of SyncResultSchema's fields; dumping 500 of them through the
        # schema again cost a fifth of a batch's CPU (docs/performance/member-writes.md).
        return current_app.json.response({"results": results})


@blp.route("/me/summary", methods=["GET"])
@blp.doc(operationId="getSummary")
@allow(Role.MEMBER)
@blp.response(200, schemas.SummarySchema)
def member_summary():
    """Streaks, this week against the goal, the last 30 days, the craving trend and dose adherence."""
    return summary.member_summary(_member(), now=utcnow())
