"""The member-write lane (companion/writelane.py): the three busiest writes' common case answered through
the driver, without the ORM session, and every answer the same as the full path's.

Each scenario runs twice, for two members with the same bodies: once with the lane on, once with it off
(`COMPANION_WRITE_LANE`), and the two runs' statuses and bodies must match (server clocks aside)."""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text

from companion import db
from tests.api.test_medications import NOW, TODAY, assign, checkin, plan_made_earlier, slot
from tests.api.test_round_trips import _statements
from tests.conftest import Api

#: Set by the server, different in every run.
_CLOCKS = {"created_at", "server_updated_at", "updated_at", "changed_at"}


@pytest.fixture
def lane(app, monkeypatch):
    def switch(on: bool) -> None:
        monkeypatch.setitem(app.config, "COMPANION_WRITE_LANE", on)

    return switch


@pytest.fixture
def clock():
    import time_machine

    with time_machine.travel(NOW, tick=True) as traveller:
        yield traveller


def _same_shape(value: Any, plan_id: str | None) -> Any:
    if isinstance(value, dict):
        return {k: _same_shape(v, plan_id) for k, v in value.items() if k not in _CLOCKS}
    if isinstance(value, list):
        return [_same_shape(v, plan_id) for v in value]
    return "<plan>" if plan_id is not None and value == plan_id else value


def _member_with_plan(app, register, staff) -> tuple[Api, str]:
    """A member in New York with a coach, and a baclofen plan (08:00, 14:00, 20:00) since ten days ago."""
    member = register(timezone="America/New_York")
    coach = staff("coach")
    assign(app, member, coach)
    return member, plan_made_earlier(app, coach, member, now=NOW - timedelta(days=10))


def _scenario(member: Api, plan_id: str, ids: dict[str, str]) -> list[tuple[str, int, Any]]:
    """Every case of the three writes, in an order that makes each one happen."""
    day, yesterday = TODAY.isoformat(), (TODAY - timedelta(days=1)).isoformat()
    earlier, later = "2026-11-20T09:00:00-05:00", "2026-11-20T10:00:00-05:00"
    first, edited, newer = (
        "2026-11-20T08:00:00-05:00",
        "2026-11-20T11:00:00-05:00",
        "2026-11-20T12:00:00-05:00",
    )
    tomorrow = (TODAY + timedelta(days=1)).isoformat()
    craving = {"id": ids["craving"], "recorded_at": earlier}
    dose = slot(TODAY, "08:00")
    calls: list[tuple[str, str, str, Any]] = [
        ("new day", "PUT", f"/drink-logs/{day}", {"standard_drinks": "2", "updated_at": first}),
        ("same body again", "PUT", f"/drink-logs/{day}", {"standard_drinks": "2", "updated_at": first}),
        ("edit", "PUT", f"/drink-logs/{day}",
         {"standard_drinks": "3", "note": "dinner", "updated_at": edited}),
        ("newer edit, same amounts", "PUT", f"/drink-logs/{day}",
         {"standard_drinks": "3", "note": "dinner", "updated_at": newer}),
        ("stale edit", "PUT", f"/drink-logs/{day}", {"standard_drinks": "5", "updated_at": later}),
        ("edit without a time", "PUT", f"/drink-logs/{day}", {"standard_drinks": "4"}),
        ("drinks listed", "PUT", f"/drink-logs/{yesterday}",
         {"drinks": [{"kind": "beer", "volume_ml": 355, "abv_percent": "5"}]}),
        ("tomorrow", "PUT", f"/drink-logs/{tomorrow}", {"standard_drinks": "1"}),
        ("not a date", "PUT", "/drink-logs/2026-13-01", {"standard_drinks": "1"}),
        ("negative", "PUT", f"/drink-logs/{day}", {"standard_drinks": "-1"}),
        ("unknown field", "PUT", f"/drink-logs/{day}", {"standard_drinks": "1", "mood": "ok"}),
        ("empty body", "PUT", f"/drink-logs/{day}", {}),
        ("delete", "DELETE", f"/drink-logs/{yesterday}", None),
        ("deleted day logged again", "PUT", f"/drink-logs/{yesterday}", {"standard_drinks": "1"}),
        ("craving", "POST", "/cravings", {**craving, "intensity": 3}),
        ("craving again", "POST", "/cravings", {**craving, "intensity": 3}),
        ("craving changed", "POST", "/cravings", {**craving, "intensity": 4}),
        ("high craving", "POST", "/cravings",
         {"id": ids["high"], "recorded_at": later, "intensity": 9, "triggers": ["stress"]}),
        ("live high craving", "POST", "/cravings",
         {"id": ids["live"], "recorded_at": "2026-11-20T14:59:00-05:00", "intensity": 8}),
        ("future craving", "POST", "/cravings",
         {"id": ids["future"], "recorded_at": "2026-11-21T10:00:00-05:00", "intensity": 2}),
        ("craving without id", "POST", "/cravings", {"recorded_at": earlier, "intensity": 2}),
        ("check-in", "POST", "/medication-checkins", checkin(plan_id, slot(TODAY, "08:00"), id=ids["dose"])),
        ("check-in again", "POST", "/medication-checkins",
         checkin(plan_id, slot(TODAY, "08:00"), id=ids["dose"])),
        ("slot taken", "POST", "/medication-checkins", checkin(plan_id, dose, id=ids["other"])),
        ("not a slot", "POST", "/medication-checkins", checkin(plan_id, slot(TODAY, "09:00"), id=ids["odd"])),
        ("side effects", "POST", "/medication-checkins",
         checkin(plan_id, slot(TODAY, "14:00"), id=ids["effects"],
                 side_effects=[{"code": "drowsiness", "severity": "mild"}])),
        ("not my plan", "POST", "/medication-checkins",
         checkin(str(uuid.uuid4()), slot(TODAY, "08:00"), id=ids["stray"])),
        ("no token", "POST", "/cravings", {"id": ids["anon"], "recorded_at": earlier, "intensity": 1}),
    ]  # fmt: skip
    out = []
    for name, method, path, body in calls:
        caller = Api(member.client) if name == "no token" else member
        r = caller.call(method, path, json=body)
        out.append((name, r.status_code, _same_shape(r.get_json(silent=True), plan_id)))
    for name, method, path, _body in calls:
        if method == "PUT" and name == "new day":
            stored = member.get(path)
            out.append(("stored day", stored.status_code, _same_shape(stored.get_json(), plan_id)))
    listed = member.get("/cravings", query_string={"from": "2026-11-19", "to": "2026-11-20"}).get_json()
    out.append(("cravings listed", 200, _same_shape(listed, plan_id)))
    return out


