"""API.md "Tracking" (catalogue, plans, check-ins) and "Coach" (plan writes): every status code."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from companion import db
from companion.accounts import services as accounts
from companion.accounts.models import Member
from companion.domain.errors import Conflict
from companion.medications import checkins as medication_checkins
from companion.medications import schemas
from companion.medications import services as medications
from companion.medications.models import MedicationCheckin, MedicationPlan, SideEffectReport
from tests.conftest import PASSWORD, Api

NY = ZoneInfo("America/New_York")
# A fixed clock: 2026-11-20 15:00 in New York.
NOW = datetime(2026, 11, 20, 20, 0, tzinfo=UTC)
TODAY = date(2026, 11, 20)
DAY = timedelta(days=1)


@pytest.fixture
def clock():
    with time_machine.travel(NOW, tick=True) as traveller:
        yield traveller


@pytest.fixture
def member(clock, register):
    return register(timezone="America/New_York")


@pytest.fixture
def coach(app, staff, member):
    coach = staff("coach")
    assign(app, member, coach)
    return coach


def member_id(member: Api) -> str:
    return member.body["member"]["id"]


def assign(app, member: Api, coach: Api) -> None:
    with app.app_context(), db.unit_of_work():
        accounts.assign_coach(member.body["member"]["email"], coach.email, now=db.utcnow())


def plan_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"medication": "baclofen", "dose_mg": 5, "times": ["08:00", "14:00", "20:00"]}
    body.update(overrides)
    return body


def plans_path(member: Api, plan_id: str | None = None) -> str:
    path = f"/coach/members/{member_id(member)}/medication-plans"
    return f"{path}/{plan_id}" if plan_id else path


def new_plan(coach: Api, member: Api, **overrides: Any) -> dict[str, Any]:
    r = coach.post(plans_path(member), plan_body(**overrides))
    assert r.status_code == 201, r.get_json()
    return r.get_json()


def plan_made_earlier(app, coach: Api, member: Api, *, now: datetime, **overrides: Any) -> str:
    """A plan created through the service at an earlier `now`: a plan with days behind it."""
    with app.app_context(), db.unit_of_work():
        actor = accounts.find_user_by_email(coach.email)
        data = schemas.PlanInputSchema().load(plan_body(**overrides))
        return str(medications.create_plan(actor, uuid.UUID(member_id(member)), data, now=now).id)


def signed_in_again(member: Api) -> Api:
    """A new token after the clock moved (the first one's lifetime is counted from registration)."""
    email = member.body["member"]["email"]
    r = member.client.post("/api/v1/auth/token", json={"email": email, "password": PASSWORD})
    assert r.status_code == 200, r.get_json()
    return Api(member.client, r.get_json()["access_token"])


def slot(day: date, wall: str, *, fold: int = 0) -> str:
    """The dose slot as the phone names it: local wall time with the New York offset of that moment."""
    return datetime.combine(day, time.fromisoformat(wall), tzinfo=NY).replace(fold=fold).isoformat()


def checkin(plan_id: str, scheduled_for: str, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "plan_id": plan_id,
        "scheduled_for": scheduled_for,
        "status": "taken",
        "taken_at": "2026-11-20T08:05:00-05:00",
    }
    body.update(overrides)
    return body


def fields_of(r) -> dict[str, Any]:
    return r.get_json()["error"].get("fields", {})


def rows(app, model, *where):
    with app.app_context():
        return list(db.session.execute(select(model).where(*where)).scalars())


# --- GET /medications -------------------------------------------------------------------------------


@pytest.fixture
def analyst(app, staff):
    with app.app_context(), db.unit_of_work():
        accounts.create_insurer("Acme Health", "ACME-2026", now=db.utcnow())
    return staff("insurer_analyst", insurer_code="ACME-2026")


def test_catalogue_lists_the_six_medications_for_everyone(member, staff, analyst):
    for caller in (member, staff("coach"), staff("admin"), analyst):
        r = caller.get("/medications")
        assert r.status_code == 200
    items = r.get_json()["items"]
    assert [m["code"] for m in items] == [
        "baclofen",
        "naltrexone",
        "acamprosate",
        "gabapentin",
        "topiramate",
        "disulfiram",
    ]
    baclofen = items[0]
    assert baclofen["name"] == "Baclofen" and baclofen["drug_class"] == "GABA-B receptor agonist"
    codes = [s["code"] for s in baclofen["side_effects"]]
    assert codes[:2] == ["drowsiness", "dizziness"] and {"hallucinations", "seizure"} <= set(codes)
    assert {"code": "drowsiness", "label": "Drowsiness"} in baclofen["side_effects"]
    assert all(m["side_effects"][-1] == {"code": "other", "label": "Something else"} for m in items)
    disulfiram = items[-1]
    assert "metallic_taste" in {s["code"] for s in disulfiram["side_effects"]}
    assert "metallic_taste" not in set(codes)


def test_catalogue_needs_sign_in(api):
    r = api.get("/medications")
    assert r.status_code == 401 and r.get_json()["error"]["code"] == "unauthenticated"


# --- POST /coach/members/{id}/medication-plans -------------------------------------------------------


def test_coach_starts_a_plan_the_member_sees(app, member, coach):
    plan = new_plan(coach, member, times=["20:00", "08:00", "14:00"])
    assert plan["medication"] == "baclofen" and plan["dose_mg"] == 5
    assert plan["times"] == ["08:00", "14:00", "20:00"]  # stored in order
    assert plan["start_date"] == str(TODAY) and plan["end_date"] is None and plan["steps"] == []
    assert plan["active"] is True and plan["created_at"].endswith("Z")
    mine = member.get("/medication-plans")
    assert mine.status_code == 200 and mine.get_json()["items"] == [plan]
    (row,) = rows(app, MedicationPlan)
    with app.app_context():
        assert row.created_by == accounts.find_user_by_email(coach.email).id
        member_row = db.session.get(Member, uuid.UUID(member_id(member)))
        assert medications.dump_plan(member_row, row) == plan  # what GET /sync hands out
    assert row.change_seq is not None and row.changed_by is None


def test_plan_with_a_titration(member, coach):
    plan = new_plan(
        coach,
        member,
        end_date=str(TODAY + 30 * DAY),
        steps=[
            {"from_date": str(TODAY + 3 * DAY), "dose_mg": 7.5, "times": ["20:00", "08:00", "14:00"]},
            {"from_date": str(TODAY + 6 * DAY), "dose_mg": "10", "times": ["08:00", "14:00", "20:00"]},
        ],
    )
    assert plan["steps"] == [
        {
            "from_date": str(TODAY + 3 * DAY),
            "dose_mg": 7.5,
            "times": ["08:00", "14:00", "20:00"],
            "taper": False,
        },
        {
            "from_date": str(TODAY + 6 * DAY),
            "dose_mg": 10,
            "times": ["08:00", "14:00", "20:00"],
            "taper": False,
        },
    ]
    assert plan["end_date"] == str(TODAY + 30 * DAY)


def test_a_step_marked_as_a_taper_is_stored_and_shown(app, member, coach):
    # Issue 19: a taper is explicit; the mark survives the round trip, and an unmarked step reads False.
    plan = new_plan(
        coach,
        member,
        steps=[
            {"from_date": str(TODAY + 3 * DAY), "dose_mg": 4, "times": ["08:00"], "taper": True},
            {"from_date": str(TODAY + 6 * DAY), "dose_mg": 3, "times": ["08:00"]},
        ],
    )
    assert [s["taper"] for s in plan["steps"]] == [True, False]
    (row,) = rows(app, MedicationPlan)
    assert row.steps[0]["taper"] is True and "taper" not in row.steps[1]
    assert [s["taper"] for s in member.get("/medication-plans").get_json()["items"][0]["steps"]] == [
        True,
        False,
    ]
    bad = coach.patch(plans_path(member, plan["id"]), {"steps": [{**plan["steps"][0], "taper": "perhaps"}]})
    assert bad.status_code == 422 and "steps" in fields_of(bad)


# Issue 19: a daily dose above the label's usual maximum needs the coach's confirmation.


@pytest.mark.parametrize(("body", "status", "field"), [
    ({"dose_mg": 20, "times": ["06:00", "10:00", "14:00", "20:00"]},  201, None),       # 80 mg a day
    ({"dose_mg": 30},                                                 422, "dose_mg"),  # 90 mg a day
    ({"dose_mg": 30, "confirm_high_dose": True},                      201, None),
    ({"dose_mg": 55, "confirm_high_dose": True},                      201, None),       # 165 > 160
    ({"dose_mg": 54, "confirm_high_dose": True},                      201, None),       # 162 > 160
    ({"medication": "naltrexone", "dose_mg": 100, "times": ["08:00"]}, 422, "dose_mg"),
    ({"medication": "naltrexone", "dose_mg": 100, "times": ["08:00"], "confirm_high_dose": True}, 201, None),
    ({"steps": [{"from_date": str(TODAY + 3 * DAY), "dose_mg": 30, "times": ["08:00", "14:00", "20:00"]}]},
     422, "steps"),
])  # fmt: skip
def test_a_high_daily_dose_needs_confirmation(app, member, coach, body, status, field):
    if body.get("dose_mg") in (55, 54):  # twice the maximum (160 mg) is refused whatever is sent
        status, field = 422, "dose_mg"
    r = coach.post(plans_path(member), plan_body(**body))
    assert r.status_code == status, r.get_json()
    if field:
        assert list(fields_of(r)) == [field] and "maximum" in fields_of(r)[field][0]
        assert rows(app, MedicationPlan) == []
    else:
        assert r.get_json()["confirm_high_dose"] is bool(body.get("confirm_high_dose"))


def test_a_confirmed_high_dose_is_kept_and_audited(app, member, coach):
    from companion.audit.models import AuditEntry

    plan = new_plan(coach, member, dose_mg=30, confirm_high_dose=True)
    [entry] = rows(app, AuditEntry, AuditEntry.action == "plan.high_dose_confirmed")
    assert str(entry.subject_member_id) == member_id(member)
    assert entry.detail == {
        "plan_id": plan["id"], "medication": "baclofen", "daily_mg": "90", "usual_max_mg": "80",
    }  # fmt: skip
    [listed] = member.get("/medication-plans").get_json()["items"]
    assert listed["confirm_high_dose"] is True
    path = plans_path(member, plan["id"])
    # The confirmation covers the dose confirmed, not a higher one...
    higher = coach.patch(path, {"dose_mg": 35})
    assert higher.status_code == 422 and list(fields_of(higher)) == ["dose_mg"]
    assert coach.patch(path, {"dose_mg": 35, "confirm_high_dose": True}).status_code == 200
    # ... and other changes keep it.
    kept = coach.patch(path, {"end_date": str(TODAY + 40 * DAY)})
    assert kept.status_code == 200 and kept.get_json()["confirm_high_dose"] is True
    assert len(rows(app, AuditEntry, AuditEntry.action == "plan.high_dose_confirmed")) == 2
    # Back under the maximum: no confirmation needed, none kept.
    lower = coach.patch(path, {"dose_mg": 10})
    assert lower.status_code == 200 and lower.get_json()["confirm_high_dose"] is False
    twice = coach.patch(path, {"dose_mg": 60, "confirm_high_dose": True})
    assert twice.status_code == 422 and "refused" in fields_of(twice)["dose_mg"][0]


def test_a_plan_starting_later_is_not_active_yet(member, coach):
    plan = new_plan(coach, member, start_date=str(TODAY + 2 * DAY))
    assert plan["active"] is False


STEP = {"from_date": str(TODAY + 3 * DAY), "dose_mg": 10, "times": ["08:00"]}


@pytest.mark.parametrize(("change", "field"), [
    ({"medication": "aspirin"},                                      "medication"),
    ({"medication": ""},                                             "medication"),
    ({"dose_mg": 0},                                                 "dose_mg"),
    ({"dose_mg": -5},                                                "dose_mg"),
    ({"dose_mg": 10.005},                                            "dose_mg"),
    ({"dose_mg": 20000},                                             "dose_mg"),
    ({"dose_mg": "lots"},                                            "dose_mg"),
    ({"dose_mg": None},                                              "dose_mg"),
    ({"times": []},                                                  "times"),
    ({"times": ["01:00", "02:00", "03:00", "04:00", "05:00", "06:00", "07:00"]}, "times"),
    ({"times": ["08:00", "08:00"]},                                  "times"),
    ({"times": ["24:00"]},                                           "times"),
    ({"times": ["8am"]},                                             "times"),
    ({"times": "08:00"},                                             "times"),
    ({"start_date": str(TODAY - DAY)},                               "start_date"),
    ({"start_date": "2026-13-01"},                                   "start_date"),
    ({"end_date": str(TODAY - DAY)},                                 "end_date"),
    ({"steps": [{**STEP, "from_date": str(TODAY)}]},                 "steps"),  # not after start_date
    ({"steps": [STEP, {**STEP, "from_date": str(TODAY + DAY)}]},     "steps"),  # not in date order
    ({"steps": [STEP], "end_date": str(TODAY + 2 * DAY)},            "steps"),  # after end_date
    ({"steps": [{**STEP, "dose_mg": 0}]},                            "steps"),
    ({"steps": [{**STEP, "times": []}]},                             "steps"),
    ({"steps": [{**STEP, "times": ["08:00", "08:00"]}]},             "steps"),
    ({"steps": [{**STEP, "extra": 1}]},                              "steps"),
    ({"steps": [{"dose_mg": 10, "times": ["08:00"]}]},               "steps"),
    ({"active": True},                                               "active"),
    ({"member_id": str(uuid.uuid4())},                               "member_id"),
])  # fmt: skip
def test_plan_validation_names_the_field(member, coach, change, field):
    r = coach.post(plans_path(member), plan_body(**change))
    assert r.status_code == 422, r.get_json()
    assert r.get_json()["error"]["code"] == "invalid_payload"
    assert field in fields_of(r), r.get_json()


def test_plan_requires_medication_dose_and_times(member, coach):
    r = coach.post(plans_path(member), {})
    assert r.status_code == 422 and set(fields_of(r)) == {"medication", "dose_mg", "times"}


def test_every_problem_of_a_plan_at_once(member, coach):
    r = coach.post(plans_path(member), plan_body(medication="x", dose_mg=0, times=[], end_date="2020-01-01"))
    assert r.status_code == 422
    assert {"medication", "dose_mg", "times"} <= set(fields_of(r))


def test_plans_for_caseload_only(app, member, coach, staff, register):
    stranger = register()
    r = coach.post(plans_path(stranger), plan_body())
    assert r.status_code == 404 and r.get_json()["error"]["code"] == "not_found"
    nobody = coach.post(f"/coach/members/{uuid.uuid4()}/medication-plans", plan_body())
    assert nobody.status_code == 404 and nobody.get_json() == r.get_json()  # never reveal who exists
    other_coach = staff("coach")
    assert other_coach.post(plans_path(member), plan_body()).status_code == 404


def test_ended_assignment_is_404(app, member, coach, staff):
    plan = new_plan(coach, member)
    successor = staff("coach")
    assign(app, member, successor)  # ends the first coach's assignment
    assert coach.post(plans_path(member), plan_body()).status_code == 404
    assert coach.patch(plans_path(member, plan["id"]), {"dose_mg": 10}).status_code == 404
    assert successor.patch(plans_path(member, plan["id"]), {"end_date": str(TODAY + DAY)}).status_code == 200


def test_admin_manages_any_member(member, register, staff):
    admin = staff("admin")
    plan = new_plan(admin, register())
    assert plan["active"] is True
    r = admin.post(f"/coach/members/{uuid.uuid4()}/medication-plans", plan_body())
    assert r.status_code == 404


def test_plan_writes_by_role(api, member, coach, analyst):
    plan = new_plan(coach, member)
    for caller, status in ((member, 403), (analyst, 403), (api, 401)):
        assert caller.post(plans_path(member), plan_body()).status_code == status
        assert caller.patch(plans_path(member, plan["id"]), {"dose_mg": 1}).status_code == status


# --- PATCH /coach/members/{id}/medication-plans/{plan_id} --------------------------------------------


def test_patch_before_the_start_replaces_each_field(member, coach):
    plan = new_plan(coach, member, start_date=str(TODAY + 2 * DAY))
    changes = {
        "start_date": str(TODAY + DAY),
        "dose_mg": 10,
        "times": ["21:00", "07:00"],
        "end_date": str(TODAY + 20 * DAY),
        "steps": [{"from_date": str(TODAY + 5 * DAY), "dose_mg": 20, "times": ["07:00"]}],
    }
    r = coach.patch(plans_path(member, plan["id"]), changes)
    assert r.status_code == 200, r.get_json()
    out = r.get_json()
    assert (out["start_date"], out["dose_mg"], out["times"], out["end_date"]) == (
        str(TODAY + DAY),
        10,
        ["07:00", "21:00"],
        str(TODAY + 20 * DAY),
    )
    assert out["steps"] == [
        {"from_date": str(TODAY + 5 * DAY), "dose_mg": 20, "times": ["07:00"], "taper": False}
    ]
    assert out["updated_at"] >= plan["updated_at"]
    assert coach.patch(plans_path(member, plan["id"]), {"start_date": str(TODAY - DAY)}).status_code == 422
    assert coach.patch(plans_path(member, plan["id"]), {"steps": []}).get_json()["steps"] == []


def test_patch_on_the_first_day_rewrites_the_base(member, coach):
    plan = new_plan(coach, member)
    r = coach.patch(plans_path(member, plan["id"]), {"dose_mg": 10})
    assert r.status_code == 200 and r.get_json()["dose_mg"] == 10 and r.get_json()["steps"] == []
    started = coach.patch(plans_path(member, plan["id"]), {"start_date": str(TODAY + DAY)})
    assert started.status_code == 422 and "start_date" in fields_of(started)


def test_dose_change_on_a_started_plan_becomes_a_step_from_today(app, member, coach):
    plan_id = plan_made_earlier(app, coach, member, now=NOW - 10 * DAY)
    r = coach.patch(plans_path(member, plan_id), {"dose_mg": 10})
    assert r.status_code == 200, r.get_json()
    out = r.get_json()
    assert out["dose_mg"] == 5 and out["times"] == ["08:00", "14:00", "20:00"]  # the past stays as it was
    assert out["steps"] == [
        {"from_date": str(TODAY), "dose_mg": 10, "times": ["08:00", "14:00", "20:00"], "taper": False}
    ]
    # Yesterday's doses are still the plan's.
    yesterday = member.post("/medication-checkins", checkin(plan_id, slot(TODAY - DAY, "14:00")))
    assert yesterday.status_code == 201
    # A times change the same day replaces today's step rather than stacking another.
    out = coach.patch(plans_path(member, plan_id), {"times": ["21:00", "09:00"]}).get_json()
    assert out["steps"] == [
        {"from_date": str(TODAY), "dose_mg": 10, "times": ["09:00", "21:00"], "taper": False}
    ]
    assert member.post("/medication-checkins", checkin(plan_id, slot(TODAY, "14:00"))).status_code == 422
    assert member.post("/medication-checkins", checkin(plan_id, slot(TODAY, "09:00"))).status_code == 201


def test_the_regimen_in_force_sent_again_changes_nothing(app, member, coach):
    plan_id = plan_made_earlier(app, coach, member, now=NOW - 10 * DAY)
    (before,) = rows(app, MedicationPlan)
    r = coach.patch(plans_path(member, plan_id), {"dose_mg": 5, "times": ["14:00", "08:00", "20:00"]})
    assert r.status_code == 200 and r.get_json()["steps"] == []
    (after,) = rows(app, MedicationPlan)
    assert (after.change_seq, after.updated_at) == (before.change_seq, before.updated_at)


def test_a_change_is_stamped_for_sync_as_staff(app, member, coach):
    plan = new_plan(coach, member, start_date=str(TODAY + DAY))
    (before,) = rows(app, MedicationPlan)
    coach.patch(plans_path(member, plan["id"]), {"dose_mg": 6})
    (after,) = rows(app, MedicationPlan)
    assert after.change_seq > before.change_seq and after.changed_by is None


def test_dose_change_replaces_the_steps_from_today_on(app, member, coach):
    steps = [
        {
            "from_date": str(TODAY - 5 * DAY),
            "dose_mg": 10,
            "times": ["08:00", "14:00", "20:00"],
            "taper": False,
        },
        {
            "from_date": str(TODAY + 5 * DAY),
            "dose_mg": 15,
            "times": ["08:00", "14:00", "20:00"],
            "taper": True,
        },
    ]
    plan_id = plan_made_earlier(app, coach, member, now=NOW - 10 * DAY, steps=steps)
    three = ["08:00", "14:00", "20:00"]
    out = coach.patch(plans_path(member, plan_id), {"dose_mg": 7.5}).get_json()
    assert out["steps"] == [
        steps[0],
        {"from_date": str(TODAY), "dose_mg": 7.5, "times": three, "taper": False},
    ]
    later = {"from_date": str(TODAY + 7 * DAY), "dose_mg": 20, "times": ["08:00", "20:00"], "taper": False}
    out = coach.patch(plans_path(member, plan_id), {"dose_mg": 12.5, "steps": [steps[0], later]}).get_json()
    assert out["steps"] == [
        steps[0],
        {"from_date": str(TODAY), "dose_mg": 12.5, "times": three, "taper": False},
        later,
    ]


def test_steps_before_today_are_history(app, member, coach):
    past = {"from_date": str(TODAY - 5 * DAY), "dose_mg": 10, "times": ["08:00"], "taper": True}
    plan_id = plan_made_earlier(app, coach, member, now=NOW - 10 * DAY, steps=[past])
    rewritten = coach.patch(plans_path(member, plan_id), {"steps": [{**past, "dose_mg": 11}]})
    assert rewritten.status_code == 422 and "steps" in fields_of(rewritten)
    moved = {**past, "from_date": str(TODAY - DAY)}
    other_past = coach.patch(plans_path(member, plan_id), {"steps": [moved]})
    assert other_past.status_code == 422 and "steps" in fields_of(other_past)
    future = {"from_date": str(TODAY + 2 * DAY), "dose_mg": 12, "times": ["08:00"], "taper": False}
    # Sent unchanged (a round trip of GET) or left out: both keep the history.
    path = plans_path(member, plan_id)
    assert coach.patch(path, {"steps": [past, future]}).get_json()["steps"] == [past, future]
    assert coach.patch(path, {"steps": [future]}).get_json()["steps"] == [past, future]
    assert coach.patch(path, {"steps": []}).get_json()["steps"] == [past]  # the steps ahead removed


def test_end_date_of_a_started_plan(app, member, coach):
    plan_id = plan_made_earlier(app, coach, member, now=NOW - 10 * DAY)
    r = coach.patch(plans_path(member, plan_id), {"end_date": str(TODAY - DAY)})
    assert r.status_code == 422 and "end_date" in fields_of(r)
    r = coach.patch(plans_path(member, plan_id), {"end_date": str(TODAY)})
    assert r.status_code == 200 and r.get_json()["active"] is True
    assert coach.patch(plans_path(member, plan_id), {"end_date": None}).get_json()["end_date"] is None
    r = coach.patch(plans_path(member, plan_id), {"start_date": str(TODAY + DAY)})
    assert r.status_code == 422 and "start_date" in fields_of(r)


def test_an_ended_plan_cannot_change(app, member, coach):
    plan_id = plan_made_earlier(app, coach, member, now=NOW - 10 * DAY, end_date=str(TODAY - 3 * DAY))
    assert member.get("/medication-plans").get_json()["items"][0]["active"] is False
    r = coach.patch(plans_path(member, plan_id), {"end_date": str(TODAY + 10 * DAY), "dose_mg": 10})
    assert r.status_code == 422 and set(fields_of(r)) == {"end_date", "dose_mg"}
    assert coach.patch(plans_path(member, plan_id), {}).status_code == 200


@pytest.mark.parametrize(("change", "field"), [
    ({"medication": "naltrexone"}, "medication"),
    ({"id": str(uuid.uuid4())},    "id"),
    ({"colour": "blue"},           "colour"),
    ({"dose_mg": 0},               "dose_mg"),
    ({"times": ["07:00"] * 2},     "times"),
    ({"end_date": "soon"},         "end_date"),
    ({"steps": [{"from_date": str(TODAY), "dose_mg": 1, "times": ["08:00"]}]}, "steps"),
])  # fmt: skip
def test_patch_validation(member, coach, change, field):
    plan = new_plan(coach, member)
    r = coach.patch(plans_path(member, plan["id"]), change)
    assert r.status_code == 422 and field in fields_of(r), r.get_json()


def test_patch_someone_elses_plan_is_404(member, coach, register, staff):
    admin = staff("admin")
    other = register()
    theirs = new_plan(admin, other)
    assert coach.patch(plans_path(member, theirs["id"]), {"dose_mg": 2}).status_code == 404
    assert admin.patch(plans_path(member, theirs["id"]), {"dose_mg": 2}).status_code == 404
    assert coach.patch(plans_path(member, str(uuid.uuid4())), {"dose_mg": 2}).status_code == 404
    assert admin.patch(plans_path(other, theirs["id"]), {"dose_mg": 2}).status_code == 200


# --- GET /medication-plans ---------------------------------------------------------------------------


def test_member_lists_only_their_plans(app, member, coach, register, staff):
    past = plan_made_earlier(app, coach, member, now=NOW - 20 * DAY, end_date=str(TODAY - 10 * DAY))
    current = new_plan(coach, member, medication="naltrexone", dose_mg=50, times=["09:00"])
    new_plan(staff("admin"), register())
    items = member.get("/medication-plans").get_json()["items"]
    assert [(p["id"], p["active"]) for p in items] == [(past, False), (current["id"], True)]
    assert coach.get("/medication-plans").status_code == 403


def test_plans_list_needs_sign_in(api):
    assert api.get("/medication-plans").status_code == 401


# --- POST /medication-checkins -----------------------------------------------------------------------


@pytest.fixture
def plan(app, member, coach):
    """Baclofen 5 mg at 08:00, 14:00, 20:00 since ten days ago."""
    return plan_made_earlier(app, coach, member, now=NOW - 10 * DAY)


def test_checkin_is_stored_once_and_replays(app, member, plan):
    body = checkin(
        plan,
        slot(TODAY, "08:00"),
        note="with breakfast",
        side_effects=[
            {"code": "drowsiness", "severity": "mild"},
            {"code": "other", "severity": "moderate", "note": "dry mouth"},
        ],
    )
    r = member.post("/medication-checkins", body)
    assert r.status_code == 201, r.get_json()
    stored = r.get_json()
    assert stored == {
        "id": body["id"],
        "plan_id": plan,
        "medication": "baclofen",
        "scheduled_for": "2026-11-20T13:00:00Z",
        "date": "2026-11-20",
        "status": "taken",
        "taken_at": "2026-11-20T13:05:00Z",
        "note": "with breakfast",
        "side_effects": [
            {"code": "drowsiness", "severity": "mild", "note": None},
            {"code": "other", "severity": "moderate", "note": "dry mouth"},
        ],
        "created_at": stored["created_at"],
    }
    again = member.post("/medication-checkins", body)
    assert again.status_code == 200 and again.get_json() == stored
    # The same values written otherwise (UTC instants, side effects reordered) are the same body.
    same = {
        **body,
        "scheduled_for": "2026-11-20T13:00:00Z",
        "taken_at": "2026-11-20T13:05:00+00:00",
        "side_effects": body["side_effects"][::-1],
    }
    assert member.post("/medication-checkins", same).status_code == 200
    different = member.post("/medication-checkins", {**body, "note": "after breakfast"})
    assert different.status_code == 409
    assert different.get_json()["error"]["code"] == "conflict"
    assert different.get_json()["error"]["current"] == stored
    other_id = member.post("/medication-checkins", {**body, "id": str(uuid.uuid4())})
    assert other_id.status_code == 409 and "scheduled_for" in fields_of(other_id)
    assert other_id.get_json()["error"]["current"]["id"] == body["id"]
    assert len(rows(app, MedicationCheckin)) == 1
    effects = rows(app, SideEffectReport)
    assert sorted((e.medication, e.date, e.code, e.severity, e.note) for e in effects) == [
        ("baclofen", TODAY, "drowsiness", "mild", None),
        ("baclofen", TODAY, "other", "moderate", "dry mouth"),
    ]
    (row,) = rows(app, MedicationCheckin)
    # Stamped with the phone's login, so sync does not send the phone its own check-in back.
    assert row.change_seq is not None and row.changed_by is not None


def test_record_checkin_for_sync(app, member, plan):
    """The service POST /sync calls: outcomes as strings, conflicts carrying the stored record."""
    origin = uuid.uuid4()
    data = schemas.CheckinInputSchema().load(checkin(plan, slot(TODAY, "08:00")))
    with app.app_context():
        member_row = db.session.get(Member, uuid.UUID(member_id(member)))
        with db.unit_of_work():
            stored, outcome = medication_checkins.record_checkin(member_row, data, origin=origin, now=NOW)
            assert outcome == medications.CREATED and stored.changed_by == origin
        with db.unit_of_work():
            again, outcome = medication_checkins.record_checkin(member_row, data, origin=origin, now=NOW)
            assert outcome == medications.UNCHANGED and again.id == stored.id
        with pytest.raises(Conflict) as conflict, db.unit_of_work():
            medication_checkins.record_checkin(
                member_row, {**data, "status": "skipped", "taken_at": None}, origin=origin, now=NOW
            )
        assert conflict.value.details["current"]["id"] == str(data["id"])
        assert conflict.value.details["current"]["scheduled_for"] == "2026-11-20T13:00:00Z"


def test_skipped_dose(member, plan):
    body = checkin(plan, slot(TODAY, "14:00"), status="skipped", taken_at=None)
    r = member.post("/medication-checkins", body)
    assert r.status_code == 201 and r.get_json()["taken_at"] is None
    body = checkin(
        plan,
        slot(TODAY - DAY, "20:00"),
        status="skipped",
        side_effects=[{"code": "nausea", "severity": "severe"}],
    )
    del body["taken_at"]
    assert member.post("/medication-checkins", body).status_code == 201


def test_replay_is_200_even_after_the_plan_changed(member, coach, plan):
    body = checkin(plan, slot(TODAY, "08:00"))
    assert member.post("/medication-checkins", body).status_code == 201
    coach.patch(plans_path(member, plan), {"times": ["09:00"]})
    assert member.post("/medication-checkins", body).status_code == 200


@pytest.mark.parametrize(("change", "field"), [
    ({"scheduled_for": slot(TODAY, "08:30")},                   "scheduled_for"),  # not a time of the plan
    ({"scheduled_for": "2026-11-20T08:00:00-04:00"},            "scheduled_for"),  # a stale offset: 07:00 EST
    ({"scheduled_for": "2026-11-20T08:00:00"},                  "scheduled_for"),  # naive
    ({"scheduled_for": slot(TODAY - 11 * DAY, "08:00")},        "scheduled_for"),  # before the plan started
    ({"scheduled_for": slot(TODAY + DAY, "08:00")},             "scheduled_for"),  # more than 12 hours ahead
    ({"scheduled_for": "3026-11-20T13:00:00Z"},                 "scheduled_for"),
    ({"scheduled_for": "yesterday"},                            "scheduled_for"),
    ({"status": "taken", "taken_at": None},                     "taken_at"),
    ({"status": "skipped"},                                     "taken_at"),  # taken_at given
    ({"status": "forgot"},                                      "status"),
    ({"taken_at": "2026-11-20T15:06:00-05:00"},                 "taken_at"),  # 6 min ahead of the clock
    ({"taken_at": "2026-11-20T08:05:00"},                       "taken_at"),
    ({"side_effects": [{"code": "metallic_taste", "severity": "mild"}]}, "side_effects"),  # disulfiram's
    ({"side_effects": [{"code": "other", "severity": "mild"}]}, "side_effects"),  # other without a note
    ({"side_effects": [{"code": "nausea", "severity": "awful"}]}, "side_effects"),
    ({"side_effects": [{"code": "nausea", "severity": "mild"}] * 2}, "side_effects"),
    ({"side_effects": [{"code": "other", "severity": "mild", "note": "x"}] * 21}, "side_effects"),
    ({"side_effects": [{"code": "nausea", "severity": "mild", "when": "now"}]}, "side_effects"),
    ({"side_effects": {"code": "nausea"}},                      "side_effects"),
    ({"note": "x" * 1001},                                      "note"),
    ({"id": "not-a-uuid"},                                      "id"),
    ({"plan_id": 7},                                            "plan_id"),
    ({"dose_mg": 5},                                            "dose_mg"),
    ({"date": "2026-11-20"},                                    "date"),
])  # fmt: skip
def test_checkin_validation_names_the_field(member, plan, change, field):
    r = member.post("/medication-checkins", {**checkin(plan, slot(TODAY, "08:00")), **change})
    assert r.status_code == 422, r.get_json()
    assert field in fields_of(r), r.get_json()


def test_checkin_requires_its_fields(member):
    r = member.post("/medication-checkins", {})
    assert r.status_code == 422
    assert set(fields_of(r)) == {"id", "plan_id", "scheduled_for", "status"}


def test_a_little_clock_skew_is_allowed(member, plan):
    body = checkin(plan, slot(TODAY, "14:00"), taken_at="2026-11-20T15:04:00-05:00")
    assert member.post("/medication-checkins", body).status_code == 201


def test_a_dose_a_few_hours_ahead_may_be_checked_in(member, plan):
    body = checkin(plan, slot(TODAY, "20:00"), taken_at="2026-11-20T14:55:00-05:00")
    r = member.post("/medication-checkins", body)
    assert r.status_code == 201 and r.get_json()["scheduled_for"] == "2026-11-21T01:00:00Z"
    assert r.get_json()["date"] == str(TODAY)


def test_checkins_older_than_the_backfill_window_are_422(app, member, coach):
    plan_id = plan_made_earlier(app, coach, member, now=NOW - 90 * DAY)
    old = member.post("/medication-checkins", checkin(plan_id, slot(TODAY - 61 * DAY, "08:00")))
    assert old.status_code == 422 and "scheduled_for" in fields_of(old)
    oldest = member.post("/medication-checkins", checkin(plan_id, slot(TODAY - 60 * DAY, "08:00")))
    assert oldest.status_code == 201


def test_someone_elses_plan_is_404(app, member, plan, register, staff):
    other = register()
    theirs = new_plan(staff("admin"), other)
    r = member.post("/medication-checkins", checkin(theirs["id"], slot(TODAY, "08:00")))
    assert r.status_code == 404 and "plan_id" in fields_of(r)
    unknown = member.post("/medication-checkins", checkin(str(uuid.uuid4()), slot(TODAY, "08:00")))
    assert unknown.status_code == 404 and unknown.get_json() == r.get_json()


def test_the_same_id_from_another_member_is_their_own(member, plan, register, staff):
    other = register()
    theirs = new_plan(staff("admin"), other, start_date=str(TODAY))
    body = checkin(plan, slot(TODAY, "08:00"))
    assert member.post("/medication-checkins", body).status_code == 201
    assert other.post("/medication-checkins", {**body, "plan_id": theirs["id"]}).status_code == 201


def test_checkins_are_for_members(api, staff):
    assert api.post("/medication-checkins", {}).status_code == 401
    assert api.get("/medication-checkins").status_code == 401
    coach = staff("coach")
    assert coach.post("/medication-checkins", {}).status_code == 403
    assert coach.get("/medication-checkins").status_code == 403


def test_slots_follow_a_titration(app, member, coach):
    """Baclofen three times a day, then from day 3 twice a day at a higher dose."""
    start = TODAY - 5 * DAY
    step = {"from_date": str(start + 3 * DAY), "dose_mg": 10, "times": ["08:00", "20:00"]}
    plan_id = plan_made_earlier(app, coach, member, now=NOW - 5 * DAY, steps=[step])
    post = lambda day, wall: member.post("/medication-checkins", checkin(plan_id, slot(day, wall)))  # noqa: E731
    assert post(start + 2 * DAY, "14:00").status_code == 201  # the last day of three doses
    assert post(start + 3 * DAY, "14:00").status_code == 422  # no 14:00 dose any more
    r = post(start + 3 * DAY, "20:00")
    assert r.status_code == 201 and r.get_json()["date"] == str(start + 3 * DAY)
    assert post(start - DAY, "08:00").status_code == 422  # before the plan


def test_dst_fall_back_names_the_first_0130(app, clock, member, coach):
    """2026-11-01 in New York: 01:30 happens twice (EDT, then EST). A plan's 01:30 dose is the first one
    (localtime.local_to_utc: fold=0), so it is scheduled, and checked in, exactly once."""
    clock.move_to(datetime(2026, 11, 1, 17, 0, tzinfo=UTC))  # 12:00 EST on the fall-back day
    fresh = signed_in_again(member)
    plan_id = plan_made_earlier(
        app, coach, member, now=datetime(2026, 10, 30, 16, 0, tzinfo=UTC), times=["01:30", "13:30"]
    )
    taken = "2026-11-01T01:35:00-04:00"
    second = fresh.post(
        "/medication-checkins", checkin(plan_id, slot(date(2026, 11, 1), "01:30", fold=1), taken_at=taken)
    )
    assert slot(date(2026, 11, 1), "01:30", fold=1) == "2026-11-01T01:30:00-05:00"
    assert second.status_code == 422 and "scheduled_for" in fields_of(second)
    first = fresh.post("/medication-checkins", checkin(plan_id, "2026-11-01T01:30:00-04:00", taken_at=taken))
    assert first.status_code == 201, first.get_json()
    assert first.get_json()["scheduled_for"] == "2026-11-01T05:30:00Z"
    assert first.get_json()["date"] == "2026-11-01"
    # The day before, 01:30 is unambiguous (EDT).
    assert (
        fresh.post(
            "/medication-checkins", checkin(plan_id, "2026-10-31T01:30:00-04:00", taken_at=taken)
        ).status_code
        == 201
    )


def test_dst_spring_forward_gap_time_moves_forward(app, clock, member, coach):
    """2026-03-08 in New York: 02:30 does not exist; the dose is at 03:30 EDT (07:30Z), once."""
    clock.move_to(datetime(2026, 3, 8, 16, 0, tzinfo=UTC))
    fresh = signed_in_again(member)
    earlier = datetime(2026, 3, 6, 16, 0, tzinfo=UTC)
    plan_id = plan_made_earlier(app, coach, member, now=earlier, times=["02:30"])
    r = fresh.post(
        "/medication-checkins",
        checkin(plan_id, "2026-03-08T03:30:00-04:00", taken_at="2026-03-08T03:31:00-04:00"),
    )
    assert r.status_code == 201, r.get_json()
    assert r.get_json()["scheduled_for"] == "2026-03-08T07:30:00Z" and r.get_json()["date"] == "2026-03-08"


def test_concurrent_duplicates_store_one_check_in(app, member, plan):
    """Two phones (or a retry racing its original) post the same new check-in at the same moment."""
    for wall in ("08:00", "14:00"):
        body = checkin(plan, slot(TODAY, wall))
        barrier = threading.Barrier(2)
        statuses: list[int] = []

        def post(body=body, barrier=barrier, statuses=statuses):
            client = app.test_client()
            barrier.wait()
            statuses.append(Api(client, member.token).post("/medication-checkins", body).status_code)

        threads = [threading.Thread(target=post) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(statuses) == [200, 201], statuses
    assert len(rows(app, MedicationCheckin)) == 2


def test_concurrent_ids_for_one_slot_store_one(app, member, plan):
    barrier = threading.Barrier(2)
    statuses: list[int] = []

    def post():
        client = app.test_client()
        barrier.wait()
        r = Api(client, member.token).post("/medication-checkins", checkin(plan, slot(TODAY, "08:00")))
        statuses.append(r.status_code)

    threads = [threading.Thread(target=post) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == [201, 409]
    assert len(rows(app, MedicationCheckin)) == 1


# --- GET /medication-checkins ------------------------------------------------------------------------


def test_list_by_local_date_and_pages(member, plan):
    made = []
    doses = [(TODAY - 2 * DAY, "20:00"), (TODAY - DAY, "08:00"), (TODAY - DAY, "14:00"), (TODAY, "08:00")]
    for day, wall in doses:
        made.append(member.post("/medication-checkins", checkin(plan, slot(day, wall))).get_json())
    r = member.get(f"/medication-checkins?from={TODAY - DAY}&to={TODAY}&limit=2")
    assert r.status_code == 200
    first = r.get_json()
    assert first["items"] == made[1:3] and first["next_cursor"]
    second = member.get(
        f"/medication-checkins?from={TODAY - DAY}&to={TODAY}&limit=2&cursor={first['next_cursor']}"
    )
    assert second.get_json() == {"items": made[3:], "next_cursor": None}
    everything = member.get("/medication-checkins").get_json()
    assert everything == {"items": made, "next_cursor": None}
    # The 20:00 dose of two days ago is 01:00Z the next day: listed by its local date.
    day = TODAY - 2 * DAY
    assert member.get(f"/medication-checkins?from={day}&to={day}").get_json()["items"] == made[:1]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        (f"from={TODAY}&to={TODAY - DAY}", "from"),
        (f"from={TODAY - 400 * DAY}&to={TODAY}", "to"),
        ("from=yesterday", "from"),
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("cursor=!!!", "cursor"),
        ("cursor=WyJ4Il0", "cursor"),  # a list, but not a key this list issued
        ("colour=blue", "colour"),
    ],
)
def test_list_arguments_are_validated(member, query, field):
    r = member.get(f"/medication-checkins?{query}")
    assert r.status_code == 422 and field in fields_of(r), r.get_json()


def test_other_members_check_ins_are_invisible(member, plan, register):
    member.post("/medication-checkins", checkin(plan, slot(TODAY, "08:00")))
    assert register().get("/medication-checkins").get_json()["items"] == []


# --- GET /me/export and the OpenAPI document ---------------------------------------------------------


def test_export_includes_plans_and_check_ins(member, plan):
    stored = member.post(
        "/medication-checkins",
        checkin(plan, slot(TODAY, "08:00"), side_effects=[{"code": "nausea", "severity": "mild"}]),
    ).get_json()
    export = member.get("/me/export").get_json()
    assert [p["id"] for p in export["medications"]["medication_plans"]] == [plan]
    assert export["medications"]["medication_checkins"] == [stored]


def test_openapi_documents_the_medication_endpoints(api):
    paths = api.get("/api/openapi.json").get_json()["paths"]
    expected = {
        ("/api/v1/medications", "get"): {"200"},
        ("/api/v1/medication-plans", "get"): {"200"},
        ("/api/v1/coach/members/{member_id}/medication-plans", "post"): {"201", "404", "422"},
        ("/api/v1/coach/members/{member_id}/medication-plans/{plan_id}", "patch"): {"200", "404", "422"},
        ("/api/v1/medication-checkins", "post"): {"200", "201", "404", "409", "422"},
        ("/api/v1/medication-checkins", "get"): {"200", "422"},
    }
    for (path, method), statuses in expected.items():
        assert statuses <= set(paths[path][method]["responses"]), (path, method)
    patch = paths["/api/v1/coach/members/{member_id}/medication-plans/{plan_id}"]["patch"]
    assert "history" in patch["description"] and "recorded as a step" in patch["description"]


# --- no input produces a 500 -------------------------------------------------------------------------

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    st.text(max_size=20),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
instants = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.sampled_from([UTC, NY])
).map(lambda d: d.isoformat())
near_instants = st.datetimes(
    min_value=datetime(2026, 11, 10), max_value=datetime(2026, 11, 22), timezones=st.sampled_from([UTC, NY])
).map(lambda d: d.isoformat())
dates = st.dates().map(str) | st.dates(min_value=date(2026, 11, 1), max_value=date(2026, 12, 31)).map(str)
hhmm = st.sampled_from(["08:00", "14:00", "20:00", "23:59", "00:00", "24:00", "8:00", "ab:cd", "-1:00"])
doses = st.one_of(
    json_scalars,
    st.decimals(allow_nan=False, allow_infinity=False).map(str),
    st.sampled_from([5, 10, 7.5, 0, -1, 10.001, 1e300, "1e999999", 10**30]),
)
times_lists = st.lists(hhmm, max_size=8) | json_values
steps = (
    st.lists(
        st.fixed_dictionaries(
            {},
            optional={
                "from_date": dates | json_scalars,
                "dose_mg": doses,
                "times": times_lists,
                "extra": json_scalars,
            },
        ),
        max_size=3,
    )
    | json_values
)


