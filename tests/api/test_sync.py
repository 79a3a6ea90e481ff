"""Offline sync (API.md `POST /sync`, `GET /sync`): batches where each item stands alone, replay-safe."""

from __future__ import annotations

import itertools
import random
import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, initialize, invariant, precondition, rule

from tests.conftest import PASSWORD, Api


def today_utc() -> date:
    return datetime.now(UTC).date()


def craving_item(**overrides):
    data = {"id": str(uuid.uuid4()), "recorded_at": datetime.now(UTC).isoformat(), "intensity": 5}
    data.update(overrides)
    return {"type": "craving", "data": data}


def drink_item(day: date, drinks: float, updated_at: datetime | None = None):
    data = {"date": day.isoformat(), "standard_drinks": drinks}
    if updated_at:
        data["updated_at"] = updated_at.isoformat()
    return {"type": "drink_log", "data": data}


@pytest.fixture
def member(register):
    return register(timezone="UTC")


def second_device(api_client, member) -> Api:
    r = Api(api_client).post("/auth/token", {"email": member.body["member"]["email"], "password": PASSWORD})
    assert r.status_code == 200
    return Api(api_client, r.get_json()["access_token"])


def test_batch_items_stand_alone(member):
    good = craving_item()
    items = [
        good,
        drink_item(today_utc(), 2),
        {"type": "craving", "data": {"id": "nope", "intensity": 99}},
        {"type": "teleport", "data": {}},
        "not an object",
        {
            "type": "bac_reading",
            "data": {"id": str(uuid.uuid4()), "measured_at": datetime.now(UTC).isoformat(), "bac_g_dl": 0.02},
        },
        drink_item(today_utc() + timedelta(days=3), 1),
    ]
    r = member.post("/sync", {"items": items})
    assert r.status_code == 200, r.get_json()
    results = r.get_json()["results"]
    assert [x["index"] for x in results] == list(range(len(items)))
    assert [x["status"] for x in results] == [
        "created",
        "created",
        "invalid",
        "invalid",
        "invalid",
        "created",
        "invalid",
    ]
    assert results[0]["id"] == good["data"]["id"] and results[1]["date"] == today_utc().isoformat()
    assert {"id", "intensity", "recorded_at"} <= set(results[2]["errors"])
    assert "date" in results[6]["errors"]
    # Replaying the whole batch stores nothing twice.
    again = member.post("/sync", {"items": items}).get_json()["results"]
    assert [x["status"] for x in again] == [
        "unchanged",
        "unchanged",
        "invalid",
        "invalid",
        "invalid",
        "unchanged",
        "invalid",
    ]
    assert len(member.get("/cravings").get_json()["items"]) == 1
    assert len(member.get("/bac-readings").get_json()["items"]) == 1


def test_duplicate_inside_one_batch_is_stored_once(member):
    item = craving_item()
    results = member.post(
        "/sync", {"items": [item, item, {**item, "data": {**item["data"], "intensity": 9}}]}
    )
    assert [x["status"] for x in results.get_json()["results"]] == ["created", "unchanged", "conflict"]
    conflict = results.get_json()["results"][2]
    assert conflict["current"]["intensity"] == 5
    assert len(member.get("/cravings").get_json()["items"]) == 1


def test_stale_drink_log_in_a_batch_conflicts(member):
    day = today_utc()
    newer, older = datetime.now(UTC) - timedelta(minutes=1), datetime.now(UTC) - timedelta(minutes=10)
    results = member.post(
        "/sync", {"items": [drink_item(day, 3, newer), drink_item(day, 1, older)]}
    ).get_json()
    assert [x["status"] for x in results["results"]] == ["created", "conflict"]
    assert member.get(f"/drink-logs/{day}").get_json()["standard_drinks"] == 3


def test_batch_of_500_is_fine_and_501_is_413(member):
    items = [craving_item() for _ in range(500)]
    r = member.post("/sync", {"items": items})
    assert r.status_code == 200 and {x["status"] for x in r.get_json()["results"]} == {"created"}
    r = member.post("/sync", {"items": [*items, craving_item()]})
    assert r.status_code == 413 and r.get_json()["error"]["code"] == "payload_too_large"


@pytest.mark.parametrize("body", [{}, {"items": "x"}, {"items": [], "extra": 1}])
def test_batch_shape_is_validated(member, body):
    assert member.post("/sync", body).status_code == 422