def test_every_case_answers_the_same_with_the_lane_as_without(app, lane, register, staff, clock):
    ids = {k: str(uuid.uuid4()) for k in ("craving", "high", "live", "future", "dose", "other", "odd",
                                          "effects", "stray", "anon")}  # fmt: skip
    results = {}
    for on in (True, False):
        lane(on)
        member, plan_id = _member_with_plan(app, register, staff)
        results[on] = _scenario(member, plan_id, ids)
        with app.extensions["engine"].connect() as conn:
            support = conn.execute(
                text("SELECT subject_id FROM nudges WHERE member_id = :m AND kind = 'craving_support'"),
                {"m": member.body["member"]["id"]},
            ).scalars()
            results[on].append(("support nudges", 0, sorted(str(s) for s in support)))
    assert results[True] == results[False]
    # A rating recent enough to help gets its support nudge (the view plans it); one from hours ago none.
    assert results[True][-1][2] == [ids["live"]]
    statuses = {name: status for name, status, _ in results[True]}
    assert statuses == {
        "new day": 201, "same body again": 200, "edit": 200, "newer edit, same amounts": 200,
        "stale edit": 409, "edit without a time": 200,
        "drinks listed": 201, "tomorrow": 422, "not a date": 422, "negative": 422, "unknown field": 422,
        "empty body": 422, "delete": 204, "deleted day logged again": 201, "craving": 201,
        "craving again": 200, "craving changed": 409, "high craving": 201, "live high craving": 201,
        "future craving": 422,
        "craving without id": 422, "check-in": 201, "check-in again": 200, "slot taken": 409,
        "not a slot": 422, "side effects": 201, "not my plan": 404, "no token": 401, "stored day": 200,
        "cravings listed": 200, "support nudges": 0,
    }  # fmt: skip


