"""The JSON API's plumbing: flask-smorest with our error envelope, the JSON body guard, the OpenAPI extras."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable
from typing import Any, TypeVar

import orjson
from flask import Flask, Request, Response, current_app, g, request
from flask_smorest import Api, Blueprint
from marshmallow import Schema, fields
from werkzeug.datastructures import EnvironHeaders
from werkzeug.exceptions import (
    BadRequest,
    ClientDisconnected,
    HTTPException,
    RequestEntityTooLarge,
    RequestHeaderFieldsTooLarge,
    RequestURITooLarge,
)

from companion.auth.loaders import is_api_request
from companion.domain.errors import InvalidInput
from companion.validation import (
    MAX_BODY_DEPTH,
    TooDeep,
    body_errors,
    field_errors,
    stored_record,
    text_is_clean,
)

F = TypeVar("F", bound=Callable[..., Any])


class ErrorBodySchema(Schema):
    status = fields.Integer(required=True, metadata={"description": "The HTTP status, repeated."})
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
    message = fields.String(
        required=True, metadata={"description": "For people: what went wrong, in English. May change."}
    )
    fields_ = field_errors(
        "Each invalid field with its messages (422), unknown fields included.", data_key="fields"
    )
    current = stored_record("On a 409: the stored record, as its own GET answers it.")


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

#: HTML pages (the dashboard, the API docs) run only our own scripts, load nothing from elsewhere and
#: are never framed. Inline styles stay allowed: the dashboard's charts are inline SVG with style attributes.
HTML_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)

#: On every answer, unless a view set its own.
SECURITY_HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
    ("Cache-Control", "no-store"),
)
#: On every answer behind TLS (ProxyFix reads X-Forwarded-Proto): browsers keep to https.
STRICT_TRANSPORT_SECURITY = ("Strict-Transport-Security", "max-age=31536000; includeSubDomains")


def add_security_headers(response: Response) -> Response:
    """after_request: `SECURITY_HEADERS` a view did not set, the CSP on HTML, HSTS behind TLS."""
    headers = response.headers
    # One pass over the answer's headers: Headers' `in` raises and catches a KeyError for every name
    # it does not hold, which was most of this hook's time.
    present = {name.lower() for name, _value in headers}
    headers.extend([(name, value) for name, value in SECURITY_HEADERS if name.lower() not in present])
    if response.mimetype == "text/html":
        headers.setdefault("Content-Security-Policy", HTML_CSP)
    if request.is_secure:
        headers.setdefault(*STRICT_TRANSPORT_SECURITY)
    return response


#: The app's own limits on the request head; gunicorn's (`companion up`, the Dockerfile) are set above
#: them, so an oversized request line or header gets our JSON envelope (414, 431), not gunicorn's HTML.
MAX_REQUEST_TARGET = 4096
MAX_HEADER_BYTES = 8190
MAX_HEADER_COUNT = 100


def per_item_body(list_field: str) -> Callable[[F], F]:
    """Mark a view whose body's `list_field` items are validated one by one (a sync batch): invalid text
    in one item spoils only that item, so the body guard leaves those items' strings to the view."""

    def mark(view: F) -> F:
        view.per_item_body = list_field  # type: ignore[attr-defined]  # a mark read back with getattr by the body guard
        return view

    return mark


def head_refusal(environ: dict[str, Any]) -> type[HTTPException] | None:
    """414 for a request target (path and query) over MAX_REQUEST_TARGET bytes, 431 for a header over
    MAX_HEADER_BYTES or more than MAX_HEADER_COUNT headers; None for a head within the limits."""
    target = len(environ.get("PATH_INFO", "").encode("latin-1", "replace")) + len(
        environ.get("QUERY_STRING", "")
    )
    if target > MAX_REQUEST_TARGET:
        return RequestURITooLarge
    for count, (name, value) in enumerate(EnvironHeaders(environ).items(), start=1):
        if len(name) + len(value) + 2 > MAX_HEADER_BYTES or count > MAX_HEADER_COUNT:
            return RequestHeaderFieldsTooLarge
    return None


