"""Push payloads carry no health data (DOMAIN.md): every template, and the JSON the gateways receive."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, time

import pytest

from companion import db
from companion.domain.medications import CATALOGUE
from companion.domain.nudges import TEMPLATES, NudgeKind
from companion.nudges.models import Message, Nudge
from companion.sync_seq import stamp
from tests.nudges.conftest import add_device, make_member

#: Words that would say something about the member's health or treatment.
HEALTH_WORDS = {
    "alcohol", "drink", "drank", "beer", "wine", "spirit", "liquor", "booze", "sober", "relapse", "heavy",
    "craving", "crave", "urge", "dose", "mg", "pill", "tablet", "medication", "medicine", "prescription",
    "withdrawal", "side effect", "symptom", "taper", "bac", "breath", "liver", "pregnan", "kidney", "flag",
    "streak", "days", "week of", "goal", "limit",
}  # fmt: skip
HEALTH_WORDS |= {m.code.lower() for m in CATALOGUE} | {m.name.lower() for m in CATALOGUE}
HEALTH_WORDS |= {s.label.lower() for m in CATALOGUE for s in m.side_effects}
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def health_data_in(text: str) -> list[str]:
    lowered = UUID.sub("", text.lower())
    found = [word for word in HEALTH_WORDS if re.search(rf"\b{re.escape(word)}", lowered)]
    if re.search(r"\d", lowered):
        found.append("a number")
    if "{" in text and "}" in text and re.search(r"\{\w*\}", text):
        found.append("a placeholder")
    return found


@pytest.mark.parametrize("key", sorted(TEMPLATES))
def test_every_template_is_free_of_health_data(key):
    title, body = TEMPLATES[key]
    assert title and body
    assert health_data_in(title) == [] and health_data_in(body) == [], (key, title, body)


def test_the_word_list_catches_what_it_should():
    assert "baclofen" in health_data_in("Take your baclofen")
    assert "a number" in health_data_in("You had 3 drinks")
    assert health_data_in("Time for your check-in") == []


def test_what_the_gateways_receive_for_every_kind_names_nothing_but_the_nudge(app, deliver, gateway):
    """One nudge of each kind (a member each: the daily cap is not under test), to an Android and an
    iPhone: the full JSON and headers each gateway got."""
    now = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)
    secret = "Your naltrexone at 50 mg, and 3 drinks on Friday"
    ids: dict[uuid.UUID, str] = {}
    tokens: dict[str, set[str]] = {"fcm": set(), "apns": set()}
    for kind in NudgeKind:
        member_id = make_member(app)
        tokens["fcm"].add(add_device(app, member_id, "android"))
        tokens["apns"].add(add_device(app, member_id, "ios"))
        with app.app_context(), db.unit_of_work() as session:
            subject = uuid.uuid4()
            if kind is NudgeKind.COACH_MESSAGE:
                message = Message(id=subject, member_id=member_id, body=secret, created_at=now)
                stamp(message, None)
                session.add(message)
            nudge_id = subject if kind is NudgeKind.COACH_MESSAGE else uuid.uuid4()
            row = Nudge(id=nudge_id, member_id=member_id, kind=kind.value, dedupe_key=f"{kind.value}:x",
                        local_date=now.date(), local_slot=time(10, 0), zone="America/New_York",
                        due_at=now, template=kind.value, subject_id=subject, status="pending")  # fmt: skip
            session.add(row)
            ids[nudge_id] = kind.value
    deliver(list(ids), now)
    received = gateway.requests()
    assert len(received) == 2 * len(NudgeKind)
    for request in received:
        kind = ids[uuid.UUID(request.nudge_id)]
        title, body = TEMPLATES[kind]
        if request.provider == "fcm":
            message_json = request.body["message"]
            assert set(request.body) == {"message"}
            assert set(message_json) == {"token", "notification", "data", "android"}
            assert message_json["token"] in tokens["fcm"]
            assert message_json["notification"] == {"title": title, "body": body}
            assert message_json["data"] == {"nudge_id": request.nudge_id}
            assert set(message_json["android"]) <= {"priority", "collapse_key", "ttl"}
            checked = dict(request.body)
            checked["message"] = {k: v for k, v in message_json.items() if k not in ("token", "android")}
        else:
            assert request.token in tokens["apns"]
            assert request.body == {"aps": {"alert": {"title": title, "body": body}, "sound": "default"},
                                    "nudge_id": request.nudge_id}  # fmt: skip
            checked = request.body
            headers = {k: v for k, v in request.headers.items() if k.startswith("apns-")}
            assert set(headers) <= {"apns-topic", "apns-push-type", "apns-priority", "apns-id",
                                    "apns-collapse-id", "apns-expiration"}  # fmt: skip
            assert health_data_in(headers["apns-topic"]) == []
        assert health_data_in(json.dumps(checked)) == [], (kind, checked)
        assert secret not in json.dumps(request.body)