#: Headers whose values differ from one answer to the next whoever answers.
_PER_ANSWER = {"X-Request-ID", "X-RateLimit-Reset", "Content-Length"}


def test_the_lanes_answer_carries_what_the_full_paths_does(app, lane, register, staff, clock, caplog):
    """The lane answers before Flask's dispatch (`writelane.WriteLane`), so every header Flask's hooks put
    on an answer is the lane's to write: the same headers in the same order (security headers, HSTS behind
    TLS, the client's request id, the rate limit's), the same JSON bytes, the same access line."""
    ids = {k: str(uuid.uuid4()) for k in ("craving", "dose")}
    seen = {}
    for on in (True, False):
        lane(on)
        member, plan_id = _member_with_plan(app, register, staff)
        caplog.clear()
        https = {"wsgi.url_scheme": "https"}
        answers = [
            member.put(f"/drink-logs/{TODAY}", {"standard_drinks": "2"}, environ_overrides=https,
                       headers={"X-Request-ID": f"phone-request-{on}"}),
            member.put(f"/drink-logs/{TODAY}", {"standard_drinks": "3", "note": "dinner"}),
            member.post("/cravings", {"id": ids["craving"], "recorded_at": "2026-11-20T09:00:00-05:00",
                                      "intensity": 2, "triggers": ["stress"]}),
            member.post("/medication-checkins", checkin(plan_id, slot(TODAY, "14:00"), id=ids["dose"])),
        ]  # fmt: skip
        assert [r.status_code for r in answers] == [201, 200, 201, 201]
        assert answers[0].headers["X-Request-ID"] == f"phone-request-{on}"
        assert "Strict-Transport-Security" in answers[0].headers
        assert "Strict-Transport-Security" not in answers[1].headers
        for r in answers:  # Flask's JSON: compact, one line, a newline at the end
            assert r.data.decode() == json.dumps(r.get_json(), separators=(",", ":")) + "\n"
            assert len(r.headers["X-Request-ID"]) >= 8
        lines = [
            (r.request_id, r.method, r.route, r.status)
            for r in caplog.records if r.name == "companion.access"
        ]  # fmt: skip
        assert [line[0] for line in lines] == [r.headers["X-Request-ID"] for r in answers]
        seen[on] = [
            (r.status_code, [(k, v) for k, v in r.headers if k not in _PER_ANSWER],
             _same_shape(r.get_json(), plan_id))
            for r in answers
        ] + [line[1:] for line in lines]  # fmt: skip
    assert seen[True] == seen[False]
    assert seen[True][4] == ("PUT", "/api/v1/drink-logs/<day>", 201)


def test_a_request_the_lane_counted_and_handed_on_is_counted_once(app, lane, register, monkeypatch, clock):
    """The lane counts a request against the rate limit before it reads the body; a request it then hands
    to Flask (a body its schema refuses, a conflict its statement did not write) is not counted again."""
    monkeypatch.setitem(app.config, "COMPANION_RATELIMIT_DEFAULT", "3 per minute")
    seen = {}
    for on in (True, False):
        lane(on)
        member = register(timezone="America/New_York")
        craving = {"id": str(uuid.uuid4()), "recorded_at": "2026-11-20T09:00:00-05:00", "intensity": 2}
        answers = [
            member.post("/cravings", {**craving, "intensity": 11}),
            member.post("/cravings", craving),
            member.post("/cravings", {**craving, "intensity": 3}),
            member.post("/cravings", {**craving, "id": str(uuid.uuid4())}),
        ]
        seen[on] = [(r.status_code, r.headers.get("X-RateLimit-Remaining")) for r in answers]
    assert seen[True] == seen[False] == [(422, "2"), (201, "1"), (409, "0"), (429, "0")]