def test_pull_shows_other_devices_changes_not_own(client, member):
    phone_b = second_device(client, member)
    member.post("/sync", {"items": [craving_item(intensity=3), drink_item(today_utc(), 1)]})
    own = member.get("/sync").get_json()
    assert own["changes"] == [] and own["cursor"]
    seen = phone_b.get("/sync").get_json()
    assert sorted(c["type"] for c in seen["changes"]) == ["craving", "drink_log"]
    # Nothing new since the cursor.
    assert phone_b.get(f"/sync?since={seen['cursor']}").get_json()["changes"] == []
    # A deletion on A reaches B as a tombstone.
    member.delete(f"/drink-logs/{today_utc()}")
    later = phone_b.get(f"/sync?since={seen['cursor']}").get_json()["changes"]
    assert later == [{"type": "drink_log", "deleted": True, "data": {"date": today_utc().isoformat()}}]


def test_symptom_reports_and_pacs_reach_the_other_phone(client, member):
    # Issue 19: the new item types sync both ways like the others.
    phone_b = second_device(client, member)
    now = datetime.now(UTC)
    monday = now.date() - timedelta(days=now.date().weekday() + 7)  # last week's: never after the local today
    symptom = {
        "id": str(uuid.uuid4()),
        "reported_at": (now - timedelta(minutes=1)).isoformat(),
        "symptoms": [{"code": "sweating", "severity": "mild"}],
    }
    pacs = {"id": str(uuid.uuid4()), "week_of": monday.isoformat(), "items": [0, 1, 2, 3, 4]}
    results = member.post(
        "/sync", {"items": [{"type": "symptom_report", "data": symptom}, {"type": "pacs", "data": pacs}]}
    ).get_json()["results"]
    assert [r["status"] for r in results] == ["created", "created"]
    assert member.get("/sync").get_json()["changes"] == []
    seen = {c["type"]: c["data"] for c in phone_b.get("/sync").get_json()["changes"]}
    assert seen["symptom_report"]["symptoms"] == symptom["symptoms"]
    assert (seen["pacs"]["id"], seen["pacs"]["total"]) == (pacs["id"], 10)


def test_pull_pages_with_has_more(client, member):
    phone_b = second_device(client, member)
    member.post("/sync", {"items": [craving_item() for _ in range(501)][:500]})
    member.post("/sync", {"items": [craving_item() for _ in range(20)]})
    first = phone_b.get("/sync").get_json()
    assert len(first["changes"]) == 500 and first["has_more"] is True
    second = phone_b.get(f"/sync?since={first['cursor']}").get_json()
    assert len(second["changes"]) == 20 and second["has_more"] is False


@pytest.mark.parametrize("since", ["garbage", "YzE6eDp5", "YzI6LTE"])
def test_bad_cursor_is_422(member, since):
    r = member.get(f"/sync?since={since}")
    assert r.status_code == 422 and "since" in r.get_json()["error"]["fields"]


def test_sync_is_for_members(staff):
    assert staff("coach").post("/sync", {"items": []}).status_code == 403


# --- the state machine ------------------------------------------------------------------------------


_addresses = itertools.count()


