"""Structured JSON logs with a request id. No personal data: ids, routes, statuses and timings only."""

from __future__ import annotations

import json
import logging
import sys
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson
from flask import Flask, Response, g, has_app_context, request

from companion import metrics

#: LogRecord attributes that are not ours to print.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
#: Keys that must never reach a log line, even if a caller passes them by mistake.
_FORBIDDEN = {
    "email",
    "password",
    "token",
    "access_token",
    "refresh_token",
    "note",
    "body",
    "display_name",
    "push_token",
}


#: orjson (a line on every request: a fifth of the log line's time with the json module) writing what
#: `json.dumps(entry, default=str)` would: dates and dataclasses as `str()` gives them. Not byte for byte:
#: no spaces after separators, non-ASCII text as UTF-8, a NaN as null, a plain Enum as its value.
_AS_JSON_DUMPS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_NON_STR_KEYS


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        for key in vars(record).keys() - _STANDARD:
            if not key.startswith("_"):
                entry[key] = "[redacted]" if key in _FORBIDDEN else getattr(record, key)
        if record.exc_info:
            entry["exc_type"] = record.exc_info[0].__name__ if record.exc_info[0] else None
            entry["exc"] = self.formatException(record.exc_info)
        try:
            return orjson.dumps(entry, default=str, option=_AS_JSON_DUMPS).decode()
        except TypeError:  # what orjson cannot write at all (an integer past 64 bits)
            return json.dumps(entry, default=str)


_base_factory = logging.getLogRecordFactory()


def _record_with_request_id(*args: Any, **kwargs: Any) -> logging.LogRecord:
    """Stamp every record made while serving a request with that request's id (in `g`: a request's, or
    the write lane's app context)."""
    record = _base_factory(*args, **kwargs)
    if has_app_context():
        request_id = getattr(g._get_current_object(), "request_id", None)  # the proxy resolved once
        if request_id is not None:
            record.request_id = request_id
    return record


def configure_logging(level: str = "INFO") -> None:
    # No line prints the calling function, thread or process: the logging HOWTO's "Optimization" switches,
    # so a record does not look them up (the access line is written on every request).
    logging._srcfile = None  # type: ignore[attr-defined]  # the HOWTO's documented switch for findCaller
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    logging.setLogRecordFactory(_record_with_request_id)
    logging.captureWarnings(True)  # a library's warning is a JSON line too, not a bare stderr print
    root = logging.getLogger()
    if any(getattr(h, "_companion", False) for h in root.handlers):
        root.setLevel(level)
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler._companion = True  # type: ignore[attr-defined]  # our handler's mark, read back with getattr
    root.addHandler(handler)
    root.setLevel(level)
    # werkzeug's own access log prints full paths and is replaced by ours.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)


access_log = logging.getLogger("companion.access")


#: The WSGI environ's key for a request's id once given (by the write lane, before Flask sees the request).
REQUEST_ID = "companion.request_id"
#: ... and when it started (`time.perf_counter()`), so a request the lane hands to Flask is timed whole.
REQUEST_STARTED = "companion.request_started"


def request_id_of(environ: dict[str, Any]) -> str:
    """The request's id: the one given to it already, the client's `X-Request-ID` when it is a sensible
    one, else a new one; kept in `environ`."""
    given = environ.get(REQUEST_ID)
    if given is None:
        incoming = environ.get("HTTP_X_REQUEST_ID", "")
        given = environ[REQUEST_ID] = (
            incoming if 8 <= len(incoming) <= 64 and incoming.isascii() else uuid.uuid4().hex
        )
    return given


def request_answered(method: str, route: str, status: int, seconds: float) -> None:
    """An answered request's metrics and access line. `route` is the route's template, never the concrete
    path: paths can hold dates and ids of a member's records."""
    metrics.request_answered(method, route, status, seconds)
    duration_ms = round(seconds * 1000, 2)
    access_log.info(
        "request", extra={"method": method, "route": route, "status": status, "duration_ms": duration_ms}
    )


def init_app(app: Flask) -> None:
    @app.before_request
    def _start() -> None:
        g.request_id = request_id_of(request.environ)
        g.started = request.environ.get(REQUEST_STARTED) or time.perf_counter()

    @app.after_request
    def _finish(response: Response) -> Response:
        state, req = g._get_current_object(), request._get_current_object()  # on every request: once
        response.headers["X-Request-ID"] = getattr(state, "request_id", "")
        route = req.url_rule.rule if req.url_rule else "<unmatched>"
        seconds = time.perf_counter() - getattr(state, "started", time.perf_counter())
        request_answered(req.method, route, response.status_code, seconds)
        return response