def test_a_fault_in_the_lane_goes_to_the_full_path_and_stores_once(app, lane, register, monkeypatch, clock):
    """A fault of the lane's own after its write (here its answer's JSON): the request goes to the full
    path, which finds the record stored and answers it as a replay; one record, counted once."""
    from companion.jsonprovider import CompanionJSONProvider

    lane(True)
    member = register(timezone="America/New_York")
    craving = {"id": str(uuid.uuid4()), "recorded_at": "2026-11-20T09:00:00-05:00", "intensity": 2}
    first = member.post("/cravings", {**craving, "id": str(uuid.uuid4())})
    assert first.status_code == 201

    def broken(self, obj):
        raise RuntimeError("the lane's own fault")

    monkeypatch.setattr(CompanionJSONProvider, "response_body", broken)
    r = member.post("/cravings", craving)
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["id"] == craving["id"] and r.get_json()["intensity"] == 2
    remaining = int(first.headers["X-RateLimit-Remaining"])
    assert int(r.headers["X-RateLimit-Remaining"]) == remaining - 1
    with app.extensions["engine"].connect() as conn:
        stored = conn.execute(text("SELECT count(*) FROM cravings WHERE id = :i"), {"i": craving["id"]})
        assert stored.scalar_one() == 1


def _family_of(app, token: str) -> uuid.UUID:
    with app.extensions["engine"].connect() as conn:
        return conn.execute(
            text("SELECT family_id FROM auth_tokens WHERE token_hash = :h"),
            {"h": hashlib.sha256(token.encode()).digest()},
        ).scalar_one()


def test_the_common_case_runs_no_statement_through_the_orm_session(app, lane, register, staff, clock):
    """With the lane, a new day, an edit, a low craving and a check-in without side effects are answered
    by the lane (no statement through SQLAlchemy's execution); without it, by the views. Either way
    the records carry their change number and the login that made them, and the member is due a scan."""
    for on in (True, False):
        lane(on)
        member, plan_id = _member_with_plan(app, register, staff)
        craving = {"id": str(uuid.uuid4()), "recorded_at": "2026-11-20T09:00:00-05:00", "intensity": 2}
        with _statements(app) as seen:
            assert member.put(f"/drink-logs/{TODAY}", {"standard_drinks": "2"}).status_code == 201
            assert member.put(f"/drink-logs/{TODAY}", {"standard_drinks": "3"}).status_code == 200
            assert member.post("/cravings", craving).status_code == 201
            r = member.post("/medication-checkins", checkin(plan_id, slot(TODAY, "14:00")))
            assert r.status_code == 201, r.get_json()
        assert (seen == []) is on, seen
        family = _family_of(app, member.token)
        member_id = member.body["member"]["id"]
        with app.extensions["engine"].connect() as conn:
            for table in ("drink_logs", "cravings", "medication_checkins"):
                stamps = conn.execute(
                    text(f"SELECT change_seq, changed_by FROM {table} WHERE member_id = :m"), {"m": member_id}
                ).all()
                assert stamps and all(seq is not None and by == family for seq, by in stamps), table
            due = conn.execute(
                text("SELECT next_check_at FROM safety_watch WHERE member_id = :m"), {"m": member_id}
            ).scalar_one()
            assert due is not None


def test_tokens_the_lane_does_not_accept_get_the_full_paths_answer(app, lane, register, staff, clock):
    lane(True)
    member = register(timezone="America/New_York")
    body = {"id": str(uuid.uuid4()), "recorded_at": "2026-11-20T09:00:00-05:00", "intensity": 2}
    coach = staff("coach")
    assert coach.post("/cravings", body).status_code == 403
    assert Api(member.client, "not-a-token").post("/cravings", body).status_code == 401
    assert member.post("/auth/logout").status_code == 204
    assert member.post("/cravings", body).status_code == 401
    assert member.put(f"/drink-logs/{TODAY}", {"standard_drinks": "1"}).status_code == 401
    with app.extensions["engine"].connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM cravings")).scalar_one() == 0
        assert conn.execute(text("SELECT count(*) FROM drink_logs")).scalar_one() == 0