def plan_bodies(*, patch: bool):
    optional = {
        "dose_mg": doses,
        "times": times_lists,
        "start_date": dates | json_scalars,
        "end_date": dates | json_scalars,
        "steps": steps,
        "id": json_scalars,
    }
    optional["medication"] = st.sampled_from(["baclofen", "naltrexone", "aspirin", ""]) | json_scalars
    return st.fixed_dictionaries({}, optional=optional)


FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@given(body=plan_bodies(patch=False) | json_values)
def test_plan_post_never_500(member, coach, body):
    r = coach.post(plans_path(member), body)
    assert r.status_code in {201, 400, 422}, (body, r.get_json())
    if r.status_code >= 400:
        assert r.get_json()["error"]["status"] == r.status_code


@pytest.fixture
def plans_to_patch(app, member, coach):
    started = plan_made_earlier(
        app,
        coach,
        member,
        now=NOW - 10 * DAY,
        steps=[
            {"from_date": str(TODAY - 5 * DAY), "dose_mg": 10, "times": ["08:00"]},
            {"from_date": str(TODAY + 5 * DAY), "dose_mg": 15, "times": ["08:00"]},
        ],
    )
    later = new_plan(coach, member, start_date=str(TODAY + 3 * DAY))["id"]
    return [started, later, str(uuid.uuid4())]


