"""API.md "Coach": GET /coach/flags, acknowledge, resolve; every status code."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from companion import db
from companion.audit.models import AuditEntry
from companion.safety.models import Flag
from tests.safety import helpers

NOW = datetime(2026, 11, 20, 18, 0, tzinfo=UTC)
DAY = timedelta(days=1)


@pytest.fixture
def clock():
    with helpers.travel(NOW) as traveller:
        yield traveller


@pytest.fixture
def world(app, client, clock):
    """Two coaches with a member each, a member with no coach, an admin, an analyst."""
    coach_a, coach_a_email = helpers.new_staff(app, "coach")
    coach_b, coach_b_email = helpers.new_staff(app, "coach")
    admin, _ = helpers.new_staff(app, "admin")
    with app.app_context(), db.unit_of_work():
        from companion.accounts import services as accounts

        accounts.create_insurer("Acme Health", "ACME-1", now=NOW)
        analyst = accounts.create_staff(
            accounts.Role.INSURER_ANALYST,
            "analyst@staff.example.org",
            "long enough pw",
            insurer_code="ACME-1",
            now=NOW,
        ).id
    members = {}
    for name, coach_email in (("a", coach_a_email), ("b", coach_b_email), ("orphan", None)):
        member_id, email = helpers.new_member(app, client)
        if coach_email:
            helpers.assign(app, email, coach_email)
        members[name] = member_id
    return {
        "coach_a": helpers.api_for(app, client, coach_a),
        "coach_b": helpers.api_for(app, client, coach_b),
        "admin": helpers.api_for(app, client, admin),
        "analyst": helpers.api_for(app, client, analyst),
        "member": helpers.api_for(app, client, members["a"]),
        "ids": {"coach_a": coach_a, "coach_b": coach_b, "admin": admin, **members},
    }


def make_flag(
    app, member_id, *, rule="severe_side_effect", tier=3, age=timedelta(0), status="open", coach=None
):
    with app.app_context(), db.unit_of_work() as session:
        flag = Flag(
            member_id=member_id,
            rule=rule,
            rule_version=1,
            tier=tier,
            status=status,
            evidence=[f"side_effect:{uuid.uuid4().int % 1000}"],
            summary="Severe side effect reported: Nausea (Baclofen); latest on 2026-11-20.",
            symptoms=["nausea"],
            medications=["baclofen"],
            first_seen=date(2026, 11, 20),
            last_seen=date(2026, 11, 20),
            created_at=NOW - age,
            updated_at=NOW - age,
            resolved_at=NOW if status == "resolved" else None,
            assigned_coach_id=coach,
        )
        session.add(flag)
        session.flush()
        return str(flag.id)


def error_code(r) -> str:
    return r.get_json()["error"]["code"]


def test_who_may_call_by_role(world, api):
    for path, method in (("/coach/flags", "GET"), (f"/coach/flags/{uuid.uuid4()}/acknowledge", "POST")):
        assert api.call(method, path).status_code == 401
        for caller in ("member", "analyst"):
            r = world[caller].call(method, path)
            assert (r.status_code, error_code(r)) == (403, "forbidden")
    r = world["member"].post(f"/coach/flags/{uuid.uuid4()}/resolve", {"note": "x"})
    assert r.status_code == 403


def test_a_coach_sees_their_caseload_and_an_admin_sees_every_queue(app, world):
    ids = world["ids"]
    mine = make_flag(app, ids["a"], coach=ids["coach_a"])
    theirs = make_flag(app, ids["b"], coach=ids["coach_b"])
    orphan = make_flag(app, ids["orphan"])
    r = world["coach_a"].get("/coach/flags")
    assert r.status_code == 200
    assert [f["id"] for f in r.get_json()["items"]] == [mine] and r.get_json()["next_cursor"] is None
    [flag] = r.get_json()["items"]
    assert flag["severity"] == "urgent" and flag["queue"] == "coach" and flag["status"] == "open"
    assert flag["evidence"] and flag["created_at"].endswith("Z") and flag["acknowledged_by"] is None
    admin = world["admin"].get("/coach/flags").get_json()["items"]
    assert {f["id"] for f in admin} == {mine, theirs, orphan}
    assert {f["id"]: f["queue"] for f in admin}[orphan] == "admins"
    # Each read of a member's flags is audited.
    with app.app_context():
        audited = (
            db.session.execute(select(AuditEntry).where(AuditEntry.action == "flags.listed")).scalars().all()
        )
        assert {(e.actor_id, e.subject_member_id) for e in audited} >= {(ids["coach_a"], ids["a"])}
        db.session.remove()


def test_most_urgent_then_oldest_first_paged_by_cursor(app, world):
    member = world["ids"]["a"]
    rules = iter(
        [
            "severe_side_effect",
            "withdrawal_risk",
            "persistent_side_effect",
            "craving_escalation",
            "disengagement",
        ]
    )
    urgent_new = make_flag(app, member, rule=next(rules), tier=3, age=timedelta(hours=1))
    urgent_old = make_flag(app, member, rule=next(rules), tier=3, age=timedelta(hours=5))
    warning_old = make_flag(app, member, rule=next(rules), tier=2, age=timedelta(days=3))
    warning_new = make_flag(app, member, rule=next(rules), tier=2, age=timedelta(days=1))
    info = make_flag(app, member, rule=next(rules), tier=1, age=timedelta(days=9))
    seen, cursor = [], None
    while True:
        r = world["coach_a"].get("/coach/flags?limit=2" + (f"&cursor={cursor}" if cursor else ""))
        assert r.status_code == 200
        seen += [f["id"] for f in r.get_json()["items"]]
        cursor = r.get_json()["next_cursor"]
        if cursor is None:
            break
    assert seen == [urgent_old, urgent_new, warning_old, warning_new, info]
    warnings = world["coach_a"].get("/coach/flags?severity=warning").get_json()["items"]
    assert [f["id"] for f in warnings] == [warning_old, warning_new]


def test_status_filter_and_the_default_queue(app, world):
    member = world["ids"]["a"]
    open_ = make_flag(app, member, rule="severe_side_effect")
    acked = make_flag(app, member, rule="liver_signs", status="acknowledged")
    done = make_flag(app, member, rule="contraindication", status="resolved")
    coach = world["coach_a"]
    assert {f["id"] for f in coach.get("/coach/flags").get_json()["items"]} == {open_, acked}
    assert [f["id"] for f in coach.get("/coach/flags?status=resolved").get_json()["items"]] == [done]
    assert [f["id"] for f in coach.get("/coach/flags?status=acknowledged").get_json()["items"]] == [acked]


@pytest.mark.parametrize(
    "query",
    ["status=closed", "severity=critical", "limit=0", "limit=501", "cursor=not-ours", "colour=red"],
)
def test_bad_arguments_are_422(world, query):
    r = world["coach_a"].get(f"/coach/flags?{query}")
    assert (r.status_code, error_code(r)) == (422, "invalid_payload"), r.get_json()


def test_acknowledge_answers_the_flag_with_who_and_when_once(app, world, clock):
    flag = make_flag(app, world["ids"]["a"], coach=world["ids"]["coach_a"])
    r = world["coach_a"].post(f"/coach/flags/{flag}/acknowledge")
    assert r.status_code == 200
    body = r.get_json()
    assert body["status"] == "acknowledged" and body["acknowledged_by"] == str(world["ids"]["coach_a"])
    assert body["acknowledged_at"] == "2026-11-20T18:00:00Z"
    clock.shift(timedelta(minutes=5))
    again = world["admin"].post(f"/coach/flags/{flag}/acknowledge")
    assert again.status_code == 200 and again.get_json()["acknowledged_at"] == body["acknowledged_at"]
    assert again.get_json()["acknowledged_by"] == body["acknowledged_by"]


def test_resolve_with_a_note_then_resolving_again_is_409(app, world):
    flag = make_flag(app, world["ids"]["a"])
    r = world["coach_a"].post(
        f"/coach/flags/{flag}/resolve", {"note": "Spoke with the member; seen by her GP."}
    )
    assert r.status_code == 200
    body = r.get_json()
    assert body["status"] == "resolved" and body["resolved_by"] == str(world["ids"]["coach_a"])
    assert body["resolution_note"] == "Spoke with the member; seen by her GP." and body["resolved_at"]
    for path, json in (("resolve", {"note": "again"}), ("acknowledge", None)):
        r = world["coach_a"].post(f"/coach/flags/{flag}/{path}", json)
        assert (r.status_code, error_code(r)) == (409, "conflict")
        assert r.get_json()["error"]["current"]["status"] == "resolved"


@pytest.mark.parametrize(
    "body", [{}, {"note": ""}, {"note": "x" * 2001}, {"note": "ok", "status": "resolved"}]
)
def test_resolve_needs_a_note(app, world, body):
    flag = make_flag(app, world["ids"]["a"])
    r = world["coach_a"].post(f"/coach/flags/{flag}/resolve", body)
    assert (r.status_code, error_code(r)) == (422, "invalid_payload")


def test_a_flag_off_the_caseload_is_404_like_one_that_does_not_exist(app, world):
    theirs = make_flag(app, world["ids"]["b"], coach=world["ids"]["coach_b"])
    orphan = make_flag(app, world["ids"]["orphan"])
    for flag in (theirs, orphan, str(uuid.uuid4())):
        for path, json in (("acknowledge", None), ("resolve", {"note": "n"})):
            r = world["coach_a"].post(f"/coach/flags/{flag}/{path}", json)
            assert (r.status_code, error_code(r)) == (404, "not_found")
    # The admins' queue is the admins' to work.
    assert world["admin"].post(f"/coach/flags/{orphan}/acknowledge").status_code == 200
    assert world["coach_a"].post("/coach/flags/not-a-uuid/acknowledge").status_code == 404


def test_a_member_who_moves_to_another_coach_takes_their_flags_along(app, world):
    flag = make_flag(app, world["ids"]["a"], coach=world["ids"]["coach_a"])
    with app.app_context():
        from companion.accounts.models import User

        email_b = db.session.get(User, world["ids"]["coach_b"]).email
        email_a_member = db.session.get(User, world["ids"]["a"]).email
        db.session.remove()
    helpers.assign(app, email_a_member, email_b)
    assert world["coach_a"].get("/coach/flags").get_json()["items"] == []
    assert [f["id"] for f in world["coach_b"].get("/coach/flags").get_json()["items"]] == [flag]
    assert world["coach_a"].post(f"/coach/flags/{flag}/acknowledge").status_code == 404
