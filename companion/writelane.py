"""The member-write lane: the three busiest writes' common case, answered before Flask's dispatch.

`PUT /drink-logs/{date}`, `POST /cravings` and `POST /medication-checkins` are most of the traffic
(issue 20). Their common case (a valid body, a new record or an edit that replaces a stored day) is
answered by `WriteLane`, a WSGI middleware in front of Flask's own dispatch, on a database connection of
its own in autocommit mode (`LaneConnections`): the bearer token (read once per process) and the record's
one statement (change lock, write, safety request: atomic on its own), both run by psycopg without the
ORM session, and the answer dumped by the route's own schema. Through Flask's request context, routing,
hooks and response objects, the same work cost about a fifth more CPU (1.21 against 1.02 ms a write).

What makes it correct is reused, not copied: the routes' own rules and declared access, the token query
(`tokens.ACCESS`), the input and answer schemas, the services' checks and row builders
(`prepare_drink_log`, `craving_values`, `checkin_row`) and their statements (`rowset`); and what every
answer carries is the same code the app's hooks run: the request head's limits and the body guard
(`companion.api`), the rate limit's count and headers (`ratelimit.count_default_limit`), the request id,
metrics and access line (`companion.logs`), the security headers and the JSON body (`api`, the app's
JSON provider).

Every other request, and any request the lane does not finish, goes to Flask unchanged: the lane answers
only a success it wrote. Before it writes, anything unusual hands the request on (an oversized head, an
unknown token, a staff account, a body that is not a JSON object or that its schema refuses, a rate limit
reached, a check-in with side effects, a craving whose support nudge is due); the body it read is put
back for Flask. A statement that writes nothing (a replay, a stale edit, a 409, a deleted day logged
again) hands on too: the full path reads the stored record and answers as before. A request it counted
against the rate limit carries the count on (`ratelimit.COUNTED`), so it is counted once.

A kept login is never trusted for a write: the record's statement writes only while the token is live
and the user's and member's rows are the versions read (a check-in's plan likewise); a request handed on
after its write was tried drops the kept login, and Flask-Login reads the token afresh.
`COMPANION_WRITE_LANE` (default on) turns the lane off; tests run both ways and compare the answers.
"""

from __future__ import annotations

import io
import logging
import os
import re
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

import psycopg
from flask import Flask, current_app, g
from marshmallow import Schema, ValidationError
from psycopg.rows import dict_row, tuple_row
from sqlalchemy import event, literal_column
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from companion import api, jobs, logs, ratelimit
from companion.accounts import tokens
from companion.accounts.models import Member, Role
from companion.auth.access import declared_access
from companion.db import by_key, driver_statement, new_detached, row_values, utcnow
from companion.domain.errors import DomainError
from companion.extensions import account_rate_limit_key
from companion.medications import checkins
from companion.medications import schemas as medication_schemas
from companion.medications.models import MedicationPlan
from companion.nudges import hooks as nudge_hooks
from companion.tracking import rowset, services
from companion.tracking import schemas as tracking_schemas
from companion.tracking.models import Craving
from companion.validation import TooDeep, body_errors, text_is_clean

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

    from companion.jsonprovider import CompanionJSONProvider

log = logging.getLogger(__name__)

_CONNECTION = "_write_lane_connection"
_CONNECTIONS = "write_lane_connections"  # app.extensions: the lane's idle connections
#: Idle lane connections a process keeps: gunicorn's threads a worker (`companion up` runs 4).
LANE_CONNECTIONS_KEPT = 4
_LOGINS = "write_lane_logins"  # app.extensions: this process's logins, by token digest
_PLANS = "write_lane_plans"  # app.extensions: the plans of its check-ins, by id
#: Logins (and check-ins' plans) a process keeps; past it, it starts over. An entry is about 3 kB (two
#: detached model instances and a token), so a process holds at most ~15 MB of them.
LOGINS_KEPT = 5_000


def _keep(kept: dict[Any, Any], key: Any, value: Any) -> Any:
    """`value` kept by the process under `key`; a store that is full starts over."""
    if len(kept) >= LOGINS_KEPT:
        kept.clear()
    kept[key] = value
    return value


