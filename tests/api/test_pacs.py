"""Issue 19 item 10: `POST /pacs` (5 items 0-6, total 0-30), `GET /pacs?from&to`, sync type `pacs`, and
the craving-escalation warning it raises through the worker's scan."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
import time_machine

from tests.safety import helpers

NOW = datetime(2026, 11, 20, 20, 0, tzinfo=UTC)  # Friday 15:00 in New York; this week's Monday: 11-16


@pytest.fixture
def clock():
    with time_machine.travel(NOW, tick=True) as traveller:
        yield traveller


@pytest.fixture
def member(clock, register):
    return register(timezone="America/New_York")


def pacs(week_of="2026-11-16", items=(3, 4, 2, 5, 1), **overrides):
    return {"id": str(uuid.uuid4()), "week_of": week_of, "items": list(items), **overrides}


def test_pacs_is_stored_once_with_its_total(member):
    body = pacs()
    first = member.post("/pacs", body)
    assert first.status_code == 201, first.get_json()
    stored = first.get_json()
    assert (stored["week_of"], stored["items"], stored["total"]) == ("2026-11-16", [3, 4, 2, 5, 1], 15)
    again = member.post("/pacs", body)
    assert again.status_code == 200 and again.get_json() == stored
    changed = member.post("/pacs", {**body, "items": [0, 0, 0, 0, 0]})
    assert changed.status_code == 409 and changed.get_json()["error"]["current"]["total"] == 15
    other_id = member.post("/pacs", pacs())  # another id for a week already answered
    assert other_id.status_code == 409 and "week_of" in other_id.get_json()["error"]["fields"]
    listed = member.get("/pacs?from=2026-11-01&to=2026-11-20").get_json()
    assert listed == {"items": [stored], "next_cursor": None}


@pytest.mark.parametrize(("change", "field"), [
    ({"week_of": "2026-11-17"},              "week_of"),   # a Tuesday
    ({"week_of": "2026-11-23"},              "week_of"),   # next week
    ({"week_of": "2026-09-14"},              "week_of"),   # more than 60 days back
    ({"items": [1, 2, 3, 4]},                "items"),
    ({"items": [1, 2, 3, 4, 5, 6]},          "items"),
    ({"items": [1, 2, 3, 4, 7]},             "items"),
    ({"items": [1, 2, 3, 4, -1]},            "items"),
    ({"items": [1, 2, 3, 4, "5"]},           "items"),
    ({"id": "nope"},                          "id"),
    ({"total": 15},                           "total"),
])  # fmt: skip
def test_pacs_validation_names_the_field(member, change, field):
    r = member.post("/pacs", pacs(**change))
    assert r.status_code == 422, r.get_json()
    assert list(r.get_json()["error"]["fields"]) == [field]


def test_a_rising_pacs_through_sync_raises_craving_escalation(app, redis, member):
    items = [
        {"type": "pacs", "data": pacs("2026-11-09", (1, 2, 2, 2, 2))},  # 9
        {"type": "pacs", "data": pacs("2026-11-16", (4, 4, 4, 3, 3))},  # 18
        {"type": "pacs", "data": pacs("2026-11-16", (9, 4, 4, 3, 3))},  # invalid: stands alone
    ]
    results = member.post("/sync", {"items": items}).get_json()["results"]
    assert [r["status"] for r in results] == ["created", "created", "invalid"]
    assert member.post("/sync", {"items": items[:2]}).get_json()["results"][1]["status"] == "unchanged"
    member_id = member.body["member"]["id"]
    helpers.forget_debounce(redis)
    assert helpers.run_queued(app, redis, "safety.scan_member") >= 1
    [flag] = helpers.flags_of(app, member_id)
    assert (flag.rule, flag.tier, flag.rule_version) == ("craving_escalation", 2, 2)
    assert flag.summary == "PACS 18 for the week of 2026-11-16, up from 9 the week before."
    assert sorted(flag.evidence) == sorted(f"pacs:{i['data']['id']}" for i in items[:2])
    assert [p["total"] for p in member.get("/me/export").get_json()["pacs"]["pacs"]] == [9, 18]
