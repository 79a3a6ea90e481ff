"""API.md "Coach": GET /coach/members, /coach/members/{id}, /coach/members/{id}/timeline."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select

from companion import db
from companion.audit.models import AuditEntry
from tests.dashboard import world as world_builder
from tests.safety import helpers


@pytest.fixture
def world(app, client):
    return world_builder.build(app, client)


def as_(app, client, world, who):
    return helpers.api_for(app, client, world.ids[who])


def audit_rows(app, action):
    with app.app_context():
        return list(db.session.execute(select(AuditEntry).where(AuditEntry.action == action)).scalars())


def test_a_coach_sees_their_caseload_most_urgent_first(app, client, world):
    r = as_(app, client, world, "coach_a").get("/coach/members")
    assert r.status_code == 200, r.get_json()
    items = r.get_json()["items"]
    assert [i["display_name"] for i in items] == ["Alice", "Ann"]  # bob and orphan are not theirs
    alice = items[0]
    assert (alice["open_flags"], alice["urgent_flags"], alice["risk"]) == (2, 1, "urgent")
    assert (items[1]["open_flags"], items[1]["urgent_flags"], items[1]["risk"]) == (1, 0, "info")
    assert alice["last_activity_at"] is not None and items[1]["last_activity_at"] is None
    assert alice["summary"]["last_30_days"]["days_logged"] == 20
    assert alice["summary"]["adherence"]["scheduled"] >= 6
    assert "sparkline" not in alice  # the dashboard's, not the contract's
    listed = audit_rows(app, "caseload.listed")
    assert {(e.actor_id, e.subject_member_id) for e in listed} == {
        (world.ids["coach_a"], world.ids["alice"]),
        (world.ids["coach_a"], world.ids["ann"]),
    }


def test_an_admin_sees_every_member_in_pages(app, client, world):
    admin = as_(app, client, world, "admin")
    seen, cursor = [], None
    while True:
        r = admin.get("/coach/members?limit=1" + (f"&cursor={cursor}" if cursor else ""))
        assert r.status_code == 200, r.get_json()
        page = r.get_json()
        seen += [i["display_name"] for i in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    # alice and bob have an urgent flag each (ties by id), then ann (one flag), then orphan (none)
    assert sorted(seen[:2]) == ["Alice", "Bob"] and seen[2:] == ["Ann", "Orphan"]


@pytest.mark.parametrize("who,status", [("analyst", 403), ("alice", 403), (None, 401)])
def test_only_coaches_and_admins_read_the_caseload(app, client, world, who, status):
    api = as_(app, client, world, who) if who else helpers.Api(client)
    for path in (
        "/coach/members",
        f"/coach/members/{world.ids['alice']}",
        f"/coach/members/{world.ids['alice']}/timeline",
    ):
        assert api.get(path).status_code == status


def test_bad_caseload_arguments_are_named(app, client, world):
    coach = as_(app, client, world, "coach_a")
    for query, name in (("limit=0", "limit"), ("limit=201", "limit"), ("cursor=zzz", "cursor"), ("x=1", "x")):
        r = coach.get(f"/coach/members?{query}")
        assert r.status_code == 422, query
        assert name in r.get_json()["error"]["fields"]


def test_a_member_profile_with_summary_is_audited(app, client, world):
    r = as_(app, client, world, "coach_a").get(f"/coach/members/{world.ids['alice']}")
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert body["email"] == world.emails["alice"]
    assert body["coach_id"] == str(world.ids["coach_a"])
    assert body["summary"]["as_of"] == world.today.isoformat()
    viewed = audit_rows(app, "member.viewed")
    assert [(e.actor_id, e.subject_member_id) for e in viewed] == [(world.ids["coach_a"], world.ids["alice"])]


def test_outside_the_caseload_is_404(app, client, world):
    coach = as_(app, client, world, "coach_a")
    for member in ("bob", "orphan"):
        for suffix in ("", "/timeline"):
            r = coach.get(f"/coach/members/{world.ids[member]}{suffix}")
            assert r.status_code == 404, (member, suffix)
    assert coach.get(f"/coach/members/{uuid.uuid4()}").status_code == 404
    assert audit_rows(app, "member.viewed") == [] and audit_rows(app, "member.timeline_viewed") == []
    admin = as_(app, client, world, "admin")
    assert admin.get(f"/coach/members/{world.ids['orphan']}").status_code == 200


def test_the_timeline_is_one_time_ordered_list(app, client, world):
    coach = as_(app, client, world, "coach_a")
    alice = world.ids["alice"]
    coach.post(f"/coach/members/{alice}/messages", {"body": "How was the weekend?"})
    r = coach.get(f"/coach/members/{alice}/timeline?limit=500")
    assert r.status_code == 200, r.get_json()
    items = r.get_json()["items"]
    kinds = {i["kind"] for i in items}
    assert kinds == {"drink_log", "craving", "checkin", "bac_reading", "flag", "message", "symptom_report"}
    [reported] = [i for i in items if i["kind"] == "symptom_report"]
    assert reported["symptom_report"]["symptoms"] == [{"code": "tremor", "severity": "moderate"}]
    keys = [(i["at"], i["kind"], i["id"]) for i in items]
    assert keys == sorted(keys)
    for item in items:
        assert item[item["kind"]] is not None  # the record rides under its kind's name
        assert all(k not in item for k in world_builder_kinds() - {item["kind"]})
    side_effects = [i for i in items if i["kind"] == "checkin" and i["checkin"]["side_effects"]]
    assert side_effects and side_effects[0]["checkin"]["medication"] == "naltrexone"
    drink_day = next(i for i in items if i["kind"] == "drink_log")
    assert drink_day["id"] == drink_day["date"] == drink_day["drink_log"]["date"]
    rows = audit_rows(app, "member.timeline_viewed")
    start = (world.today - timedelta(days=29)).isoformat()
    assert [(r.subject_member_id, r.detail) for r in rows] == [
        (alice, {"start": start, "end": world.today.isoformat()})
    ]


def world_builder_kinds():
    from companion.coaching.timeline import KINDS

    return set(KINDS)


def test_timeline_pages_add_up_to_the_whole(app, client, world):
    coach = as_(app, client, world, "coach_a")
    path = f"/coach/members/{world.ids['alice']}/timeline"
    whole = coach.get(path + "?limit=500").get_json()["items"]
    assert len(whole) > 40
    pages, cursor = [], None
    while True:
        page = coach.get(path + "?limit=7" + (f"&cursor={cursor}" if cursor else "")).get_json()
        assert len(page["items"]) <= 7
        pages += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == whole


def test_timeline_range_is_the_members_local_dates(app, client, world):
    coach = as_(app, client, world, "coach_a")
    day = world.today - timedelta(days=5)
    r = coach.get(f"/coach/members/{world.ids['alice']}/timeline?from={day}&to={day}")
    items = r.get_json()["items"]
    assert items and {i["date"] for i in items} == {day.isoformat()}
    assert {i["kind"] for i in items} >= {"drink_log", "checkin"}


@pytest.mark.parametrize(
    "query,field",
    [
        ("from=2026-05-02&to=2026-05-01", "from"),
        ("from=2025-01-01&to=2026-05-01", "to"),
        ("from=notadate", "from"),
        ("cursor=WzEsMl0", "cursor"),
        ("limit=501", "limit"),
        ("colour=red", "colour"),
    ],
)
def test_bad_timeline_arguments_are_named(app, client, world, query, field):
    r = as_(app, client, world, "coach_a").get(f"/coach/members/{world.ids['alice']}/timeline?{query}")
    assert r.status_code == 422, r.get_json()
    assert field in r.get_json()["error"]["fields"]