@dataclass(frozen=True)
class Login:
    """A bearer token as the lane read it (`tokens.ACCESS_VERSIONED`): the token and member built from its
    row (detached, read only), and the values of the write's guard. Kept by the process (`_LOGINS`), so
    a member's next write reads no token: its statement takes its lock, and so writes, only while the
    token is still live and the user's and member's rows are still these versions
    (`tokens.LIVE_LOGIN_GUARD`). Anything decided from a kept login before a write that did not happen
    is decided again from the database (`WriteLane._answer`)."""

    token: tokens.AccessToken
    member: Member
    guard: dict[str, Any]  # token_hash, user_version, member_version
    rate_limit_key: str  # the account's, as Flask-Limiter's key function gives it


@dataclass(frozen=True)
class Written:
    """What a lane handler wrote: the answer's view (dumped by the route's schema) and its status."""

    view: Mapping[str, Any]
    status: int


@dataclass(frozen=True)
class Call:
    """One lane request, as its handler sees it."""

    member: Member
    origin: uuid.UUID  # the token's login (`changed_by`)
    guard: Mapping[str, Any]  # the write holds only while the login does (`Login`)
    data: dict[str, Any]  # the body, loaded by the route's input schema
    args: Mapping[str, Any]  # the route's path arguments
    connection: psycopg.Connection[Any]  # in autocommit mode
    now: datetime


#: A handler: Written, or None to hand the request back before anything was written.
Handler = Callable[[Call], Written | None]


@dataclass(frozen=True)
class Route:
    input: Schema
    output: Schema
    handle: Handler


def _run(connection: Any, statement: Any, values: dict[str, Any], *, by_name: bool = True) -> list[Any]:
    """`statement` on the lane's connection: its rows, as dicts by column name (a text() statement's, as
    the driver gives them) or as tuples of the values SQLAlchemy would give."""
    driver = driver_statement(statement, current_app.extensions["engine"].dialect)
    with connection.cursor(row_factory=dict_row if by_name else tuple_row) as cursor:
        cursor.execute(driver.sql, driver.params(values))
        rows = cursor.fetchall()
    return rows if by_name else [driver.row(r) for r in rows]


def _write(
    call: Call,
    spec: rowset.RowSpec,
    row: Mapping[str, Any],
    *,
    update: str | None = None,
    params: Mapping[str, Any] | None = None,
    guard: str = tokens.LIVE_LOGIN_GUARD,
) -> dict[str, Any] | None:
    """The record's one statement (`rowset`, the change lock taken in it only while `guard` holds); the
    row it wrote, or None. In autocommit mode the statement is its own transaction: committed when it
    returns."""
    member_id = call.member.id
    statement, values = rowset.statement_for(
        spec, member_id, [row], origin=call.origin, now=call.now, lock=True, update=update,
        params={**call.guard, **(params or {})}, guard=guard,
    )  # fmt: skip
    found = _run(call.connection, statement, values)
    if not found:
        return None
    written: dict[str, Any] = found[0]
    if written["publish"]:  # the member became due for a scan: its message, after the commit
        jobs.send_now(jobs.SCAN_MEMBER, member_id=str(member_id))
    return written


def _drink_log(call: Call) -> Written | None:
    member, data, now = call.member, call.data, call.now
    prepared = services.prepare_drink_log(member, services.parse_log_date(call.args["day"]), data, now=now)
    written = _write(
        call, services.DRINK_LOGS, prepared.row,
        update=services.REPLACE_STORED_LOG, params={"client_updated_at": data.get("updated_at")},
    )  # fmt: skip
    if written is None:
        return None
    log_, outcome = services.drink_log_written(written)
    return Written(services.drink_log_view(log_, member), 201 if outcome == services.CREATED else 200)


def _craving(call: Call) -> Written | None:
    member, data, now = call.member, call.data, call.now
    row = services.new_row(data["id"], services.craving_values(member, data, now=now), now=now)
    if nudge_hooks.craving_support_due(member, row["id"], row["intensity"], row["recorded_at"], now=now):
        return None  # its support nudge is planned in the full path's transaction
    if _write(call, services.CRAVINGS, row) is None:
        return None
    written = new_detached(Craving, {"member_id": member.id, "changed_by": call.origin, **row})
    return Written(services.craving_view(written), 201)


