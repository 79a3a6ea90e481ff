"""One error envelope for the whole JSON API (API.md): {"error": {status, code, message, fields}}."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from flask import Flask, Response, current_app, jsonify, request
from sqlalchemy.exc import DBAPIError, OperationalError
from werkzeug.exceptions import HTTPException, InternalServerError

from companion.domain import errors as domain

log = logging.getLogger(__name__)

#: Domain errors to HTTP statuses; anything else that is a DomainError is a 422.
DOMAIN_STATUS: dict[type[domain.DomainError], int] = {
    domain.NotFound: 404,
    domain.Conflict: 409,
    domain.Unauthenticated: 401,
    domain.Forbidden: 403,
    domain.TooLarge: 413,
    domain.TooManyAttempts: 429,
}

#: The stable machine-readable code of each HTTP status.
CODES = {
    400: "invalid_json",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    414: "uri_too_long",
    415: "unsupported_media_type",
    422: "invalid_payload",
    429: "rate_limited",
    431: "headers_too_large",
    500: "internal_error",
    503: "unavailable",
}

MESSAGES = {
    400: "The request body is not a JSON object.",
    401: "Authentication is required.",
    403: "You may not do this.",
    404: "Not found.",
    405: "This method is not allowed here.",
    409: "This conflicts with what is stored.",
    413: "The request body is too large (1 MiB at most).",
    414: "The request target (path and query) is too long (4 KiB at most).",
    422: "The request body is invalid.",
    429: "Too many requests; try again later.",
    431: "A request header is too large (8 KiB at most), or there are more than 100.",
    500: "Something went wrong on our side.",
    503: "A service this call needs is unavailable.",
}


def error_response(
    status: int,
    *,
    code: str | None = None,
    message: str | None = None,
    fields: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> Response:
    body: dict[str, Any] = {
        "status": status,
        "code": code or CODES.get(status, HTTPStatus(status).phrase.lower().replace(" ", "_")),
        "message": message or MESSAGES.get(status, HTTPStatus(status).phrase),
    }
    if fields:
        body["fields"] = fields
    body.update(extra)
    response = jsonify({"error": body})
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def flatten_webargs_messages(messages: Any) -> dict[str, Any]:
    """webargs nests errors under their location ({"json": {...}, "query": {...}}); the API names fields."""
    if not isinstance(messages, dict):
        return {"_schema": messages if isinstance(messages, list) else [str(messages)]}
    flat: dict[str, Any] = {}
    for location, errors in messages.items():
        if location in {
            "json",
            "query",
            "querystring",
            "view_args",
            "path",
            "form",
            "headers",
        } and isinstance(errors, dict):
            flat.update(errors)
        else:
            flat[location] = errors
    return flat


def handle_http_exception(error: HTTPException) -> Response:
    status = error.code or 500
    if status >= 500:
        return handle_unexpected(error)
    data = getattr(error, "data", None) or {}
    fields = None
    message = None
    if status == 422 and "messages" in data:
        fields = flatten_webargs_messages(data["messages"])
    elif status in (400, 404) and "messages" in data:
        # webargs reports a malformed path or query argument; say which one.
        fields = flatten_webargs_messages(data["messages"])
        status, message = 422, None
    if status == 400:
        own = error.description if error.description != type(error).description else None
        message = data.get("message") or own or MESSAGES[400]
    headers = dict(data.get("headers") or {})
    if status == 405 and hasattr(error, "valid_methods") and error.valid_methods:
        headers["Allow"] = ", ".join(error.valid_methods)
    if status == 429:
        headers.setdefault("Retry-After", _retry_after(error))
    return error_response(status, message=message, fields=fields, headers=headers)


def _retry_after(error: HTTPException) -> str:
    response = error.get_response()
    return response.headers.get("Retry-After") or "60"


def handle_domain_error(error: domain.DomainError) -> Response:
    status = DOMAIN_STATUS.get(type(error), 422)
    for cls, mapped in DOMAIN_STATUS.items():
        if isinstance(error, cls):
            status = mapped
    details = dict(error.details)
    headers = {}
    if "retry_after" in details:
        headers["Retry-After"] = str(details.pop("retry_after"))
    return error_response(
        status, code=error.code, message=error.message, fields=error.fields, headers=headers, **details
    )


def handle_unexpected(error: BaseException) -> Response:
    original = getattr(error, "original_exception", None) or error
    if isinstance(error, InternalServerError) and original is error:
        log.error("internal error", extra={"path": request.path})
    else:
        log.error("unhandled exception", exc_info=original, extra={"path": request.path})
    message = MESSAGES[500]
    if current_app.debug:
        message = f"{message} ({type(original).__name__})"
    return error_response(500, message=message)


def handle_database_unavailable(error: DBAPIError) -> Response:
    """PostgreSQL unreachable or restarting: 503 and a hint to retry, never a 500 (the pool reconnects)."""
    if isinstance(error, OperationalError) or error.connection_invalidated:
        log.warning(
            "database unavailable", extra={"path_route": request.url_rule.rule if request.url_rule else None}
        )
        return error_response(503, headers={"Retry-After": "5"})
    return handle_unexpected(error)


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(DBAPIError, handle_database_unavailable)
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(domain.DomainError, handle_domain_error)
    app.register_error_handler(Exception, handle_unexpected)