class OfflineSync(RuleBasedStateMachine):
    """Two phones of one member write offline and sync over a network that loses answers and
    re-delivers and reorders batches. Whatever happens, the server holds each record once, and each
    day's log is the latest edit made on any phone."""

    app = None  # set by the test

    def __init__(self):
        super().__init__()
        self.clock = datetime.now(UTC) - timedelta(hours=2)
        self.sent_batches: list[list[dict]] = []
        self.cravings: dict[str, int] = {}  # every craving that reached the server: id -> intensity
        self.latest_edit: dict[str, tuple[datetime, float]] = {}  # date -> (edit instant, drinks)
        self.written_by: dict[str, str] = {}  # record id or date -> the phone whose write the server holds

    devices = Bundle("devices")

    @initialize(target=devices)
    def sign_up(self):
        email = f"sync-{uuid.uuid4().hex[:10]}@example.org"
        body = {"email": email, "password": PASSWORD, "timezone": "UTC", "goal": {"type": "abstain"}}
        self.client = self.app.test_client()
        n = next(_addresses)
        self.client.environ_base["REMOTE_ADDR"] = f"203.0.{n // 250}.{n % 250 + 1}"
        r = Api(self.client).post("/auth/register", body)
        assert r.status_code == 201
        self.phones = {
            "A": {
                "api": Api(self.client, r.get_json()["access_token"]),
                "outbox": [],
                "cursor": None,
                "seen": {},
            }
        }
        token_b = (
            Api(self.client)
            .post("/auth/token", {"email": email, "password": PASSWORD})
            .get_json()["access_token"]
        )
        self.phones["B"] = {"api": Api(self.client, token_b), "outbox": [], "cursor": None, "seen": {}}
        return "A"

    @rule(target=devices)
    def other_phone(self):
        return "B"

    def _tick(self) -> datetime:
        self.clock += timedelta(seconds=1)
        return self.clock

    @rule(phone=devices, intensity=st.integers(0, 10))
    def log_craving(self, phone, intensity):
        self.phones[phone]["outbox"].append(
            craving_item(intensity=intensity, recorded_at=self._tick().isoformat())
        )

    @rule(phone=devices, days_ago=st.integers(0, 3), drinks=st.sampled_from([0, 0.5, 1, 2, 4.5, 7]))
    def log_drinks(self, phone, days_ago, drinks):
        day = today_utc() - timedelta(days=days_ago)
        self.phones[phone]["outbox"].append(drink_item(day, drinks, self._tick()))

    @precondition(lambda self: hasattr(self, "phones"))
    @rule(phone=devices, lose_answer=st.booleans(), seed=st.integers(0, 2**16), duplicate=st.booleans())
    def sync_up(self, phone, lose_answer, seed, duplicate):
        device = self.phones[phone]
        if not device["outbox"]:
            return
        batch = list(device["outbox"])
        if duplicate:
            batch += batch[: len(batch) // 2 + 1]
        random.Random(seed).shuffle(batch)
        self._deliver(phone, batch)
        if not lose_answer:
            device["outbox"].clear()  # every item was answered (created, unchanged or conflict)

    @precondition(lambda self: bool(self.sent_batches))
    @rule(phone=devices, which=st.integers(0, 1000))
    def network_redelivers_an_old_batch(self, phone, which):
        self._deliver(phone, self.sent_batches[which % len(self.sent_batches)])

    def _deliver(self, phone, batch):
        r = self.phones[phone]["api"].post("/sync", {"items": batch})
        assert r.status_code == 200, r.get_json()
        self.sent_batches.append(batch)
        for item, result in zip(batch, r.get_json()["results"], strict=True):
            assert result["status"] in {"created", "updated", "unchanged", "conflict"}, result
            data = item["data"]
            if result["status"] in {"created", "updated"}:
                self.written_by[data.get("id") or data["date"]] = phone
            if item["type"] == "craving":
                assert result["status"] != "conflict"
                self.cravings[data["id"]] = data["intensity"]
            else:
                edited = datetime.fromisoformat(data["updated_at"])
                best = self.latest_edit.get(data["date"])
                if best is None or edited > best[0]:
                    self.latest_edit[data["date"]] = (edited, data["standard_drinks"])
                    assert result["status"] != "conflict", (item, result)
                elif edited < best[0]:
                    assert result["status"] in {"conflict", "unchanged"}, (item, result)

    @precondition(lambda self: hasattr(self, "phones"))
    @rule(phone=devices)
    def sync_down(self, phone):
        device = self.phones[phone]
        query = f"/sync?since={device['cursor']}" if device["cursor"] else "/sync"
        while True:
            body = device["api"].get(query).get_json()
            for change in body["changes"]:
                key = change["data"].get("id") or change["data"]["date"]
                device["seen"][key] = change
            device["cursor"] = body["cursor"]
            query = f"/sync?since={device['cursor']}"
            if not body["has_more"]:
                break

    @invariant()
    def server_equals_the_model(self):
        if not hasattr(self, "phones"):
            return
        api = self.phones["A"]["api"]
        cravings = api.get("/cravings?limit=500").get_json()["items"]
        assert sorted(c["id"] for c in cravings) == sorted(self.cravings)  # nothing lost, nothing doubled
        assert {c["id"]: c["intensity"] for c in cravings} == self.cravings
        logs = {log["date"]: log["standard_drinks"] for log in api.get("/drink-logs").get_json()["items"]}
        assert logs == {day: drinks for day, (_, drinks) in self.latest_edit.items()}

    def teardown(self):
        if not hasattr(self, "phones"):
            return
        # Once every phone has synced up and down, each knows everything the other stored.
        for name in ("A", "B"):
            self.sync_up(name, lose_answer=False, seed=0, duplicate=False)
        self.server_equals_the_model()
        for name in ("A", "B"):
            self.sync_down(name)
        for key, writer in self.written_by.items():
            other = self.phones["B" if writer == "A" else "A"]["seen"]
            assert key in other, (key, writer)
            change = other[key]["data"]
            if key in self.cravings:
                assert change["intensity"] == self.cravings[key]
            else:
                assert change["standard_drinks"] == self.latest_edit[key][1]


def test_offline_sync_state_machine(app):
    OfflineSync.app = app
    run = settings(
        max_examples=20,
        stateful_step_count=25,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    OfflineSync.TestCase.settings = run
    OfflineSync.TestCase().runTest()


def test_checkins_sync_and_staff_plan_edits_reach_the_phone(app, member, staff):
    from companion import db
    from companion.accounts import services as accounts

    coach = staff("coach")
    with app.app_context(), db.unit_of_work():
        accounts.assign_coach(member.body["member"]["email"], coach.email, now=db.utcnow())
    start = member.get("/sync").get_json()["cursor"]
    plan = coach.post(
        f"/coach/members/{member.body['member']['id']}/medication-plans",
        {"medication": "naltrexone", "dose_mg": 50, "times": ["00:00"]},
    ).get_json()
    changes = member.get(f"/sync?since={start}").get_json()
    assert [(c["type"], c["data"]["id"]) for c in changes["changes"]] == [("medication_plan", plan["id"])]
    assert changes["changes"][0]["data"]["dose_mg"] == 50
    slot = datetime.combine(today_utc(), datetime.min.time(), tzinfo=UTC).isoformat()
    item = {
        "type": "medication_checkin",
        "data": {
            "id": str(uuid.uuid4()),
            "plan_id": plan["id"],
            "scheduled_for": slot,
            "status": "taken",
            "taken_at": slot,
        },
    }
    other_slot = {**item, "data": {**item["data"], "id": str(uuid.uuid4())}}
    results = member.post("/sync", {"items": [item, item, other_slot]}).get_json()["results"]
    assert [r["status"] for r in results] == ["created", "unchanged", "conflict"]
    assert results[2]["errors"]
    assert len(member.get("/medication-checkins").get_json()["items"]) == 1


def test_a_nul_spoils_only_its_own_item(member):
    items = [craving_item(note="fine"), craving_item(note="bad\x00note")]
    results = member.post("/sync", {"items": items}).get_json()["results"]
    assert [r["status"] for r in results] == ["created", "invalid"]
    assert "note" in results[1]["errors"]


def test_a_batch_of_new_records_is_a_few_statements_and_each_result_stands(app, member):
    """The set path (tracking/sync.py): new records of each type in one statement; a key repeated in
    the batch, a replay and a stale edit still answer as they would alone, in the batch's order."""
    from tests.api.test_round_trips import _statements

    day = today_utc()
    stored = craving_item()
    assert member.post("/sync", {"items": [stored, drink_item(day, 1)]}).status_code == 200
    reading = {
        "type": "bac_reading",
        "data": {"id": str(uuid.uuid4()), "measured_at": datetime.now(UTC).isoformat(), "bac_g_dl": 0.01},
    }
    new_cravings = [craving_item(intensity=n % 5) for n in range(60)]  # below the support threshold
    repeated = craving_item()
    days = [drink_item(day - timedelta(days=k), k % 4) for k in range(1, 31)]
    items = [
        *new_cravings,
        stored,  # a replay
        repeated,
        {"type": "craving", "data": {**repeated["data"], "intensity": 9}},  # the same id again, changed
        drink_item(day, 3, updated_at=datetime.now(UTC) - timedelta(days=2)),  # older than the stored log
        *days,
        drink_item(day - timedelta(days=1), 0),  # a day already in this batch, changed
        reading,
    ]
    with _statements(app) as seen:
        r = member.post("/sync", {"items": items})
    assert r.status_code == 200, r.get_json()
    results = r.get_json()["results"]
    statuses = [x["status"] for x in results]
    assert statuses[:60] == ["created"] * 60
    assert statuses[60:64] == ["unchanged", "created", "conflict", "conflict"]
    assert statuses[64:94] == ["created"] * 30
    assert statuses[94:] == ["updated", "created"]
    assert [x["index"] for x in results] == list(range(len(items)))
    assert (
        results[62]["current"]["intensity"] == 5
        and results[94]["date"] == (day - timedelta(days=1)).isoformat()
    )
    # 93 new records in three inserts; the four others item by item (a savepoint each, whose service
    # tries its insert again and then reads the stored record).
    inserts = [s for s in seen if s.startswith("WITH")]
    assert len(inserts) == 3 + 4 and "pg_advisory_xact_lock" in inserts[0]
    assert len([s for s in seen if s.startswith("SAVEPOINT")]) == 4
    assert not any("pg_advisory_xact_lock" in s for s in inserts[1:3])
    assert len(seen) < 40
    listed = member.get("/drink-logs", query_string={"from": (day - timedelta(days=30)).isoformat()})
    assert len(listed.get_json()["items"]) == 31
    assert [x["status"] for x in member.post("/sync", {"items": items}).get_json()["results"]][60:64] == [
        "unchanged",
        "unchanged",
        "conflict",
        "conflict",
    ]