#: A plan and its row's version, as `Login` keeps a token's (a check-in's plan is read once per process).
PLAN_VERSIONED = by_key(MedicationPlan).add_columns(literal_column("medication_plans.xmin::text"))
#: A check-in writes only while its login holds and its plan's row is the version it was checked against.
CHECKIN_GUARD = (
    f"{tokens.LIVE_LOGIN_GUARD} AND EXISTS (SELECT FROM medication_plans AS guard_plan "
    "WHERE guard_plan.id = CAST(:plan_id AS uuid) AND guard_plan.xmin = CAST(:plan_version AS xid))"
)


def _checkin(call: Call) -> Written | None:
    member, data, now = call.member, call.data, call.now
    if data.get("side_effects"):
        return None  # side effects are a second statement, and the safety scan's concern: the full path
    plans: dict[uuid.UUID, tuple[MedicationPlan, str]] = current_app.extensions[_PLANS]
    kept = plans.get(data["plan_id"])
    if kept is None:
        found = _run(call.connection, PLAN_VERSIONED, {"key": data["plan_id"]}, by_name=False)
        if not found:
            return None  # the full path answers for a plan that does not exist
        plan = new_detached(MedicationPlan, row_values(MedicationPlan, found[0][:-1]))
        kept = _keep(plans, plan.id, (plan, found[0][-1]))
    plan, version = kept
    try:
        row, _slot = checkins.checkin_row(member, plan, data, now=now)
    except DomainError:
        plans.pop(plan.id, None)  # refused, maybe by a changed plan: the full path reads it afresh
        raise
    guard = {"plan_id": plan.id, "plan_version": version}
    if _write(call, checkins.CHECKINS, row, guard=CHECKIN_GUARD, params=guard) is None:
        plans.pop(plan.id, None)  # maybe changed: the full path reads it, and the next check-in again
        return None
    checkin = checkins.written_checkin(member, plan, data, row, call.origin)
    return Written(checkins.checkin_view(checkin), 201)


ROUTES: dict[tuple[str, str], Route] = {
    ("PUT", "tracking.DrinkLog"): Route(
        tracking_schemas.DrinkLogInputSchema(), tracking_schemas.DrinkLogSchema(), _drink_log
    ),
    ("POST", "tracking.Cravings"): Route(
        tracking_schemas.CravingInputSchema(), tracking_schemas.CravingSchema(), _craving
    ),
    ("POST", "medications.MedicationCheckins"): Route(
        medication_schemas.CheckinInputSchema(), medication_schemas.CheckinSchema(), _checkin
    ),
}


#: The lane's routes by path: (method, the rule's path as a pattern, endpoint, the rule's template, route).
LanePath = tuple[str, "re.Pattern[str]", str, str, Route]
_RULE_ARGUMENT = re.compile(r"<(?:(\w+):)?(\w+)>")
_STATUS_LINES = {200: "200 OK", 201: "201 CREATED"}  # as werkzeug's Response writes them


def _lane_paths(app: Flask) -> list[LanePath]:
    """Each lane route's rule as a pattern over the path. The app refuses to start if a rule's arguments
    are not plain strings, a route's access is not members only (what the lane decides for it), or its
    body's items are checked one by one (the lane checks the whole body, as the body guard does)."""
    paths = []
    for (method, endpoint), route in ROUTES.items():
        (rule,) = [r for r in app.url_map.iter_rules(endpoint) if method in (r.methods or ())]
        pattern, at = "", 0
        for found in _RULE_ARGUMENT.finditer(rule.rule):
            if found.group(1) not in (None, "string"):
                raise RuntimeError(f"the write lane takes plain path arguments only: {rule.rule}")
            pattern += re.escape(rule.rule[at : found.start()]) + f"(?P<{found.group(2)}>[^/]+)"
            at = found.end()
        pattern += re.escape(rule.rule[at:])
        if declared_access(app, endpoint, method) != frozenset({Role.MEMBER}):
            raise RuntimeError(f"the write lane answers members only, and {endpoint} is not members' only")
        if api.per_item_field(app, endpoint, method):
            raise RuntimeError(f"the write lane checks a whole body, and {endpoint} checks its items")
        paths.append((method, re.compile(pattern), endpoint, rule.rule, route))
    return paths


