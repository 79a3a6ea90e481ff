"""The JSON API's plumbing: flask-smorest with our error envelope, the JSON body guard, the OpenAPI extras."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

from apispec import BasePlugin
from flask import Flask, Request, current_app, g, request
from flask_smorest import Api, Blueprint
from marshmallow import Schema, fields
from werkzeug.exceptions import (
    BadRequest,
    RequestEntityTooLarge,
    RequestHeaderFieldsTooLarge,
    RequestURITooLarge,
)

from companion.auth.access import PUBLIC, declared_access
from companion.auth.loaders import is_api_request
from companion.domain.errors import InvalidInput
from companion.validation import MAX_BODY_DEPTH, TooDeep, body_errors

F = TypeVar("F", bound=Callable[..., Any])


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
                "uri_too_long",
                "invalid_payload",
                "rate_limited",
                "headers_too_large",
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


BODY_METHODS = {"POST", "PUT", "PATCH", "DELETE"}

#: The app's own limits on the request head; gunicorn's (`companion up`, the Dockerfile) are set above
#: them, so an oversized request line or header gets our JSON envelope (414, 431), not gunicorn's HTML.
MAX_REQUEST_TARGET = 4096
MAX_HEADER_BYTES = 8190
MAX_HEADER_COUNT = 100


def per_item_body(list_field: str) -> Callable[[F], F]:
    """Mark a view whose body's `list_field` items are validated one by one (a sync batch): invalid text
    in one item spoils only that item, so the body guard leaves those items' strings to the view."""

    def mark(view: F) -> F:
        view.per_item_body = list_field  # type: ignore[attr-defined]
        return view

    return mark


def limit_request_head() -> None:
    """414 for a request target (path and query) over MAX_REQUEST_TARGET bytes, 431 for a header over
    MAX_HEADER_BYTES or more than MAX_HEADER_COUNT headers: in the one envelope, before anything else."""
    environ = request.environ
    target = len(environ.get("PATH_INFO", "").encode("latin-1", "replace")) + len(
        environ.get("QUERY_STRING", "")
    )
    if target > MAX_REQUEST_TARGET:
        raise RequestURITooLarge()
    for count, (name, value) in enumerate(request.headers.items(), start=1):
        if len(name) + len(value) + 2 > MAX_HEADER_BYTES or count > MAX_HEADER_COUNT:
            raise RequestHeaderFieldsTooLarge()


def _read_body() -> bytes:
    """The body, at most MAX_CONTENT_LENGTH bytes: 413 past it, whether or not it is chunked (werkzeug
    would cut a chunked body at the limit without a word, and the cut JSON would read as invalid)."""
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    if request.content_length is None and request.environ.get("wsgi.input_terminated"):
        raw = request.environ["wsgi.input"].read(limit + 1)
        if len(raw) > limit:
            raise RequestEntityTooLarge()
        return raw
    return request.get_data(cache=True)  # 413 past MAX_CONTENT_LENGTH by Content-Length


def _per_item_field() -> str | None:
    view = current_app.view_functions.get(request.endpoint or "")
    handler = getattr(getattr(view, "view_class", None), request.method.lower(), view)
    return getattr(handler, "per_item_body", None)


def require_json_object() -> None:
    """400 `invalid_json` for an API body that is not a JSON object (API.md), or is nested deeper than
    MAX_BODY_DEPTH; 413 past 1 MiB; 422 naming each field whose text is not valid Unicode, holds a NUL
    or is too long. One parse and one walk: the views read the parsed body from `g` (json_body)."""
    if not is_api_request(request) or request.method not in BODY_METHODS:
        return
    raw = _read_body()
    if not raw.strip():
        return
    if not request.is_json:
        raise BadRequest(description="The request body must be JSON (Content-Type: application/json).")
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        raise BadRequest(description="The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise BadRequest(description="The request body must be a JSON object.")
    try:
        errors = body_errors(body, skip=_per_item_field())
    except TooDeep:
        raise BadRequest(
            description=f"The request body is nested deeper than {MAX_BODY_DEPTH} levels."
        ) from None
    if errors:
        raise InvalidInput("The request body is invalid.", fields=errors)
    g.json_body = body


def json_body() -> Any:
    """The request's JSON body as require_json_object parsed and checked it (None when it had none)."""
    return g.get("json_body")


_parse_json_again = Blueprint.ARGUMENTS_PARSER._raw_load_json


def _checked_json(req: Request) -> Any:
    """webargs reads the body require_json_object parsed and checked, instead of parsing it again."""
    body = g.get("json_body")
    return body if body is not None else _parse_json_again(req)


Blueprint.ARGUMENTS_PARSER._raw_load_json = _checked_json  # type: ignore[method-assign]
# webargs would silently drop unknown query arguments; our schemas decide (StrictSchema raises: a 422
# that names the argument, as for bodies).
Blueprint.ARGUMENTS_PARSER.unknown = None


ERROR_REF = {"$ref": "#/components/schemas/Error"}
ALL_ROLES = frozenset({"member", "coach", "admin", "insurer_analyst"})
#: The errors any operation can answer, from plumbing that runs before or around its view.
STANDARD_ERRORS = {
    400: "The body is not a JSON object (`invalid_json`).",
    401: "No valid access token: missing, unknown, expired or revoked (`unauthenticated`).",
    403: "Signed in, but this role may not call this (`forbidden`).",
    404: "No such record, or not yours to see (`not_found`).",
    413: "The body is over 1 MiB, chunked or not (`payload_too_large`).",
    414: "The request target (path and query) is over 4 KiB (`uri_too_long`).",
    422: "An argument is invalid; `error.fields` names each one, unknown ones included.",
    429: "Too many requests (`rate_limited`); see `Retry-After`.",
    431: "A header is over 8 KiB, or there are more than 100 (`headers_too_large`).",
    503: "PostgreSQL is unreachable (`unavailable`); retry after `Retry-After` seconds.",
}


class StandardResponsesPlugin(BasePlugin):
    """Write into each operation the errors our plumbing gives it, from what the route declares: who
    may call it (401/403, `security: []` when public), its body (400/413), its arguments (422), its
    record ids in the path (404); every operation may be rate limited (429) and needs PostgreSQL (503)."""

    def __init__(self, app: Flask) -> None:
        self.app = app

    def path_helper(self, path=None, operations=None, parameters=None, **kwargs: Any) -> None:  # type: ignore[override]
        for parameter in parameters or ():
            _bound_string(parameter)

    def operation_helper(self, path=None, operations=None, **kwargs: Any) -> None:  # type: ignore[override]
        rule = kwargs.get("rule")
        if rule is None or not operations:
            return
        for method, operation in operations.items():
            for parameter in operation.get("parameters", ()):
                _bound_string(parameter)
            statuses = {414, 429, 431, 503}
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


#: The longest string each parameter format can take; any other string parameter gets DEFAULT_MAX_LENGTH.
FORMAT_MAX_LENGTH = {"uuid": 36, "date": 10, "date-time": 40}
DEFAULT_MAX_LENGTH = 200


def _bound_string(parameter: Any) -> None:
    """Every string parameter says how long it may be (issue 21: clients and fuzzers stay under 414)."""
    schema = parameter.get("schema") if isinstance(parameter, dict) else None
    if not isinstance(schema, dict) or schema.get("type") != "string" or "maxLength" in schema:
        return
    if "enum" in schema:
        schema["maxLength"] = max(len(str(v)) for v in schema["enum"])
    else:
        schema["maxLength"] = FORMAT_MAX_LENGTH.get(schema.get("format", ""), DEFAULT_MAX_LENGTH)


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
