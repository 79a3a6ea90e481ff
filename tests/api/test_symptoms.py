"""Issue 19 item 3: `POST/GET /symptom-reports`, `GET /symptoms`, sync type `symptom_report`: symptoms
at any time, with or without a plan, feeding the safety rules, the coach timeline and the member's export."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

import pytest
import time_machine

from companion.domain.medications import SYMPTOM_CODES
from tests.safety import helpers

NOW = datetime(2026, 11, 20, 20, 0, tzinfo=UTC)  # 15:00 in New York
TODAY = date(2026, 11, 20)


@pytest.fixture
def clock():
    with time_machine.travel(NOW, tick=True) as traveller:
        yield traveller


@pytest.fixture
def member(clock, register):
    return register(timezone="America/New_York", sex="female", country="US")


def report(**overrides):
    body = {
        "id": str(uuid.uuid4()),
        "reported_at": "2026-11-20T14:30:00-05:00",
        "symptoms": [{"code": "seizure", "severity": "severe"}, {"code": "tremor", "severity": "mild"}],
    }
    body.update(overrides)
    return body


def test_the_symptom_list(member, staff):
    items = member.get("/symptoms").get_json()["items"]
    codes = [s["code"] for s in items]
    assert codes == list(SYMPTOM_CODES) and len(set(codes)) == len(codes)
    general = {
        "hallucinations", "seizure", "confusion", "agitation", "tremor", "sweating", "suicidal_thoughts",
        "opioid_use", "pregnancy", "kidney_problems", "dark_urine", "jaundice", "abdominal_pain",
        "kidney_stones",
    }  # fmt: skip
    assert general <= set(codes) and {"drowsiness", "metallic_taste", "diarrhea"} <= set(codes)
    assert "other" not in codes and all(s["label"] for s in items)
    assert staff("coach").get("/symptoms").status_code == 200


def test_a_report_is_stored_once_and_listed(member):
    body = report(note="woke up shaking")
    first = member.post("/symptom-reports", body)
    assert first.status_code == 201, first.get_json()
    stored = first.get_json()
    assert stored["date"] == str(TODAY) and stored["reported_at"] == "2026-11-20T19:30:00Z"
    assert stored["symptoms"] == body["symptoms"] and stored["note"] == "woke up shaking"
    again = member.post("/symptom-reports", body)
    assert again.status_code == 200 and again.get_json() == stored
    conflict = member.post(
        "/symptom-reports", {**body, "symptoms": [{"code": "seizure", "severity": "mild"}]}
    )
    assert conflict.status_code == 409
    assert conflict.get_json()["error"]["current"]["symptoms"] == body["symptoms"]
    listed = member.get(f"/symptom-reports?from={TODAY}&to={TODAY}").get_json()
    assert listed == {"items": [stored], "next_cursor": None}


@pytest.mark.parametrize(("change", "field"), [
    ({"symptoms": []},                                                   "symptoms"),
    ({"symptoms": [{"code": "seizure", "severity": "mild"}] * 2},        "symptoms"),
    ({"symptoms": [{"code": c, "severity": "mild"} for c in SYMPTOM_CODES[:11]]}, "symptoms"),
    ({"symptoms": [{"code": "other", "severity": "mild"}]},              "symptoms"),
    ({"symptoms": [{"code": "nausea", "severity": "awful"}]},            "symptoms"),
    ({"symptoms": [{"code": "nausea"}]},                                 "symptoms"),
    ({"reported_at": "2026-11-20T14:30:00"},                             "reported_at"),
    ({"reported_at": "2026-11-21T14:30:00-05:00"},                       "reported_at"),
    ({"reported_at": "2026-09-01T14:30:00-05:00"},                       "reported_at"),
    ({"id": "x"},                                                        "id"),
    ({"note": "x" * 1001},                                               "note"),
    ({"medication": "baclofen"},                                         "medication"),
])  # fmt: skip
def test_report_validation_names_the_field(member, change, field):
    r = member.post("/symptom-reports", report(**change))
    assert r.status_code == 422, r.get_json()
    assert list(r.get_json()["error"]["fields"]) == [field]


def test_symptom_reports_sync_and_replay(member, register):
    item = {"type": "symptom_report", "data": report()}
    bad = {"type": "symptom_report", "data": report(symptoms=[])}
    results = member.post("/sync", {"items": [item, bad]}).get_json()["results"]
    assert [(r["status"], r.get("id")) for r in results] == [
        ("created", item["data"]["id"]),
        ("invalid", bad["data"]["id"]),
    ]
    assert member.post("/sync", {"items": [item]}).get_json()["results"][0]["status"] == "unchanged"
    assert len(member.get("/symptom-reports").get_json()["items"]) == 1
    # Another member's report with the same id is their own; it never shows here.
    other = register()
    assert other.post("/symptom-reports", item["data"]).status_code == 201
    assert len(member.get("/symptom-reports").get_json()["items"]) == 1
    # In the member's export.
    exported = member.get("/me/export").get_json()
    assert [r["id"] for r in exported["symptoms"]["symptom_reports"]] == [item["data"]["id"]]


def test_a_symptom_with_no_plan_raises_the_flag(app, client, redis, member):
    # No plan ever: the report asks for a scan, which flags suicidal thoughts and the severe seizure.
    body = report(
        symptoms=[
            {"code": "suicidal_thoughts", "severity": "mild"},
            {"code": "seizure", "severity": "severe"},
        ]
    )
    assert member.post("/symptom-reports", body).status_code == 201
    member_id = member.body["member"]["id"]
    assert [m["kwargs"]["member_id"] for m in helpers.queued(redis, "safety.scan_member")] == [member_id]
    helpers.forget_debounce(redis)
    assert helpers.run_queued(app, redis, "safety.scan_member") == 1
    flags = {f.rule: f for f in helpers.flags_of(app, member_id)}
    assert set(flags) == {"suicidal_thoughts", "severe_side_effect"}
    assert flags["suicidal_thoughts"].evidence == [f"symptom:{body['id']}:suicidal_thoughts"]
    assert flags["severe_side_effect"].summary == (
        "Severe side effect reported: Seizure (no medication); latest on 2026-11-20."
    )