class WriteLane:
    """WSGI middleware in front of Flask's dispatch: a lane route's common case answered here (see the
    module's docstring), anything else passed to `following` (Flask's `wsgi_app`) as it came."""

    def __init__(self, app: Flask, following: WSGIApplication) -> None:
        self.app, self.following = app, following
        self.paths = _lane_paths(app)
        self.json = cast("CompanionJSONProvider", app.json)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        found = self._match(environ)
        if found is None:
            return self.following(environ, start_response)
        environ[logs.REQUEST_STARTED] = time.perf_counter()
        with self.app.app_context():
            try:
                answer = self._answer(environ, *found)
            except Exception:
                # A fault of the lane's own: the full path answers (a record written meanwhile, as a
                # replay), and the lane's connection is not used again.
                log.exception("write lane failed; the request goes to the full path")
                _release(broken=True)
                answer = None
            finally:
                _release()
        if answer is None:
            return self.following(environ, start_response)
        status, headers, body = answer
        start_response(status, headers)
        return [body]

    def _match(self, environ: WSGIEnvironment) -> tuple[str, str, Route, dict[str, str]] | None:
        if not self.app.config["COMPANION_WRITE_LANE"]:
            return None
        method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")
        for lane_method, pattern, endpoint, rule, route in self.paths:
            if method == lane_method and (matched := pattern.fullmatch(path)) is not None:
                args = matched.groupdict()
                # werkzeug reads a path as UTF-8: anything past ASCII is left to its routing.
                return (endpoint, rule, route, args) if all(a.isascii() for a in args.values()) else None
        return None

    def _answer(
        self, environ: WSGIEnvironment, endpoint: str, rule: str, route: Route, args: dict[str, str]
    ) -> tuple[str, list[tuple[str, str]], bytes] | None:
        """The answer to a lane request, or None to hand it on (before writing, or having written
        nothing). In the app's context, without a request's."""
        if api.head_refusal(environ) is not None:
            return None
        scheme, _, raw_token = environ.get("HTTP_AUTHORIZATION", "").partition(" ")
        if scheme.lower() != "bearer" or not raw_token.strip():
            return None
        request_id = g.request_id = logs.request_id_of(environ)
        login = _login(raw_token.strip())
        if login is None:
            return None
        rate_limit_headers = ratelimit.count_default_limit(environ, endpoint, login.rate_limit_key)
        if rate_limit_headers is None:
            return None  # refused, or the limiter's storage down: Flask-Limiter answers for it
        body = self._body(environ)
        if body is None:
            return None
        try:
            data = route.input.load(body)
        except ValidationError:
            return None  # the full path answers the error, in its envelope
        connection = getattr(g, _CONNECTION, None) or _checkout()
        call = Call(login.member, login.token.family_id, login.guard, data, args, connection, utcnow())
        try:
            written = route.handle(call)
        except DomainError:
            written = None  # the full path answers the refusal (decided afresh: the kept login may be stale)
        except (psycopg.Error, DBAPIError):
            # Nothing was written, or (the connection lost after the commit) it was and the full path
            # answers it as a replay; a database that is down gets its 503 there.
            _release(broken=True)
            written = None
        if written is None:
            # A kept login may be out of date (a revoked token, a changed profile): forget it, so
            # Flask-Login reads the token through the session and access is decided from what it reads.
            current_app.extensions[_LOGINS].pop(login.guard["token_hash"], None)
            return None
        payload = self.json.response_body(route.output.dump(written.view))
        secure = [api.STRICT_TRANSPORT_SECURITY] if environ.get("wsgi.url_scheme") == "https" else []
        headers = [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(payload))),
            *api.SECURITY_HEADERS,
            *secure,
            ("X-Request-ID", request_id),
            *rate_limit_headers,
        ]  # in the order the app's hooks write them on Flask's answers
        seconds = time.perf_counter() - environ[logs.REQUEST_STARTED]
        logs.request_answered(environ["REQUEST_METHOD"], rule, written.status, seconds)
        return _STATUS_LINES[written.status], headers, payload

    def _body(self, environ: WSGIEnvironment) -> dict[str, Any] | None:
        """The body as the body guard (`api.require_json_object`) would pass it: JSON by its
        Content-Type, of a known length within the limit, an object whose text is valid; else None. What
        was read is put back for Flask's reader."""
        if environ.get("CONTENT_TYPE", "").partition(";")[0].strip().lower() != "application/json":
            return None
        length = environ.get("CONTENT_LENGTH", "")
        if not length.isdigit() or not 0 < int(length) <= self.app.config["MAX_CONTENT_LENGTH"]:
            return None
        raw = environ["wsgi.input"].read(int(length))
        environ["wsgi.input"] = io.BytesIO(raw)
        if len(raw) != int(length):
            return None  # a client gone before its body: Flask's reader refuses it
        try:
            body = api.parse_json(raw)
            if not isinstance(body, dict) or body_errors(body, skip=None):
                return None
        except (ValueError, RecursionError, TooDeep):
            return None
        g.json_body, g.json_body_text_clean = body, text_is_clean(raw)
        return body