def test_the_rate_limit_counts_lane_writes_and_refuses_past_it(app, lane, register, monkeypatch, clock):
    """The lane counts its writes against the default limit itself (`ratelimit.count_default_limit`),
    in Flask-Limiter's own count: the statuses, the 429's body and every rate-limit header are the same as
    without the lane, and a write past the limit stores nothing."""
    from companion import ratelimit

    counted: list[bool] = []
    count = ratelimit.count_default_limit

    def counting(*args):
        headers = count(*args)
        counted.append(headers is not None)
        return headers

    monkeypatch.setattr(ratelimit, "count_default_limit", counting)
    monkeypatch.setitem(app.config, "COMPANION_RATELIMIT_DEFAULT", "3 per minute")
    seen = {}
    for on in (True, False):
        lane(on)
        member = register(timezone="America/New_York")
        answers = []
        for n in range(4):
            body = {"id": str(uuid.uuid4()), "recorded_at": "2026-11-20T09:00:00-05:00", "intensity": n}
            answers.append(member.post("/cravings", body))
        answers.append(member.put(f"/drink-logs/{TODAY}", {"standard_drinks": "1"}))  # a route of its own
        assert [r.status_code for r in answers] == [201, 201, 201, 429, 201]
        assert answers[3].get_json()["error"]["code"] == "rate_limited"
        assert [r.headers["X-RateLimit-Remaining"] for r in answers] == ["2", "1", "0", "0", "2"]
        seen[on] = [
            (r.get_json() if r.status_code == 429 else None,
             {h: r.headers.get(h) for h in ("X-RateLimit-Limit", "X-RateLimit-Remaining", "Retry-After")})
            for r in answers
        ]  # fmt: skip
        # The window ends a minute after its first write (give or take the second the clock is in).
        assert all(58 <= int(r.headers["X-RateLimit-Reset"]) - time.time() <= 62 for r in answers)
        with app.extensions["engine"].connect() as conn:
            assert (
                conn.execute(
                    text("SELECT count(*) FROM cravings WHERE member_id = :m"),
                    {"m": member.body["member"]["id"]},
                ).scalar_one()
                == 3
            )
    assert seen[True] == seen[False]
    # With the lane: three writes and the day counted by it; the fourth refused by Flask-Limiter's own hook.
    assert counted == [True, True, True, False, True]


def test_the_lane_gives_back_its_connection(app, lane, register, clock):
    """Every request, answered by the lane or handed back, gives back the connections it took: the lane's
    own stays idle for the next request (one, as these come one at a time), the pool's goes to the pool."""
    lane(True)
    member = register(timezone="America/New_York")
    pool, own = app.extensions["engine"].pool, app.extensions["write_lane_connections"]
    own.close()  # earlier tests' idle connections (the app is the session's)
    before = pool.checkedout()
    used = set()
    for n in range(3):
        body = {"id": str(uuid.uuid4()), "recorded_at": "2026-11-20T09:00:00-05:00", "intensity": 2 + 4 * n}
        assert member.post("/cravings", body).status_code == 201
        assert member.post("/cravings", {**body, "intensity": 1}).status_code == 409
        assert member.put(f"/drink-logs/{TODAY}", {"standard_drinks": "x"}).status_code == 422
        used.update(id(connection) for connection in own._idle)
    db.session.remove()
    assert pool.checkedout() == before
    assert len(own._idle) == 1 and len(used) == 1
    assert own._idle[0].autocommit


def test_a_broken_lane_connection_loses_no_write(app, lane, register, clock):
    """A lane connection the database has dropped (a restart, an idle timeout): the write it failed is
    answered by the full path and stored once, the broken connection is closed, and the next write takes
    a new one."""
    lane(True)
    member = register(timezone="America/New_York")
    own = app.extensions["write_lane_connections"]
    own.close()  # earlier tests' idle connections (the app is the session's)
    assert member.put(f"/drink-logs/{TODAY}", {"standard_drinks": "1"}).status_code == 201
    (broken,) = own._idle
    with app.extensions["engine"].connect() as conn:
        conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": broken.info.backend_pid})
        conn.commit()
    body = {"id": str(uuid.uuid4()), "recorded_at": "2026-11-20T09:00:00-05:00", "intensity": 3}
    assert member.post("/cravings", body).status_code == 201
    assert broken.closed and broken not in own._idle
    assert member.post("/cravings", body).status_code == 200  # a replay, answered as one
    with app.extensions["engine"].connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM cravings")).scalar_one() == 1
    (replacement,) = own._idle
    assert not replacement.closed and replacement is not broken


def test_the_lanes_connections_close_with_the_engine(config):
    """The lane's idle connections are closed when the app's engine is disposed (a test's app, a
    process shutting down), and a forked process does not use its parent's."""
    from companion.app import create_app

    other = create_app(config)
    own = other.extensions["write_lane_connections"]
    connection = own.take()
    own.give(connection)
    assert own._idle == [connection]
    own._pid = -1  # as seen from a child process
    childs = own.take()
    assert childs is not connection and own._idle == []
    own.give(childs)
    other.extensions["engine"].dispose()
    assert childs.closed and own._idle == []


