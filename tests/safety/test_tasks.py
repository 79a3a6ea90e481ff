"""The safety tasks through the real Redis broker: scans sent after commit by name with ids only, the
per-member debounce that never loses the last entry, the sweep's batches, escalation after the SLA."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from companion import db, jobs
from tests.safety import helpers

NOW = datetime(2026, 11, 20, 18, 0, tzinfo=UTC)  # 13:00 in New York
TODAY = date(2026, 11, 20)
DAY = timedelta(days=1)


@pytest.fixture
def clock():
    with helpers.travel(NOW) as traveller:
        yield traveller


@pytest.fixture
def coach(app, clock):
    return helpers.new_staff(app, "coach")


@pytest.fixture
def member(app, client, clock, coach):
    member_id, email = helpers.new_member(app, client, timezone="America/New_York")
    helpers.assign(app, email, coach[1])
    return member_id


def scans(redis) -> list[dict[str, Any]]:
    return helpers.queued(redis, jobs.SCAN_MEMBER)


def craving(intensity: int = 5, **overrides: Any) -> dict[str, Any]:
    body = {"id": str(uuid.uuid4()), "recorded_at": "2026-11-20T12:00:00-05:00", "intensity": intensity}
    body.update(overrides)
    return body


# --- after commit, by name, ids only ----------------------------------------------------------------


def test_each_new_or_changed_entry_sends_one_scan_after_commit(app, client, redis, member, coach):
    api = helpers.api_for(app, client, member)
    body = craving()
    assert api.post("/cravings", body).status_code == 201
    assert [m["kwargs"] for m in scans(redis)] == [{"member_id": str(member)}]
    assert api.post("/cravings", body).status_code == 200  # a retry changes nothing: no scan
    assert api.post("/cravings", craving(11)).status_code == 422  # nothing stored: no scan
    assert len(scans(redis)) == 1
    r = api.post(
        "/bac-readings", {"id": str(uuid.uuid4()), "measured_at": NOW.isoformat(), "bac_g_dl": "0.02"}
    )
    assert r.status_code == 201 and len(scans(redis)) == 2
    assert api.put(f"/drink-logs/{TODAY}", {"standard_drinks": 2}).status_code == 201
    assert api.put(f"/drink-logs/{TODAY}", {"standard_drinks": 2}).status_code == 200  # unchanged
    assert len(scans(redis)) == 3
    assert api.put(f"/drink-logs/{TODAY}", {"standard_drinks": 3}).status_code == 200  # changed
    assert len(scans(redis)) == 4
    plan_id = helpers.create_plan(
        app, coach[1], member, {"medication": "naltrexone", "dose_mg": 50, "times": ["08:00"]}, now=NOW
    )
    assert len(scans(redis)) == 5  # a new plan can make past entries matter
    checkin = {
        "id": str(uuid.uuid4()),
        "plan_id": plan_id,
        "scheduled_for": "2026-11-20T08:00:00-05:00",
        "status": "taken",
        "taken_at": "2026-11-20T08:00:00-05:00",
    }
    assert api.post("/medication-checkins", checkin).status_code == 201
    assert len(scans(redis)) == 6
    # Only ids travel: no intensity, no drinks, no symptom.
    assert all(set(m["kwargs"]) == {"member_id"} for m in scans(redis))


def test_a_sync_batch_asks_for_one_scan(app, client, redis, member):
    api = helpers.api_for(app, client, member)
    items = [{"type": "craving", "data": craving(i)} for i in range(5)]
    r = api.post("/sync", {"items": items})
    assert r.status_code == 200 and {x["status"] for x in r.get_json()["results"]} == {"created"}
    assert len(scans(redis)) == 1


def test_no_scan_is_sent_for_a_rolled_back_write(app, redis, member):
    from companion.accounts.models import Member
    from companion.tracking import services as tracking

    with pytest.raises(RuntimeError), app.app_context(), db.unit_of_work() as session:
        tracking.record_craving(
            session.get(Member, member),
            {"id": uuid.uuid4(), "recorded_at": NOW, "intensity": 4},
            origin=None,
            now=NOW,
        )
        raise RuntimeError("the request failed after the write")
    assert scans(redis) == []


# --- debounce ---------------------------------------------------------------------------------------


def test_a_burst_scans_at_once_then_once_more_after_the_window_and_sees_the_last_entry(
    app, client, redis, member
):
    from workers.tasks import safety as tasks

    api = helpers.api_for(app, client, member)
    assert tasks.scan_member(str(member)) == "scan"  # a quiet member: at once
    assert helpers.flags_of(app, member) == []
    # Entries keep coming during the window: the first request defers one trailing scan ...
    plan = helpers.create_plan(
        app,
        helpers.new_staff(app, "admin")[1],
        member,
        {"medication": "naltrexone", "dose_mg": 50, "times": ["08:00"]},
        now=NOW,
    )
    severe = {
        "id": str(uuid.uuid4()),
        "plan_id": plan,
        "scheduled_for": "2026-11-20T08:00:00-05:00",
        "status": "taken",
        "taken_at": "2026-11-20T08:00:00-05:00",
        "side_effects": [{"code": "jaundice", "severity": "severe"}],
    }
    assert api.post("/medication-checkins", severe).status_code == 201
    redis.delete("celery")
    assert tasks.scan_member(str(member)) == "defer"
    [trailing] = scans(redis)
    assert trailing["kwargs"] == {"member_id": str(member), "trailing": True} and trailing["eta"]
    # ... and later ones know it is coming.
    assert tasks.scan_member(str(member)) == "coalesced"
    assert len(scans(redis)) == 1
    assert helpers.flags_of(app, member) == []  # nothing scanned since the severe report
    # The window ends; the trailing scan runs and reads everything committed before it.
    redis.delete("companion:safety:scan:lock:" + str(member))
    assert helpers.run_queued(app, redis, jobs.SCAN_MEMBER) == 1
    assert sorted(f.rule for f in helpers.flags_of(app, member)) == ["liver_signs", "severe_side_effect"]


def test_a_trailing_scan_that_finds_a_new_window_defers_again(app, redis, member):
    from workers.tasks import safety as tasks

    assert tasks.scan_member(str(member)) == "scan"
    assert tasks.scan_member(str(member)) == "defer"
    redis.delete("celery")
    assert tasks.scan_member(str(member), trailing=True) == "defer"  # the lock is still held
    assert [m["kwargs"]["trailing"] for m in scans(redis)] == [True]


def test_without_redis_every_request_scans_at_once(app, member, monkeypatch):
    from workers.tasks import safety as tasks

    monkeypatch.setitem(app.config, "REDIS_URL", "redis://127.0.0.1:1/0")
    assert [tasks.scan_member(str(member)) for _ in range(2)] == ["scan", "scan"]


# --- the sweep, escalation, delivery ----------------------------------------------------------------


def test_the_sweep_fans_out_batches_that_find_what_absence_reveals(app, client, redis, coach, clock):
    """Members whose baclofen doses stopped two days ago: no entry event will ever say so."""
    from workers.tasks import safety as tasks

    stopped, steady = [], []
    for n in range(3):
        member_id, email = helpers.new_member(app, client, timezone="America/New_York")
        helpers.assign(app, email, coach[1])
        plan = helpers.create_plan(
            app,
            coach[1],
            member_id,
            {"medication": "baclofen", "dose_mg": 5, "times": ["08:00"]},
            now=NOW - 5 * DAY,
        )
        taken_until = 2 if n < 2 else 0
        api = helpers.api_for(app, client, member_id)
        for ago in range(5, taken_until - 1, -1):
            slot = f"{TODAY - ago * DAY}T08:00:00-05:00"
            body = {
                "id": str(uuid.uuid4()),
                "plan_id": plan,
                "scheduled_for": slot,
                "status": "taken",
                "taken_at": slot,
            }
            assert (
                api.post("/sync", {"items": [{"type": "medication_checkin", "data": body}]}).status_code
                == 200
            )
        (stopped if n < 2 else steady).append(member_id)
    redis.delete("celery")
    assert tasks.sweep() == 3
    [batch] = helpers.queued(redis, "safety.scan_batch")
    assert sorted(batch["kwargs"]["member_ids"]) == sorted(str(m) for m in stopped + steady)
    assert helpers.run_queued(app, redis, "safety.scan_batch") == 1
    assert {f.member_id for f in helpers.flags_of(app)} == set(stopped)
    assert {f.rule for f in helpers.flags_of(app)} == {"withdrawal_risk"}
    # Swept again: the same evidence, no second flag, no second alert.
    tasks.sweep()
    helpers.run_queued(app, redis, "safety.scan_batch")
    assert len(helpers.flags_of(app)) == 2 and len(helpers.alerts_of(app)) == 2


def test_an_urgent_flag_not_acknowledged_within_the_sla_escalates_to_the_admins_once(
    app, client, redis, member, coach, clock
):
    from workers.tasks import safety as tasks

    admins = [helpers.new_staff(app, "admin")[0] for _ in range(2)]
    plan = helpers.create_plan(
        app, coach[1], member, {"medication": "disulfiram", "dose_mg": 250, "times": ["08:00"]}, now=NOW
    )
    api = helpers.api_for(app, client, member)
    assert api.put(f"/drink-logs/{TODAY}", {"standard_drinks": 1}).status_code == 201
    assert plan and tasks.scan_member(str(member)) == "scan"
    [flag] = helpers.flags_of(app, member)
    assert flag.rule == "disulfiram_with_drinking"
    clock.move_to(NOW + timedelta(hours=1, minutes=59))
    assert tasks.escalate_overdue() == 0
    clock.move_to(NOW + timedelta(hours=2, minutes=1))
    assert tasks.escalate_overdue() == 1
    assert tasks.escalate_overdue() == 0
    [flag] = helpers.flags_of(app, member)
    assert flag.escalated_at == NOW + timedelta(hours=2, minutes=1)
    escalations = [n for n in helpers.notifications(app) if n.kind == "escalation"]
    assert sorted((n.recipient_id, n.channel) for n in escalations) == sorted(
        (a, c) for a in admins for c in ("inbox", "log")
    )
    # Delivery was asked for after commit; the task hands the log-channel rows over once.
    assert helpers.queued(redis, jobs.DELIVER_NOTIFICATIONS)
    assert tasks.deliver_notifications() == 3  # the coach's alert and two escalations, on "log"
    assert tasks.deliver_notifications() == 0


def test_an_acknowledged_flag_never_escalates(app, client, member, coach, clock):
    from workers.tasks import safety as tasks

    helpers.create_plan(
        app, coach[1], member, {"medication": "disulfiram", "dose_mg": 250, "times": ["08:00"]}, now=NOW
    )
    api = helpers.api_for(app, client, member)
    assert api.put(f"/drink-logs/{TODAY}", {"standard_drinks": 1}).status_code == 201
    tasks.scan_member(str(member))
    [flag] = helpers.flags_of(app, member)
    coach_api = helpers.api_for(app, client, coach[0])
    assert coach_api.post(f"/coach/flags/{flag.id}/acknowledge").status_code == 200
    clock.move_to(NOW + timedelta(days=1))
    assert tasks.escalate_overdue() == 0


def test_every_safety_task_is_registered_and_scheduled_by_name():
    from workers.schedule import BEAT_SCHEDULE
    from workers.tasks import safety as tasks

    for task in (
        tasks.scan_member,
        tasks.scan_batch,
        tasks.sweep,
        tasks.escalate_overdue,
        tasks.deliver_notifications,
    ):
        assert task.name.startswith("safety.")
    for name in ("safety.sweep", "safety.escalate_overdue", "safety.deliver_notifications"):
        assert BEAT_SCHEDULE[name]["task"] == name
