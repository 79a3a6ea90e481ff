"""The authorization matrix (tests/security/matrix.py) run cell by cell, its completeness against the
URL map, and mass assignment: every server-owned field on every writing route refused by name."""

from __future__ import annotations

import itertools
import re
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from argon2 import PasswordHasher
from sqlalchemy import delete

from companion import db
from companion.accounts import passwords, tokens
from companion.accounts import services as accounts
from companion.accounts.models import Device, Role, User
from companion.auth import sessions as staff_sessions
from companion.safety.models import Flag
from companion.tracking.models import DrinkLog
from tests.conftest import PASSWORD, Api, registration
from tests.security import matrix

_numbers = itertools.count(1)
#: Fields no client may set anywhere, beyond those each route's answer shows (see `server_owned`).
ALWAYS_SERVER_OWNED = ("member_id", "user_id", "role", "coach_id", "insurer_id", "created_at", "deleted_at")


class World:
    """Two members with records, their coaches (one whose assignment ended), an admin, an analyst."""

    def __init__(self, app, client, staff) -> None:
        self.app, self.client = app, client
        with app.app_context(), db.unit_of_work():
            accounts.create_insurer("Plan A", "PLANA", now=db.utcnow())
            accounts.create_insurer("Plan B", "PLANB", now=db.utcnow())
        self.users: dict[str, uuid.UUID] = {}
        for actor in matrix.MEMBERS:
            r = Api(client).post("/auth/register", registration(timezone="UTC"))
            assert r.status_code == 201, r.get_json()
            self.users[actor] = uuid.UUID(r.get_json()["member"]["id"])
        self.emails = {actor: self._email(actor) for actor in matrix.MEMBERS}
        self.staff = {
            "coach": staff("coach"),
            "other_coach": staff("coach"),
            "ended_coach": staff("coach"),
            "admin": staff("admin"),
            "analyst": staff("insurer_analyst", insurer_code="PLANA"),
            "other_analyst": staff("insurer_analyst", insurer_code="PLANB"),
        }
        with app.app_context(), db.unit_of_work() as session:
            for actor, api in self.staff.items():
                self.users[actor] = session.query(User).filter_by(email=api.email).one().id
            now = db.utcnow()
            accounts.assign_coach(self.emails["member"], self.staff["ended_coach"].email, now=now)
            accounts.assign_coach(self.emails["member"], self.staff["coach"].email, now=now)
            accounts.assign_coach(self.emails["other_member"], self.staff["other_coach"].email, now=now)
        self.coach_of = {"member": self.staff["coach"], "other": self.staff["other_coach"]}
        self.owner = {"member": "member", "other": "other_member"}
        self.plans = {t: self._plan(t) for t in matrix.TARGETS}
        self.exports = {
            "member": self._export(self.staff["analyst"]),
            "other": self._export(self.staff["other_analyst"]),
        }

    def _email(self, actor: str) -> str:
        with self.app.app_context():
            return db.session.get(User, self.users[actor]).email

    def _plan(self, target: str) -> str:
        body = {"medication": "baclofen", "dose_mg": 5, "times": ["00:00"]}
        r = self.coach_of[target].post(
            f"/coach/members/{self.users[self.owner[target]]}/medication-plans", body
        )
        assert r.status_code == 201, r.get_json()
        return r.get_json()["id"]

    @staticmethod
    def _export(analyst: Api) -> str:
        body = {"period": {"start": "2026-01", "end": "2026-02"}, "format": "csv"}
        r = analyst.post("/insurer/exports", body)
        assert r.status_code == 202, r.get_json()
        return r.get_json()["id"]

    def token(self, actor: str) -> str | None:
        """A fresh access token of the actor's own (every cell gets one: some calls end a sign-in)."""
        if actor == "anonymous":
            return None
        with self.app.app_context(), db.unit_of_work() as session:
            return tokens.issue_pair(session.get(User, self.users[actor]), now=db.utcnow()).access_token

    # Path parameters: a record of the target's owner, made afresh where the call may change it.
    def param(self, kind: str, target: str) -> str:
        owner = self.owner.get(target, "member")
        member_id = self.users[owner]
        today = datetime.now(UTC).date()
        if kind == "member_id":
            return str(member_id)
        if kind == "plan":
            return self.plans[target]
        if kind == "export":
            return self.exports[target]
        if kind == "device":
            with self.app.app_context(), db.unit_of_work() as session:
                device = Device(member_id=member_id, platform="android", push_token=f"t-{uuid.uuid4().hex}")
                session.add(device)
                session.flush()
                return str(device.id)
        if kind == "message":
            r = self.coach_of[target].post(f"/coach/members/{member_id}/messages", {"body": "How are you?"})
            assert r.status_code == 201, r.get_json()
            return r.get_json()["id"]
        if kind == "flag":
            with self.app.app_context(), db.unit_of_work() as session:
                flag = Flag(member_id=member_id, rule=f"matrix_{next(_numbers)}", rule_version=1, tier=2,
                            status="open", evidence=["matrix"], summary="A test flag.", first_seen=today,
                            last_seen=today)  # fmt: skip
                session.add(flag)
                session.flush()
                return str(flag.id)
        if kind in ("empty_day", "logged_day"):
            for who in matrix.MEMBERS:  # the day is the caller's own; both members get the same state
                with self.app.app_context(), db.unit_of_work() as session:
                    session.execute(delete(DrinkLog).where(DrinkLog.member_id == self.users[who]))
                if kind == "logged_day":
                    r = Api(self.client, self.token(who)).put(f"/drink-logs/{today}", {"standard_drinks": 1})
                    assert r.status_code == 201, r.get_json()
            return today.isoformat()
        if kind == "asset":
            return "swagger-ui.css"
        if kind == "missing_static":
            return "nothing-here.txt"
        raise AssertionError(f"no fixture for {kind}")

    # Bodies: valid, so that only who is asking decides the answer.
    def body(self, kind: str, target: str) -> Any:
        now = datetime.now(UTC)
        if kind == "registration":
            return registration()
        if kind == "wrong_password":
            # An unknown email: the same 401 (failures are counted per email, so each cell has its own).
            return {"email": f"nobody-{uuid.uuid4().hex[:8]}@example.org", "password": "not the password"}
        if kind == "unknown_refresh":
            return {"refresh_token": "x" * 43}
        if kind == "patch_me":
            return {"display_name": "Robin"}
        if kind == "device":
            return {"platform": "ios", "push_token": f"ios-{uuid.uuid4().hex}"}
        if kind == "snooze":
            return {"minutes": 30}
        if kind == "drink_log":
            return {"standard_drinks": 2}
        if kind == "craving":
            return {"id": str(uuid.uuid4()), "recorded_at": now.isoformat(), "intensity": 4}
        if kind == "pacs":  # this week's, once per member (only members may post it)
            monday = now.date() - timedelta(days=now.date().weekday() + 7)  # last week's, in any zone
            return {"id": str(uuid.uuid4()), "week_of": str(monday), "items": [1, 2, 3, 4, 5]}
        if kind == "symptom_report":
            return {"id": str(uuid.uuid4()), "reported_at": now.isoformat(),
                    "symptoms": [{"code": "tremor", "severity": "mild"}]}  # fmt: skip
        if kind == "bac_reading":
            return {"id": str(uuid.uuid4()), "measured_at": now.isoformat(), "bac_g_dl": 0.0}
        if kind == "sync":
            return {"items": [{"type": "craving", "data": self.body("craving", target)}]}
        if kind == "checkin":
            slot = datetime.combine(now.date(), datetime.min.time(), UTC)
            return {"id": str(uuid.uuid4()), "plan_id": self.plans[target], "scheduled_for": slot.isoformat(),
                    "status": "taken", "taken_at": (slot + timedelta(minutes=5)).isoformat()}  # fmt: skip
        if kind == "resolve":
            return {"note": "Called the member; all well."}
        if kind == "message":
            return {"body": "Thinking of you."}
        if kind == "plan":
            return {"medication": "naltrexone", "dose_mg": 50, "times": ["09:00"]}
        if kind == "plan_change":
            return {"dose_mg": 10}
        if kind == "export":
            return {"period": {"start": "2026-01", "end": "2026-02"}, "format": "json"}
        if kind == "password":
            return {"password": PASSWORD}
        if kind == "dashboard_wrong_password":
            return {"email": f"nobody-{uuid.uuid4().hex[:8]}@example.org", "password": "not the password"}
        if kind == "dashboard_message":
            return {"body": "Thinking of you.", "message_id": str(uuid.uuid4())}
        if kind == "dashboard_plan":
            return {
                "medication": "naltrexone",
                "dose_mg": "50",
                "times": "09:00",
                "plan_id": str(uuid.uuid4()),
            }
        if kind == "dashboard_zone":
            return {"timezone": "Europe/Paris"}
        raise AssertionError(f"no body for {kind}")

    def browser(self):
        """A client of its own address: per-address limits (sign-up, sign-in) never add up across calls."""
        browser = self.app.test_client()
        n = next(_numbers)
        browser.environ_base["REMOTE_ADDR"] = f"10.250.{(n >> 8) % 256}.{n % 256}"
        return browser

    def dashboard_client(self, actor: str):
        """A browser with the actor's dashboard session (made directly: the sign-in page gives one only to
        coaches and admins, and a session of anyone else must be refused all the same)."""
        browser = self.browser()
        if actor == "anonymous":
            return browser
        browser.environ_base["HTTP_USER_AGENT"] = "matrix-browser"
        with self.app.app_context(), db.unit_of_work():
            epoch = db.session.get(User, self.users[actor]).session_epoch
            # The server-side session a sign-in would have made (tests/security/test_sessions.py shows a
            # cookie without one is refused): here only the role must decide.
            sid = staff_sessions.start(
                self.users[actor],
                agent="matrix-browser",
                address=browser.environ_base["REMOTE_ADDR"],
                now=db.utcnow(),
            ).id
        with browser.session_transaction() as session:
            session["_user_id"] = f"{self.users[actor]}:{epoch}"
            session["_fresh"] = True
            session["sid"] = str(sid)
            session["dashboard_seen_at"] = time.time()
        return browser

    def call(self, route: matrix.Route, actor: str, target: str):
        url = self.url(route, target)
        body = self.body(route.body, target) if route.body else None
        if route.rule.startswith("/dashboard"):
            return self.dashboard_client(actor).open(url, method=route.method, data=body)
        return Api(self.client, self.token(actor)).call(route.method, url, json=body)

    def url(self, route: matrix.Route, target: str) -> str:
        def fill(match: re.Match[str]) -> str:
            name = match.group(1).split(":")[-1]
            return self.param(route.params[name], target)

        return re.sub(r"<([^>]+)>", fill, route.rule)