@pytest.mark.parametrize(
    ("method", "endpoint", "refusal"),
    [
        ("POST", "safety.acknowledge", "plain path arguments"),  # /coach/flags/<uuid:flag_id>/...
        ("GET", "safety.flags", "members only"),
        ("POST", "tracking.Sync", "checks its items"),
    ],
)
def test_the_app_refuses_to_start_with_a_lane_route_it_cannot_answer_alike(
    config, monkeypatch, method, endpoint, refusal
):
    """The lane decides for its routes what their rules, access declarations and body checks decide in
    Flask; a route where it could not (a typed path argument, access beyond members, a body checked item
    by item) stops the app at start-up."""
    from companion import writelane
    from companion.app import create_app

    route = writelane.ROUTES[("POST", "tracking.Cravings")]
    monkeypatch.setitem(writelane.ROUTES, (method, endpoint), route)
    with pytest.raises(RuntimeError, match=refusal):
        create_app(config)


def test_a_statement_for_the_driver_takes_its_types_and_wants_every_value(app):
    """`db.driver_statement`: the token query's enum compared by its name and its bytes as binary; the
    record statement's parameters as given; a missing one is an error, never a NULL."""
    from companion.accounts import tokens
    from companion.tracking.services import DRINK_LOGS, REPLACE_STORED_LOG

    dialect = app.extensions["engine"].dialect
    access = db.driver_statement(tokens.ACCESS, dialect)
    assert "auth_tokens.kind = %(kind_1)s" in access.sql
    passed = access.params({"token_hash": b"\x01", "now": NOW})
    assert passed["kind_1"] == "access" and passed["now"] == NOW
    assert passed["token_hash"].obj == b"\x01"  # psycopg's Binary, as SQLAlchemy's LargeBinary passes it
    record = db.driver_statement(DRINK_LOGS.statement(lock=True, update=REPLACE_STORED_LOG), dialect)
    given = {"member_id": 1, "origin": None, "now": NOW, "rows": "[]", "client_updated_at": None}
    assert record.params(given) == given
    with pytest.raises(KeyError):
        record.params({k: v for k, v in given.items() if k != "client_updated_at"})


def test_the_drivers_rows_are_the_values_sqlalchemy_gives(app, register):
    """The token's row read through the driver (as the lane reads it) equals SQLAlchemy's own: the role an
    enum, a weekly limit a Decimal, the muted kinds a list."""
    from companion.accounts import tokens
    from companion.accounts.models import Role

    member = register(timezone="Europe/Paris", goal={"type": "moderate", "weekly_limit": 7.5})
    values = tokens.access_values(member.token, now=db.utcnow())
    engine = app.extensions["engine"]
    with engine.connect() as conn:
        expected = tuple(conn.execute(tokens.ACCESS, values).one())
    assert expected[-8:] != (None,) * 8  # a member's profile came with it
    access = db.driver_statement(tokens.ACCESS, engine.dialect)
    raw = engine.raw_connection()
    try:
        with raw.driver_connection.cursor() as cursor:
            cursor.execute(access.sql, access.params(values))
            got = access.row(cursor.fetchone())
        raw.driver_connection.rollback()
    finally:
        raw.close()
    assert got == expected
    names = [c.name for c in tokens.ACCESS.selected_columns]
    assert type(got[names.index("role")]) is Role


def _lane_reads(monkeypatch) -> list[str]:
    """The lane's reads of a token and of a check-in's plan, counted as they happen (the reads themselves
    run as always)."""
    from companion import writelane
    from companion.accounts import tokens

    reads: list[str] = []
    run = writelane._run
    names = {id(tokens.ACCESS_VERSIONED): "token", id(writelane.PLAN_VERSIONED): "plan"}

    def counting(connection, statement, values, **kw):
        if id(statement) in names:
            reads.append(names[id(statement)])
        return run(connection, statement, values, **kw)

    monkeypatch.setattr(writelane, "_run", counting)
    return reads