@FUZZ
@given(body=plan_bodies(patch=True) | json_values, which=st.integers(min_value=0, max_value=2))
def test_plan_patch_never_500(member, coach, plans_to_patch, body, which):
    r = coach.patch(plans_path(member, plans_to_patch[which]), body)
    assert r.status_code in {200, 400, 404, 422}, (body, r.get_json())
    if r.status_code >= 400:
        assert r.get_json()["error"]["status"] == r.status_code


def checkin_bodies(plan_id: str):
    side_effect = st.fixed_dictionaries(
        {},
        optional={
            "code": st.sampled_from(["nausea", "drowsiness", "other", "metallic_taste", ""]) | json_scalars,
            "severity": st.sampled_from(["mild", "moderate", "severe", "x"]) | json_scalars,
            "note": st.text(max_size=10) | json_scalars,
        },
    )
    slots = st.sampled_from([slot(TODAY - n * DAY, w) for n in range(3) for w in ("08:00", "14:00", "20:00")])
    return st.fixed_dictionaries(
        {},
        optional={
            "id": st.sampled_from([str(uuid.UUID(int=n)) for n in range(1, 4)]) | json_scalars,
            "plan_id": st.sampled_from([plan_id, str(uuid.uuid4())]) | json_scalars,
            "scheduled_for": slots | near_instants | instants | json_scalars,
            "status": st.sampled_from(["taken", "skipped"]) | json_scalars,
            "taken_at": near_instants | instants | json_scalars,
            "side_effects": st.lists(side_effect, max_size=3) | json_values,
            "note": st.text(max_size=10) | json_scalars,
            "extra": json_scalars,
        },
    )