def _login(raw_token: str) -> Login | None:
    """The token's login: the one this process kept, else read through the driver and kept; None for a
    token the lane does not take (the full path reads it again and answers for it)."""
    values = tokens.access_values(raw_token, now=utcnow())
    logins: dict[bytes, Login] = current_app.extensions[_LOGINS]
    login = logins.get(values["token_hash"])
    if login is None:
        login = _read_login(values)
        if login is not None:
            _keep(logins, values["token_hash"], login)
    return login


def _read_login(values: dict[str, Any]) -> Login | None:
    try:
        # The pool's connect raises the driver's own error (Engine.raw_connection does not wrap it).
        found = _run(_checkout(), tokens.ACCESS_VERSIONED, values, by_name=False)
    except (psycopg.Error, DBAPIError):
        _release(broken=True)  # the full path meets the database as it is, and answers for it (503)
        return None
    if not found:
        return None  # Flask-Login reads the token again through the session, and refuses it there
    row = found[0]
    token, user, member = tokens.access_from_row(row, build=new_detached)
    if member is None or user.role != Role.MEMBER:
        return None  # a staff account: the full path answers for it
    guard = {"token_hash": values["token_hash"], "user_version": row[-2], "member_version": row[-1]}
    return Login(token, member, guard, account_rate_limit_key(user.id))


class LaneConnections:
    """The lane's own connections, in autocommit mode, each made by the engine (its connect arguments and
    set-up) and detached from its pool: taking one is a list's pop, giving it back an append. Through the
    pool, the checkout and checkin and the two autocommit switches around them were a twentieth of a lane
    write's CPU (issue 20). At most `keep` stay idle (one per thread serving at once; more are closed);
    a broken one is closed, and the request it failed goes to the full path, which meets the database
    through the pool as it is. All are closed when the engine is disposed; a forked process opens its
    own."""

    def __init__(self, engine: Engine, keep: int) -> None:
        self._engine, self._keep = engine, keep
        self._idle: list[psycopg.Connection[Any]] = []
        self._pid = os.getpid()
        event.listen(engine, "engine_disposed", lambda _engine: self.close())

    def take(self) -> psycopg.Connection[Any]:
        if self._pid != os.getpid():
            self._idle, self._pid = [], os.getpid()  # the parent's sockets are not this process's
        try:
            return self._idle.pop()
        except IndexError:
            pooled = self._engine.raw_connection()
            connection = cast("psycopg.Connection[Any]", pooled.driver_connection)
            pooled.detach()
            connection.autocommit = True
            return connection

    def give(self, connection: psycopg.Connection[Any], *, broken: bool = False) -> None:
        idle = connection.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        if broken or connection.closed or not idle or len(self._idle) >= self._keep:
            connection.close()
        else:
            self._idle.append(connection)

    def close(self) -> None:
        while self._idle:
            self._idle.pop().close()


def _checkout() -> psycopg.Connection[Any]:
    """This request's lane connection (each statement its own transaction)."""
    lane: LaneConnections = current_app.extensions[_CONNECTIONS]
    connection = lane.take()
    setattr(g, _CONNECTION, connection)  # given back at the latest when the request ends
    return connection


def _release(*, broken: bool = False) -> None:
    connection = g.pop(_CONNECTION, None)
    if connection is not None:
        current_app.extensions[_CONNECTIONS].give(connection, broken=broken)


def init_app(app: Flask) -> None:
    """The lane's connections and what its process keeps; `WriteLane` wraps the app's `wsgi_app` once
    its routes are registered."""
    app.extensions[_CONNECTIONS] = LaneConnections(app.extensions["engine"], keep=LANE_CONNECTIONS_KEPT)
    app.extensions[_LOGINS] = {}
    app.extensions[_PLANS] = {}