def test_a_members_next_write_reads_no_token(app, lane, register, monkeypatch, clock):
    """The process keeps the login it read: a member's following writes take it from there."""
    lane(True)
    reads = _lane_reads(monkeypatch)
    member = register(timezone="America/New_York")
    for n in range(3):
        body = {"id": str(uuid.uuid4()), "recorded_at": "2026-11-20T09:00:00-05:00", "intensity": n}
        assert member.post("/cravings", body).status_code == 201
    assert member.put(f"/drink-logs/{TODAY}", {"standard_drinks": "1"}).status_code == 201
    assert reads == ["token"]


def test_an_out_of_date_kept_login_writes_nothing(app, lane, register, monkeypatch, clock):
    """A kept login whose token was revoked, or whose profile changed, writes nothing through the lane:
    the request is decided again from the database (401 for the revoked token, the new profile's heavy
    threshold for the changed one), and the next write reads the login afresh."""
    lane(True)
    reads = _lane_reads(monkeypatch)
    member = register(timezone="America/New_York", sex="male")
    day, yesterday = TODAY.isoformat(), (TODAY - timedelta(days=1)).isoformat()
    assert member.put(f"/drink-logs/{day}", {"standard_drinks": "4"}).get_json()["heavy"] is False
    assert member.patch("/me", {"sex": "female"}).status_code == 200
    # Four drinks are a heavy day for a woman: the kept login still says male, and must not decide it.
    r = member.put(f"/drink-logs/{yesterday}", {"standard_drinks": "4"})
    assert r.status_code == 201 and r.get_json()["heavy"] is True
    assert member.put(f"/drink-logs/{day}", {"standard_drinks": "4.5"}).get_json()["heavy"] is True
    assert reads == ["token", "token"]

    other = register(timezone="America/New_York")
    body = {"id": str(uuid.uuid4()), "recorded_at": "2026-11-20T09:00:00-05:00", "intensity": 2}
    assert other.post("/cravings", body).status_code == 201
    assert other.post("/auth/logout").status_code == 204
    late = {"id": str(uuid.uuid4()), "recorded_at": "2026-11-20T09:30:00-05:00", "intensity": 3}
    assert other.post("/cravings", late).status_code == 401
    assert other.put(f"/drink-logs/{day}", {"standard_drinks": "1"}).status_code == 401
    with app.extensions["engine"].connect() as conn:
        stored = (
            conn.execute(
                text("SELECT id::text FROM cravings WHERE member_id = :m"), {"m": other.body["member"]["id"]}
            )
            .scalars()
            .all()
        )
        assert stored == [body["id"]]
        assert (
            conn.execute(
                text("SELECT count(*) FROM drink_logs WHERE member_id = :m"),
                {"m": other.body["member"]["id"]},
            ).scalar_one()
            == 0
        )


