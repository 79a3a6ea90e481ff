"""The inbox (`GET /me/messages`, read, snooze), coach messages, craving support and `GET /sync` messages."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine

from companion import db
from companion.accounts import services as accounts
from companion.nudges import services as nudge_services
from tests.nudges.conftest import LEASE, add_device, deliveries_of, nudges_of


def _queued(redis, name: str) -> list[dict]:
    messages = [json.loads(raw) for raw in redis.lrange("celery", 0, -1)]
    return [json.loads(base64.b64decode(m["body"]))[1] for m in messages if m["headers"]["task"] == name]


@pytest.fixture
def member(register):
    return register(timezone="America/New_York")


@pytest.fixture
def coach(app, staff, member):
    coach = staff("coach")
    with app.app_context(), db.unit_of_work():
        accounts.assign_coach(member.body["member"]["email"], coach.email, now=db.utcnow())
    return coach


def member_id(member) -> uuid.UUID:
    return uuid.UUID(member.body["member"]["id"])


def test_a_coach_message_is_in_the_inbox_at_once_and_pushed_after_commit(
    app, member, coach, redis, gateway, deliver
):
    token = add_device(app, member_id(member))
    response = coach.post(
        f"/coach/members/{member_id(member)}/messages", {"body": "Proud of your week, Sam."}
    )
    assert response.status_code == 201, response.get_json()
    message = response.get_json()
    assert message["body"] == "Proud of your week, Sam." and message["member_id"] == str(member_id(member))
    assert _queued(redis, "nudges.deliver") == [{"nudge_ids": [message["id"]]}]

    [item] = member.get("/me/messages").get_json()["items"]
    expected = {"id": message["id"], "kind": "coach_message", "title": "New message",
                "body": "Proud of your week, Sam.", "sent_at": None, "read_at": None,
                "expires_at": None}  # fmt: skip
    assert item == expected

    deliver([uuid.UUID(message["id"])], datetime.now(UTC))
    [received] = gateway.requests()
    assert received.token == token and received.nudge_id == message["id"]
    assert "Sam" not in json.dumps(received.body)  # the push names no content
    [item] = member.get("/me/messages").get_json()["items"]
    assert item["sent_at"] is not None


def test_who_may_message_whom(app, member, coach, staff, register):
    path = f"/coach/members/{member_id(member)}/messages"
    assert staff("coach").post(path, {"body": "hi"}).status_code == 404  # not on their caseload
    assert staff("admin").post(path, {"body": "hi"}).status_code == 201
    assert member.post(path, {"body": "hi"}).status_code == 403
    assert register().post(path, {"body": "hi"}).status_code == 403
    assert coach.post(f"/coach/members/{uuid.uuid4()}/messages", {"body": "hi"}).status_code == 404
    for body in ({}, {"body": ""}, {"body": "x" * 4001}, {"body": "hi", "urgent": True}):
        response = coach.post(path, body)
        assert response.status_code == 422, body
        assert response.get_json()["error"]["code"] == "invalid_payload"


def test_coach_messages_are_never_capped_or_muted_but_wait_for_quiet_hours(
    app, member, coach, gateway, deliver
):
    from companion.domain.nudges import MUTABLE_KINDS

    add_device(app, member_id(member))
    reminders = {"muted_kinds": sorted(k.value for k in MUTABLE_KINDS)}
    assert member.patch("/me", {"reminders": reminders}).status_code == 200
    now = datetime.now(UTC)
    with app.app_context(), db.unit_of_work() as session:  # four automatic nudges already sent today
        from companion.nudges.models import Nudge

        for n in range(4):
            session.add(Nudge(member_id=member_id(member), kind="log_reminder", dedupe_key=f"x:{n}",
                              local_date=now.date(), local_slot=now.time().replace(tzinfo=None), zone="UTC",
                              due_at=now, template="log_reminder", status="sent", sent_at=now))  # fmt: skip
    message = coach.post(f"/coach/members/{member_id(member)}/messages", {"body": "hi"}).get_json()
    deliver([uuid.UUID(message["id"])], datetime.now(UTC))
    assert gateway.per_nudge() == {message["id"]: 1}

    local = now.astimezone(ZoneInfo("America/New_York"))
    quiet = {
        "start": (local - timedelta(hours=1)).strftime("%H:%M"),
        "end": (local + timedelta(hours=2)).strftime("%H:%M"),
    }
    assert member.patch("/me", {"reminders": {"quiet_hours": quiet}}).status_code == 200
    held = coach.post(f"/coach/members/{member_id(member)}/messages", {"body": "later"}).get_json()
    now = datetime.now(UTC)
    deliver([uuid.UUID(held["id"])], now)
    assert held["id"] not in gateway.per_nudge()
    assert {i["id"] for i in member.get("/me/messages").get_json()["items"]} >= {held["id"]}  # inbox at once
    [row] = [n for n in nudges_of(app) if str(n.id) == held["id"]]
    assert row.status == "pending" and row.due_at > now


def test_the_inbox_pages_newest_first_and_marks_read(app, member, coach, register):
    ids = [coach.post(f"/coach/members/{member_id(member)}/messages", {"body": f"m{i}"}).get_json()["id"]
           for i in range(5)]  # fmt: skip
    seen, cursor = [], None
    while True:
        page = member.get("/me/messages?limit=2" + (f"&cursor={cursor}" if cursor else "")).get_json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ids[::-1]
    assert member.post(f"/me/messages/{ids[0]}/read").status_code == 204
    first = member.get("/me/messages").get_json()["items"][-1]["read_at"]
    assert first is not None
    assert member.post(f"/me/messages/{ids[0]}/read").status_code == 204  # idempotent: first time kept
    assert member.get("/me/messages").get_json()["items"][-1]["read_at"] == first
    stranger = register()
    assert stranger.post(f"/me/messages/{ids[0]}/read").status_code == 404
    assert stranger.post(f"/me/messages/{ids[0]}/snooze", {"minutes": 10}).status_code == 404
    assert member.post(f"/me/messages/{uuid.uuid4()}/read").status_code == 404
    assert member.get("/me/messages?cursor=garbage").status_code == 422
    assert member.get("/me/messages?limit=0").status_code == 422


def test_snooze_hides_the_item_then_pushes_it_again_as_a_new_round(app, member, coach, gateway, deliver):
    add_device(app, member_id(member))
    message = coach.post(f"/coach/members/{member_id(member)}/messages", {"body": "hi"}).get_json()
    nudge_id = uuid.UUID(message["id"])
    now = datetime.now(UTC)
    deliver([nudge_id], now)
    member.post(f"/me/messages/{message['id']}/read")
    response = member.post(f"/me/messages/{message['id']}/snooze", {"minutes": 30})
    assert response.status_code == 202, response.get_json()
    until = datetime.fromisoformat(response.get_json()["snoozed_until"])
    assert timedelta(minutes=29) < until - now <= timedelta(minutes=31)
    assert member.get("/me/messages").get_json()["items"] == []  # hidden while snoozed
    deliver([nudge_id], now + timedelta(minutes=10))  # not due yet
    assert gateway.per_nudge() == {message["id"]: 1}
    deliver([nudge_id], until)
    assert gateway.per_nudge() == {message["id"]: 2}
    assert sorted(d.send_round for d in deliveries_of(app, nudge_id)) == [0, 1]
    [row] = nudges_of(app)
    assert (row.status, row.send_round, row.sent_at, row.read_at) == ("sent", 1, until, None)
    with time_machine.travel(until, tick=False):
        [item] = member.get("/me/messages").get_json()["items"]
    assert (item["read_at"], item["sent_at"]) == (
        None,
        until.isoformat().replace("+00:00", "Z"),
    )  # back, unread


@pytest.mark.parametrize("minutes", [9, 241, "ten", None])
def test_snooze_minutes_are_10_to_240(member, coach, minutes):
    message = coach.post(f"/coach/members/{member_id(member)}/messages", {"body": "hi"}).get_json()
    response = member.post(f"/me/messages/{message['id']}/snooze", {"minutes": minutes})
    assert response.status_code == 422
    assert "minutes" in response.get_json()["error"]["fields"]


def test_a_reminder_cannot_be_snoozed_past_its_expiry(app, member):
    from companion.nudges.models import Nudge

    now = datetime.now(UTC)
    with app.app_context(), db.unit_of_work() as session:
        row = Nudge(member_id=member_id(member), kind="log_reminder", dedupe_key="log_reminder:x",
                    local_date=now.date(), local_slot=now.time().replace(tzinfo=None), zone="UTC",
                    due_at=now, expires_at=now + timedelta(minutes=20), template="log_reminder",
                    status="sent", sent_at=now)  # fmt: skip
        session.add(row)
        session.flush()
        row_id = row.id
    response = member.post(f"/me/messages/{row_id}/snooze", {"minutes": 30})
    assert response.status_code == 422
    assert response.get_json()["error"]["fields"] == {"minutes": ["It expires before then."]}
    assert member.post(f"/me/messages/{row_id}/snooze", {"minutes": 10}).status_code == 202


def test_sync_hands_out_coach_messages_once(member, coach):
    before = member.get("/sync").get_json()["cursor"]
    message = coach.post(
        f"/coach/members/{member_id(member)}/messages", {"body": "See you Thursday"}
    ).get_json()
    changes = member.get(f"/sync?since={before}").get_json()
    [change] = [c for c in changes["changes"] if c["type"] == "message"]
    assert change["deleted"] is False
    assert change["data"]["id"] == message["id"] and change["data"]["body"] == "See you Thursday"
    assert change["data"]["kind"] == "coach_message"
    again = member.get(f"/sync?since={changes['cursor']}").get_json()
    assert [c for c in again["changes"] if c["type"] == "message"] == []


def _craving(intensity: int, minutes_ago: int = 1) -> dict:
    at = datetime.now(UTC) - timedelta(minutes=minutes_ago)
    return {"id": str(uuid.uuid4()), "recorded_at": at.isoformat(), "intensity": intensity}


def test_a_high_craving_gets_support_right_after_commit(app, member, redis, gateway):
    token = add_device(app, member_id(member))
    craving = _craving(9)
    assert member.post("/cravings", craving).status_code == 201
    [row] = nudges_of(app, member_id(member))
    assert (row.kind, row.status, row.subject_id) == ("craving_support", "pending", uuid.UUID(craving["id"]))
    assert _queued(redis, "nudges.craving_support") == [
        {"member_id": str(member_id(member)), "craving_id": craving["id"]}
    ]
    # What the task does (workers/tasks/nudges.py), here with the channels pointed at the fake gateway.
    from companion.notifications import build_channels

    with app.app_context():
        with db.unit_of_work():
            nudge_id = nudge_services.craving_support(
                member_id(member), uuid.UUID(craving["id"]), now=db.utcnow()
            )
        assert nudge_id == row.id
    channels = build_channels(_settings(gateway))
    with app.app_context():
        from companion.nudges import delivery_tx as delivery

        delivery.deliver([nudge_id], channels=channels, lease=LEASE)
        delivery.deliver([nudge_id], channels=channels, lease=LEASE)  # a redelivered task
    channels.close()
    assert [r.token for r in gateway.requests()] == [token]
    assert gateway.requests()[0].body["message"]["notification"]["title"] == "We're here for you"
    # Within the hour a second high rating gets no second tip; a low rating never gets one.
    assert member.post("/cravings", _craving(10)).status_code == 201
    assert member.post("/cravings", _craving(7)).status_code == 201
    assert len(nudges_of(app, member_id(member))) == 1


def test_a_high_craving_through_sync_gets_support_too_and_a_replay_none(app, member):
    item = {"type": "craving", "data": _craving(8)}
    assert member.post("/sync", {"items": [item]}).get_json()["results"][0]["status"] == "created"
    assert member.post("/sync", {"items": [item]}).get_json()["results"][0]["status"] == "unchanged"
    assert [n.kind for n in nudges_of(app, member_id(member))] == ["craving_support"]


def test_a_craving_synced_too_late_to_help_gets_no_support(app, member):
    assert member.post("/cravings", _craving(9, minutes_ago=90)).status_code == 201
    assert nudges_of(app, member_id(member)) == []


def _settings(gateway):
    from tests import fake_push

    return {
        "COMPANION_FCM_PROJECT_ID": fake_push.FCM_PROJECT,
        "COMPANION_FCM_ACCESS_TOKEN": fake_push.FCM_BEARER,
        "COMPANION_FCM_BASE_URL": gateway.url,
        "COMPANION_PUSH_TIMEOUT_SECONDS": 5,
    }


def test_zone_change_moves_pending_reminders_to_the_new_local_time(app, member):
    from companion.nudges import planning

    now = datetime.now(UTC)
    with app.app_context(), db.unit_of_work():
        planning.track_new_members(now)
    with app.app_context(), db.unit_of_work():
        planned = planning.plan_members({member_id(member): now}, now + timedelta(days=1))
        planning.insert_planned(planned, now=now)
    # The log reminder (on a month's first Sunday the PACS reminder rides along: it moves the same way).
    [before] = [n for n in nudges_of(app, member_id(member)) if n.kind == "log_reminder"]
    assert member.patch("/me", {"timezone": "Asia/Kolkata"}).status_code == 200
    [after] = [n for n in nudges_of(app, member_id(member)) if n.kind == "log_reminder"]
    from companion.domain import localtime

    assert (after.zone, after.local_date, after.dedupe_key) == (
        "Asia/Kolkata",
        before.local_date,
        before.dedupe_key,
    )
    assert after.due_at == localtime.local_to_utc(before.local_date, before.local_slot, "Asia/Kolkata")
    assert member.patch("/me", {"reminders": {"log_time": "07:15"}}).status_code == 200
    [moved] = [n for n in nudges_of(app, member_id(member)) if n.kind == "log_reminder"]
    assert moved.local_slot.isoformat("minutes") == "07:15"
    assert moved.due_at == localtime.local_to_utc(before.local_date, moved.local_slot, "Asia/Kolkata")


def test_craving_support_is_never_blocked_by_the_cap_or_quiet_hours(app, register, redis, gateway, deliver):
    # Issue 19: 23:30 in New York, inside the member's quiet hours, with the day's 4 nudges already sent.
    from companion.nudges.models import Nudge

    at = datetime(2026, 11, 21, 4, 30, tzinfo=UTC)
    with time_machine.travel(at, tick=False):
        member = register(timezone="America/New_York")
        mid = member_id(member)
        r = member.patch("/me", {"reminders": {"quiet_hours": {"start": "22:00", "end": "07:00"}}})
        assert r.status_code == 200, r.get_json()
        token = add_device(app, mid)
        with app.app_context(), db.unit_of_work() as session:
            for n in range(4):
                sent = at - timedelta(hours=n + 1)
                session.add(
                    Nudge(
                        member_id=mid, kind="log_reminder", dedupe_key=f"filler:{n}", local_date=sent.date(),
                        local_slot=sent.time(), zone="America/New_York", due_at=sent, template="log_reminder",
                        status="sent", sent_at=sent,
                    )
                )  # fmt: skip
        craving = {
            "id": str(uuid.uuid4()),
            "recorded_at": (at - timedelta(minutes=1)).isoformat(),
            "intensity": 8,
        }
        assert member.post("/cravings", craving).status_code == 201
        with app.app_context(), db.unit_of_work():
            nudge_id = nudge_services.craving_support(mid, uuid.UUID(craving["id"]), now=at)
        assert nudge_id is not None
    deliver([nudge_id], at)
    assert [r.token for r in gateway.requests()] == [token]
    [row] = [n for n in nudges_of(app, mid) if n.kind == "craving_support"]
    assert row.status == "sent"