@pytest.fixture
def world(app, client, staff, monkeypatch) -> World:
    # The matrix makes a few hundred calls; Argon2 at full strength would spend most of the time.
    monkeypatch.setattr(passwords, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    return World(app, client, staff)


def _rules(app) -> set[tuple[str, str]]:
    return {
        (method, rule.rule)
        for rule in app.url_map.iter_rules()
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }


def test_every_route_of_the_url_map_is_in_the_matrix(app):
    listed = [(r.method, r.rule) for r in matrix.ROUTES]
    assert len(listed) == len(set(listed)), "a route is listed twice"
    missing = _rules(app) - set(listed)
    assert missing == set(), f"routes without a row in tests/security/matrix.py: {sorted(missing)}"
    assert set(listed) - _rules(app) == set(), "rows for routes that no longer exist"


def test_every_route_has_a_cell_for_every_actor():
    for route in matrix.ROUTES:
        assert {actor for actor, _ in route.expect} == set(matrix.ACTORS), route.rule
        assert all(
            # 503: /readyz, with no worker or beat beside the test
            status in {200, 201, 202, 204, 302, 401, 403, 404, 409, 503}
            for status in route.expect.values()
        )


def test_every_cell_of_the_authorization_matrix(app, client, world, monkeypatch):
    # The dashboard's forms carry a CSRF token (tests/dashboard checks it); here only who asks matters.
    monkeypatch.setitem(app.config, "WTF_CSRF_ENABLED", False)
    results: dict[tuple[str, str, str, str], tuple[int, int]] = {}
    for route in matrix.ROUTES:
        for (actor, target), expected in route.expect.items():
            response = world.call(route, actor, target)
            if response.status_code == 302 and actor == "anonymous":
                assert response.location.startswith("/dashboard/login"), (route.rule, response.location)
            results[(route.method, route.rule, actor, target)] = (expected, response.status_code)
    wrong = {cell: got for cell, got in results.items() if got[0] != got[1]}
    unexpected_allows = {cell: got for cell, got in wrong.items() if got[1] < 300 <= got[0]}
    assert unexpected_allows == {}, f"ALLOWED where refusal expected: {unexpected_allows}"
    assert wrong == {}, "\n".join(f"{c}: expected {e}, got {g}" for c, (e, g) in wrong.items())
    assert len(results) >= 300
    test_every_cell_of_the_authorization_matrix.cells = len(results)  # type: ignore[attr-defined]  # a figure pinned on the test function for the report


# Mass assignment ---------------------------------------------------------------------------------


def _schema(spec: dict[str, Any], node: dict[str, Any] | None) -> dict[str, Any]:
    while node and "$ref" in node:
        node = spec["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]]
    return node or {}


def server_owned(spec: dict[str, Any], method: str, path: str) -> set[str]:
    """Fields the route answers with but does not take: the server's to set. Plus ALWAYS_SERVER_OWNED."""
    operation = spec["paths"][path][method.lower()]
    body = operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
    taken = set(_schema(spec, body).get("properties", {}))
    answered: set[str] = set()
    for status, response in operation["responses"].items():
        if status.startswith("2"):
            schema = response.get("content", {}).get("application/json", {}).get("schema")
            answered |= set(_schema(spec, schema).get("properties", {}))
    answered.discard("items")  # list envelopes
    return (answered | set(ALWAYS_SERVER_OWNED)) - taken


WRITES = [
    r
    for r in matrix.ROUTES
    if r.body and r.method in {"POST", "PUT", "PATCH"} and r.rule.startswith("/api/v1")
]


def _allowed_cell(route: matrix.Route) -> tuple[str, str]:
    """A caller the route lets through: signed out for public routes, else a signed-in one."""
    allowed = [cell for cell, status in route.expect.items() if status < 300]
    return next((cell for cell in allowed if cell[0] == "anonymous"), None) or allowed[0]


@pytest.mark.parametrize(
    "route", [r for r in WRITES if r.expect != matrix.everyone(401)], ids=lambda r: f"{r.method} {r.rule}"
)
def test_every_server_owned_field_is_refused_by_name(app, client, world, route):
    spec = client.get("/api/openapi.json").get_json()
    path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", route.rule)
    fields = server_owned(spec, route.method, path)
    assert fields >= set(ALWAYS_SERVER_OWNED)
    actor, target = _allowed_cell(route)
    for field in sorted(fields):
        body = world.body(route.body, target)
        body[field] = "2026-01-01T00:00:00Z" if field.endswith("_at") else str(uuid.uuid4())
        api = Api(world.browser(), world.token(actor))
        response = api.call(route.method, world.url(route, target), json=body)
        assert response.status_code == 422, (route.rule, field, response.status_code, response.get_json())
        assert field in response.get_json()["error"]["fields"], (route.rule, field, response.get_json())


def test_server_owned_fields_inside_a_sync_item_are_refused_by_name(world, client):
    member = Api(client, world.token("member"))
    for field in ("member_id", "date", "created_at", "changed_seq"):
        data = {**world.body("craving", "member"), field: str(date.today())}
        r = member.post("/sync", {"items": [{"type": "craving", "data": data}]})
        assert r.status_code == 200, r.get_json()
        (result,) = r.get_json()["results"]
        assert result["status"] == "invalid" and field in str(result["errors"]), (field, result)


def test_a_member_can_never_raise_their_own_role(world, client):
    member = Api(client, world.token("member"))
    for body in ({"role": "admin"}, {"role": Role.COACH.value, "display_name": "x"}):
        assert member.patch("/me", body).status_code == 422
    assert member.get("/me").status_code == 200  # still a member, and only that
    assert member.get("/coach/flags").status_code == 403
