"""The JSON API's plumbing: flask-smorest with our error envelope, the JSON body guard, the OpenAPI extras."""

from __future__ import annotations

from flask import Flask, request
from flask_smorest import Api, Blueprint
from marshmallow import Schema, fields
from werkzeug.exceptions import BadRequest

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
