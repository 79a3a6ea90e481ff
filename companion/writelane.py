"""The member-write lane: the three busiest writes' common case, through the database driver.

`PUT /drink-logs/{date}`, `POST /cravings` and `POST /medication-checkins` are most of the traffic
(issue 20). Their common case (a valid body, a new record or an edit that replaces a stored day) is
answered here on a connection of its own in autocommit mode (`LaneConnections`): the bearer token
(read once per process) and the record's one statement (change lock, write, safety request: atomic on
its own), both run by psycopg without the ORM session, and the answer dumped by the route's own schema.
What makes it correct is reused, not copied: the token query (`tokens.ACCESS`), the input and answer
schemas, the services' checks and row builders (`prepare_drink_log`, `craving_values`, `checkin_row`)
and their statements (`rowset`).

Every other request, and any request the lane does not finish, takes the full path unchanged: the lane
answers only a success it wrote. Before it writes, anything unusual hands the request back untouched
(an invalid body, an unknown token, a staff account, a check-in with side effects, a craving whose
support nudge is due). Once written, the answer is the lane's. A statement that writes nothing
(a replay, a stale edit, a 409, a deleted day logged again) hands back too: the full path reads the
stored record and answers as before. The request hooks of the app (head limits, access policy, the JSON
body guard, Flask-Limiter, logs, metrics, security headers) run around the lane as around any view.

Two hooks: `authenticate` runs first (before Flask-Limiter, whose key is the account) and makes the
token's user the request's user: the login this process kept for the token (`Login`), else read through
the driver and kept; it also counts the request's rate limit (`ratelimit.count_default_limit`). `write`
runs after the body guard. A kept login is never trusted for a write: the record's statement writes
only while the token is live and the user's and member's rows are the versions read (a check-in's plan
likewise). A request handed back drops a kept login's user, so the view loads its own through the ORM
session, and the access policy is asked again. `COMPANION_WRITE_LANE` (default on) turns the lane off;
tests run both ways and compare the answers.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import psycopg
from flask import Flask, current_app, g, request
from flask.typing import ResponseReturnValue
from marshmallow import Schema, ValidationError
from psycopg.rows import dict_row, tuple_row
from sqlalchemy import event, literal_column
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from companion import jobs, ratelimit
from companion.accounts import tokens
from companion.accounts.models import Member, Role, User
from companion.auth import loaders
from companion.auth.access import enforce_access
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

_CONNECTION = "_write_lane_connection"
_CONNECTIONS = "write_lane_connections"  # app.extensions: the lane's idle connections
#: Idle lane connections a process keeps: gunicorn's threads a worker (`companion up` runs 4).
LANE_CONNECTIONS_KEPT = 4
_LOGIN = "_write_lane_login"
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
    """A bearer token as the lane read it (`tokens.ACCESS_VERSIONED`): the token, user and member built
    from its row (detached, read only), and the values of the write's guard. Kept by the process
    (`_LOGINS`), so a member's next write reads no token: its statement takes its lock, and so writes,
    only while the token is still live and the user's and member's rows are still these versions
    (`tokens.LIVE_LOGIN_GUARD`). Anything decided from a kept login before a write that did not happen
    is decided again from the database (`write`)."""

    token: tokens.AccessToken
    user: User
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


def _route() -> Route | None:
    if not current_app.config["COMPANION_WRITE_LANE"]:
        return None
    return ROUTES.get((request.method, request.endpoint or ""))


def authenticate() -> None:
    """Before Flask-Limiter: a lane route's bearer token as the request's user (a member's user and
    profile, detached from the session): the login this process kept for it, else read through the
    driver and kept. Anything else is left to Flask-Login."""
    if _route() is None or request.routing_exception is not None:
        return
    scheme, _, raw = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not raw.strip():
        return
    values = tokens.access_values(raw.strip(), now=utcnow())
    logins: dict[bytes, Login] = current_app.extensions[_LOGINS]
    login, row = logins.get(values["token_hash"]), None
    if login is None:
        read = _read_login(values)
        if read is None:
            return
        login, row = read
        _keep(logins, values["token_hash"], login)
    g.setdefault(_LOGIN, (login, row))  # the row when read in this request
    g.auth_token = login.token
    loaders.use_request_user(login.user)
    ratelimit.count_default_limit(login.rate_limit_key)  # the limit Flask-Limiter's hook would count


def _read_login(values: dict[str, Any]) -> tuple[Login, Sequence[Any]] | None:
    """The token's login read through the driver, and its row; None for a token the lane does not take
    (the connection is then given back: the full path reads the token again and answers for it)."""
    try:
        # The pool's connect raises the driver's own error (Engine.raw_connection does not wrap it).
        found = _run(_checkout(), tokens.ACCESS_VERSIONED, values, by_name=False)
    except (psycopg.Error, DBAPIError):
        _release(broken=True)  # the full path meets the database as it is, and answers for it (503)
        return None
    if not found:
        _release()  # Flask-Login reads the token again through the session, and refuses it there
        return None
    row = found[0]
    token, user, member = tokens.access_from_row(row, build=new_detached)
    if member is None or user.role != Role.MEMBER:
        _release()  # a staff account: the full path answers for it
        return None
    versions = {"user_version": row[-2], "member_version": row[-1]}
    guard = {"token_hash": values["token_hash"], **versions}
    return Login(token, user, member, guard, account_rate_limit_key(user.id)), row


def write() -> ResponseReturnValue | None:
    """After the body guard: the route's common case, answered; None hands the request to the view."""
    found = g.pop(_LOGIN, None)
    route = _route()
    if found is None or route is None:
        return None  # not a lane request, or its token is left to Flask-Login
    login, row = found
    written = None
    try:
        data = route.input.load(g.get("json_body") or {})
        args = request.view_args or {}
        connection = getattr(g, _CONNECTION, None) or _checkout()
        call = Call(login.member, login.token.family_id, login.guard, data, args, connection, utcnow())
        written = route.handle(call)
    except (ValidationError, DomainError):
        pass  # the full path answers the error, in its envelope
    except (psycopg.Error, DBAPIError):
        # Nothing was written, or (the connection lost after the commit) it was and the full path
        # answers it as a replay; a database that is down gets its 503 there.
        _release(broken=True)
    finally:
        _release()
    if written is not None:
        response = current_app.json.response(route.output.dump(written.view))
        response.status_code = written.status
        return response
    if row is not None:
        # Read in this request: the same user for the view, attached to its session as if Flask-Login
        # had loaded it.
        _token, user, _member = tokens.access_from_row(row)
        loaders.use_request_user(user)
        return None
    # A kept login may be out of date (a revoked token, a changed profile): forget it, let Flask-Login
    # read the token through the session, and decide access again from what it reads.
    current_app.extensions[_LOGINS].pop(login.guard["token_hash"], None)
    loaders.forget_request_user()
    enforce_access()
    return None


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


def _release(_exc: BaseException | None = None, *, broken: bool = False) -> None:
    connection = g.pop(_CONNECTION, None)
    if connection is not None:
        current_app.extensions[_CONNECTIONS].give(connection, broken=broken)


def init_app(app: Flask) -> None:
    """`authenticate` before Flask-Limiter's hook (call this first); `write` registered by the caller
    after the body guard; the connection always goes back to the pool."""
    app.extensions[_CONNECTIONS] = LaneConnections(app.extensions["engine"], keep=LANE_CONNECTIONS_KEPT)
    app.extensions[_LOGINS] = {}
    app.extensions[_PLANS] = {}
    app.before_request(authenticate)
    app.teardown_request(_release)