@FUZZ
@given(data=st.data())
def test_checkin_never_500(member, plan, data):
    body = data.draw(checkin_bodies(plan) | json_values)
    r = member.post("/medication-checkins", body)
    assert r.status_code in {200, 201, 400, 404, 409, 422}, (body, r.get_json())
    if r.status_code >= 400:
        assert r.get_json()["error"]["status"] == r.status_code


def test_a_new_checkin_is_its_plan_read_and_one_insert_without_a_savepoint(app, member, plan):
    """docs/performance/member-writes.md: the check-in, its change lock and safety request are one
    statement, its side effects a second; its answer is built from what was written, read nothing."""
    from tests.api.test_round_trips import _statements

    body = checkin(plan, slot(TODAY, "14:00"), side_effects=[{"code": "drowsiness", "severity": "mild"}])
    with _statements(app) as seen:
        r = member.post("/medication-checkins", body)
    assert r.status_code == 201, r.get_json()
    writes = [s for s in seen if "FROM auth_tokens" not in s]
    assert not [s for s in writes if "SAVEPOINT" in s]
    assert [s.split(" ")[0] for s in writes] == ["SELECT", "WITH", "INSERT"]
    assert "FROM medication_plans" in writes[0] and "INSERT INTO medication_checkins" in writes[1]
    listed = member.get("/medication-checkins", query_string={"from": "2026-11-20", "to": "2026-11-20"})
    assert [c for c in listed.get_json()["items"] if c["id"] == body["id"]] == [r.get_json()]