def limit_request_head() -> None:
    """The head's limits (`head_refusal`), in the one envelope, before anything else."""
    refusal = head_refusal(request.environ)
    if refusal is not None:
        raise refusal()


def _read_body() -> bytes:
    """The body, at most MAX_CONTENT_LENGTH bytes: 413 past it, whether or not it is chunked (werkzeug
    would cut a chunked body at the limit without a word, and the cut JSON would read as invalid)."""
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    environ, length = request.environ, request.content_length
    if length is None and environ.get("wsgi.input_terminated"):
        raw = environ["wsgi.input"].read(limit + 1)
        if len(raw) > limit:
            raise RequestEntityTooLarge()
        return raw
    if length is not None and length <= limit and "stream" not in request.__dict__:
        # Read straight from the server's input: werkzeug's stream wrappers around the same read were
        # half of this hook's time on a member write. A body shorter than its Content-Length is refused
        # as werkzeug refuses it, and the body is put back for any later reader (the full path's parser).
        raw = environ["wsgi.input"].read(length)
        if len(raw) != length:
            raise ClientDisconnected()
        environ["wsgi.input"] = io.BytesIO(raw)
        return raw
    return request.get_data(cache=True)  # 413 past MAX_CONTENT_LENGTH by Content-Length


def per_item_field(app: Flask, endpoint: str, method: str) -> str | None:
    """The body field whose items a route checks one by one (`per_item_body`), if any."""
    view = app.view_functions.get(endpoint)
    handler = getattr(getattr(view, "view_class", None), method.lower(), view)
    return getattr(handler, "per_item_body", None)


#: A run of digits orjson might read as a float where the stdlib reads an exact integer (past 64 bits).
_LONG_NUMBER = re.compile(rb"\d{19}")


def parse_json(raw: bytes) -> Any:
    """orjson (a third of the stdlib's time on a 500-item batch) for what it reads the same way;
    anything it refuses (a lone surrogate, which must answer 422 naming its field, UTF-16, NaN) and
    a body with a number of 19 digits or more are read by the stdlib as before, so what parses, and
    into what, does not change."""
    if _LONG_NUMBER.search(raw) is None:
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass
    return json.loads(raw)


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
        body = parse_json(raw)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        raise BadRequest(description="The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise BadRequest(description="The request body must be a JSON object.")
    try:
        errors = body_errors(body, skip=per_item_field(current_app, request.endpoint or "", request.method))
    except TooDeep:
        raise BadRequest(
            description=f"The request body is nested deeper than {MAX_BODY_DEPTH} levels."
        ) from None
    if errors:
        raise InvalidInput("The request body is invalid.", fields=errors)
    g.json_body = body
    g.json_body_text_clean = text_is_clean(raw)


def json_body() -> Any:
    """The request's JSON body as require_json_object parsed and checked it (None when it had none)."""
    return g.get("json_body")


_parse_json_again = Blueprint.ARGUMENTS_PARSER._raw_load_json


def _checked_json(req: Request) -> Any:
    """webargs reads the body require_json_object parsed and checked, instead of parsing it again."""
    body = g.get("json_body")
    return body if body is not None else _parse_json_again(req)


Blueprint.ARGUMENTS_PARSER._raw_load_json = _checked_json
# webargs would silently drop unknown query arguments; our schemas decide (StrictSchema raises: a 422
# that names the argument, as for bodies).
Blueprint.ARGUMENTS_PARSER.unknown = None


def drop_stray_retry_after(response: Response) -> Response:
    """Flask-Limiter's headers put `Retry-After` on every answer; API.md has it on 429 and 503 only."""
    if response.status_code not in (429, 503):
        response.headers.pop("Retry-After", None)
    return response


api = CompanionApi()  # unbound, like the extensions; our error envelope in the OpenAPI document
