"""Insurer API (API.md "Insurer"): role insurer_analyst, their own plan's aggregates only."""

from __future__ import annotations

import uuid
from typing import Any

from flask import Response, url_for
from flask_login import current_user
from flask_smorest import Blueprint

from companion.accounts.models import Role
from companion.auth.access import allow
from companion.db import unit_of_work, utcnow
from companion.exports import dictionary, schemas, services

blp = Blueprint(
    "insurer",
    __name__,
    url_prefix="/api/v1/insurer",
    description="De-identified, small-cell-suppressed outcome reports of the analyst's own plan",
)


@blp.route("/exports", methods=["POST"])
@allow(Role.INSURER_ANALYST)
@blp.arguments(schemas.ExportRequestSchema())
@blp.response(
    202,
    schemas.ExportQueuedSchema,
    headers={
        "Location": {
            "description": "The export's status: GET it until `status` is `done`.",
            "schema": {"type": "string", "format": "uri-reference"},
        }
    },
)
def request_export(data: dict[str, Any]):
    """Queue an outcome report of the plan's consenting members over whole months (built by a worker)."""
    with unit_of_work():
        job = services.request_export(current_user, data, now=utcnow())
        body = {"id": job.id, "status": job.status}
    return body, 202, {"Location": url_for("insurer.export_status", export_id=job.id)}


@blp.route("/exports/<uuid:export_id>", methods=["GET"])
@blp.doc(operationId="getExport")
@allow(Role.INSURER_ANALYST)
@blp.response(200, schemas.ExportSchema)
def export_status(export_id: uuid.UUID):
    """The export's status and progress, and where to download it once done."""
    return services.export_view(services.own_export(current_user, export_id))


@blp.route("/exports/<uuid:export_id>/file", methods=["GET"])
@blp.doc(operationId="getExportFile")
@allow(Role.INSURER_ANALYST)
@blp.response(
    200,
    content_type="text/csv",
    description="The file: text/csv, application/json or application/fhir+json as requested.",
)
@blp.doc(
    responses={
        "200": {
            "description": "The file: text/csv, application/json or application/fhir+json as requested.",
            "content": {
                "text/csv": {"schema": {"type": "string", "description": "One row per cell and measure."}},
                "application/json": {"schema": schemas.ReportSchema},
                "application/fhir+json": {
                    "schema": {"type": "object", "description": "A FHIR R4 Bundle (collection)."}
                },
            },
        }
    }
)
@blp.alt_response(409, description="The export is not done yet.")
def export_file(export_id: uuid.UUID):
    """The report file; every cell counting 1-10 members (or revealing one) is suppressed."""
    with unit_of_work():
        built = services.download(current_user, export_id, now=utcnow())
    return Response(
        built.content,
        status=200,
        content_type=built.content_type,
        headers={"Content-Disposition": f'attachment; filename="{built.filename}"'},
    )


@blp.route("/measures", methods=["GET"])
@blp.doc(operationId="listMeasures")
@allow(Role.INSURER_ANALYST)
@blp.response(200, schemas.DictionarySchema)
def measures():
    """The data dictionary: each measure's definition, unit, numerator, denominator, windows and source,
    and the CSV's columns."""
    return dictionary.as_dict()
