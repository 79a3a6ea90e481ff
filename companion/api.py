"""The JSON API's plumbing: flask-smorest with our error envelope, the JSON body guard, the OpenAPI extras."""

from __future__ import annotations

from typing import Any

from apispec import BasePlugin
from flask import Flask, request
from flask_smorest import Api, Blueprint
from marshmallow import Schema, fields
from werkzeug.exceptions import BadRequest

from companion.auth.access import PUBLIC, declared_access
from companion.auth.loaders import is_api_request


class ErrorBodySchema(Schema):
    status = fields.Integer(required=True)
    code = fields.String(
        required=True,
        metadata={
            "enum": [
                "invalid_json",
                "unauthenticated",
                "forbidden",
                "not_found",
                "method_not_allowed",
                "conflict",
                "payload_too_large",
                "invalid_payload",
                "rate_limited",
                "internal_error",
                "unavailable",
            ]
        },
    )
    message = fields.String(required=True)
    fields_ = fields.Dict(
        data_key="fields",
        keys=fields.String(),
        metadata={"description": "Each invalid field with its messages (422)."},
    )
    current = fields.Dict(metadata={"description": "The stored record, on a 409 for a stale update."})


class ErrorSchema(Schema):
    """API.md: every error has this one shape."""

    error = fields.Nested(ErrorBodySchema, required=True)


class CompanionApi(Api):
    ERROR_SCHEMA = ErrorSchema
    # No catch-all "default" response: each operation lists the statuses it can answer (below), so a
    # status the document does not name is a finding for the contract tests.
    DEFAULT_ERROR_RESPONSE_NAME = None

    def _register_error_handlers(self) -> None:
        """companion.errors registers the one envelope for every error, routing's included."""


# webargs would silently drop unknown query arguments; our schemas decide (StrictSchema raises: a 422
# that names the argument, as for bodies).
Blueprint.ARGUMENTS_PARSER.unknown = None

BODY_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


def require_json_object() -> None:
    """400 `invalid_json` for an API body that is not a JSON object (API.md). An empty body passes."""
    if not is_api_request(request) or request.method not in BODY_METHODS:
        return
    raw = request.get_data(cache=True)  # raises 413 past MAX_CONTENT_LENGTH
    if not raw.strip():
        return
    if not request.is_json:
        raise BadRequest(description="The request body must be JSON (Content-Type: application/json).")
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise BadRequest(description="The request body must be a JSON object.")


ERROR_REF = {"$ref": "#/components/schemas/Error"}
ALL_ROLES = frozenset({"member", "coach", "admin", "insurer_analyst"})
#: The errors any operation can answer, from plumbing that runs before or around its view.
STANDARD_ERRORS = {
    400: "The body is not a JSON object (`invalid_json`).",
    401: "No valid access token: missing, unknown, expired or revoked (`unauthenticated`).",
    403: "Signed in, but this role may not call this (`forbidden`).",
    404: "No such record, or not yours to see (`not_found`).",
    413: "The body is over 1 MiB (`payload_too_large`).",
    422: "An argument is invalid; `error.fields` names each one, unknown ones included.",
    429: "Too many requests (`rate_limited`); see `Retry-After`.",
    503: "PostgreSQL is unreachable (`unavailable`); retry after `Retry-After` seconds.",
}


class StandardResponsesPlugin(BasePlugin):
    """Write into each operation the errors our plumbing gives it, from what the route declares: who
    may call it (401/403, `security: []` when public), its body (400/413), its arguments (422), its
    record ids in the path (404); every operation may be rate limited (429) and needs PostgreSQL (503)."""

    def __init__(self, app: Flask) -> None:
        self.app = app

    def operation_helper(self, path=None, operations=None, **kwargs: Any) -> None:  # type: ignore[override]
        rule = kwargs.get("rule")
        if rule is None or not operations:
            return
        for method, operation in operations.items():
            statuses = {429, 503}
            roles = {
                str(getattr(r, "value", r))
                for r in declared_access(self.app, rule.endpoint, method.upper()) or ()
            }
            if PUBLIC in roles:
                operation["security"] = []
            else:
                statuses.add(401)
                if not roles >= ALL_ROLES:
                    statuses.add(403)
            if method.upper() in BODY_METHODS:
                statuses |= {400, 413}
            if "requestBody" in operation or any(
                p.get("in") == "query" for p in operation.get("parameters", [])
            ):
                statuses.add(422)
            for converter in rule._converters.values():
                statuses.add(404 if type(converter).__name__ == "UUIDConverter" else 422)
            responses = operation.setdefault("responses", {})
            for status in sorted(statuses):
                if str(status) not in responses and status not in responses:
                    responses[str(status)] = {
                        "description": STANDARD_ERRORS[status],
                        "content": {"application/json": {"schema": ERROR_REF}},
                    }


def configure_openapi(app: Flask) -> None:
    app.config.update(
        API_TITLE="Companion API",
        API_VERSION="v1",
        OPENAPI_VERSION="3.1.0",
        OPENAPI_URL_PREFIX="/api",
        OPENAPI_JSON_PATH="openapi.json",
        API_SPEC_OPTIONS={
            "info": {
                "description": (
                    "The contract of the phone app, the coach dashboard and insurer tools. "
                    "Every path is under "
                    "/api/v1; every error has the envelope {error: {status, code, message, fields}}."
                )
            },
            "security": [{"bearerAuth": []}],
            "components": {
                "securitySchemes": {
                    "bearerAuth": {
                        "type": "http",
                        "scheme": "bearer",
                        "description": "An access token from /auth/token.",
                    }
                }
            },
        },
    )