def test_the_write_guard_holds_a_token_to_the_token_querys_own_conditions(app, register):
    """`tokens.LIVE_LOGIN_GUARD` finds a row exactly when `tokens.ACCESS` does (a live access token of a
    member not erased) and the versions it was read at still hold."""
    from companion.accounts import tokens

    engine = app.extensions["engine"]
    member = register(timezone="Europe/Paris")
    member_id = member.body["member"]["id"]
    refresh = member.body["refresh_token"]
    guard = text(f"SELECT count(*) {tokens.LIVE_LOGIN_GUARD}")

    def both(raw: str, change: str | None = None) -> tuple[bool, bool]:
        values = tokens.access_values(raw, now=db.utcnow())
        with engine.begin() as conn:
            row = conn.execute(tokens.ACCESS_VERSIONED, values).first()
            versions = {"user_version": row[-2], "member_version": row[-1]} if row else {}
            if change:
                conn.execute(text(change), {"m": member_id})
        with engine.begin() as conn:
            live = conn.execute(tokens.ACCESS, values).first() is not None
            held = versions and conn.execute(guard, {**values, **versions, "member_id": member_id}).scalar()
        return live, bool(held)

    assert both(member.token) == (True, True)
    assert both(refresh) == (False, False)  # a refresh token is no access token
    with engine.connect() as conn:  # not even at the versions its access token was read at
        versions = conn.execute(tokens.ACCESS_VERSIONED, tokens.access_values(member.token, now=db.utcnow()))
        user_version, member_version = versions.one()[-2:]
        as_refresh = {**tokens.access_values(refresh, now=db.utcnow()), "member_id": member_id}
        as_refresh.update(user_version=user_version, member_version=member_version)
        assert conn.execute(guard, as_refresh).scalar() == 0
    assert both(member.token, "UPDATE members SET sex = 'female' WHERE id = :m") == (True, False)
    assert both(member.token, "UPDATE users SET display_name = 'M' WHERE id = :m") == (True, False)
    assert both(member.token) == (True, True)  # read again at the new versions
    for change in (
        "UPDATE auth_tokens SET expires_at = now() - interval '1 second' WHERE user_id = :m",
        "UPDATE auth_tokens SET revoked_at = now() WHERE user_id = :m",
        "UPDATE users SET deleted_at = now() WHERE id = :m",
    ):
        with engine.begin() as conn:  # the token as it was, then changed as each case says
            conn.execute(
                text("UPDATE auth_tokens SET expires_at = now() + interval '1 hour', revoked_at = NULL "
                     "WHERE user_id = :m AND kind = 'access'"), {"m": member_id},
            )  # fmt: skip
            conn.execute(text("UPDATE users SET deleted_at = NULL WHERE id = :m"), {"m": member_id})
        values = tokens.access_values(member.token, now=db.utcnow())
        with engine.begin() as conn:
            row = conn.execute(tokens.ACCESS_VERSIONED, values).one()
            conn.execute(text(change), {"m": member_id})
        with engine.begin() as conn:
            assert conn.execute(tokens.ACCESS, values).first() is None, change
            versions = {"user_version": row[-2], "member_version": row[-1], "member_id": member_id}
            assert conn.execute(guard, {**values, **versions}).scalar() == 0, change


def test_a_check_in_against_a_changed_plan_is_decided_afresh(app, lane, register, staff, monkeypatch, clock):
    """A check-in's plan is kept by the process, and its write holds only while the plan's row is the
    version it was checked against: after the plan ended, the next check-in is the full path's to answer
    (as without the lane), and the one after it reads the plan again."""
    reads = _lane_reads(monkeypatch)
    answers = {}
    for on in (True, False):
        lane(on)
        member, plan_id = _member_with_plan(app, register, staff)
        assert member.post("/medication-checkins", checkin(plan_id, slot(TODAY, "08:00"))).status_code == 201
        with app.extensions["engine"].begin() as conn:
            ended = text("UPDATE medication_plans SET end_date = start_date WHERE id = :p")
            conn.execute(ended, {"p": plan_id})
        late = member.post("/medication-checkins", checkin(plan_id, slot(TODAY, "14:00")))
        answers[on] = (late.status_code, _same_shape(late.get_json(), plan_id))
        with app.extensions["engine"].connect() as conn:
            stored = conn.execute(
                text("SELECT count(*) FROM medication_checkins WHERE plan_id = :p"), {"p": plan_id}
            ).scalar_one()
        assert stored == 1
    assert answers[True] == answers[False] and answers[True][0] >= 400, answers
    # With the lane: the member's token and the plan read once, kept, then handed to the full path.
    assert reads.count("plan") == 1


def test_a_check_in_a_kept_plan_refuses_reads_the_plan_again(app, lane, register, staff, monkeypatch, clock):
    """A kept plan that refuses a check-in (here a dose time added since it was read) is dropped: the full
    path answers from the plan as it is, and the next check-in reads it again."""
    reads = _lane_reads(monkeypatch)
    lane(True)
    member, plan_id = _member_with_plan(app, register, staff)
    assert member.post("/medication-checkins", checkin(plan_id, slot(TODAY, "08:00"))).status_code == 201
    with app.extensions["engine"].begin() as conn:
        four_times = "ARRAY['08:00', '14:00', '15:00', '20:00']::time[]"
        conn.execute(text(f"UPDATE medication_plans SET times = {four_times} WHERE id = :p"), {"p": plan_id})
    r = member.post("/medication-checkins", checkin(plan_id, slot(TODAY, "15:00")))
    assert r.status_code == 201, r.get_json()
    assert member.post("/medication-checkins", checkin(plan_id, slot(TODAY, "14:00"))).status_code == 201
    assert reads.count("plan") == 2
