"""API.md "Tracking": drink logs, cravings and breath readings, every status code."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine

from tests.conftest import Api

# A fixed clock: 2026-11-20 15:00 in New York.
NOW = datetime(2026, 11, 20, 20, 0, tzinfo=UTC)
TODAY = date(2026, 11, 20)


@pytest.fixture
def clock():
    with time_machine.travel(NOW, tick=True) as traveller:
        yield traveller


@pytest.fixture
def member(clock, register):
    return register(timezone="America/New_York", sex="female", country="US")


# --- drink logs -------------------------------------------------------------------------------------


def test_put_creates_then_replaces(member):
    r = member.put(f"/drink-logs/{TODAY}", {"standard_drinks": 2})
    assert r.status_code == 201, r.get_json()
    log = r.get_json()
    assert log["date"] == str(TODAY)
    assert log["standard_drinks"] == 2 and log["grams_ethanol"] == 28
    assert log["heavy"] is False and log["source"] == "realtime" and log["drinks"] is None
    again = member.put(f"/drink-logs/{TODAY}", {"standard_drinks": 2})
    assert again.status_code == 200 and again.get_json() == log
    changed = member.put(f"/drink-logs/{TODAY}", {"standard_drinks": 4, "note": "party"})
    assert changed.status_code == 200
    assert changed.get_json()["heavy"] is True and changed.get_json()["note"] == "party"
    assert member.get(f"/drink-logs/{TODAY}").get_json()["grams_ethanol"] == 56


def test_drinks_become_grams(member):
    body = {
        "drinks": [
            {"kind": "beer", "volume_ml": 355, "abv_percent": 5, "count": 2},
            {"kind": "wine", "volume_ml": 150, "abv_percent": 12.5},
        ]
    }
    log = member.put(f"/drink-logs/{TODAY}", body).get_json()
    # 355 * 0.05 * 0.789 * 2 = 28.0095; 150 * 0.125 * 0.789 = 14.79375; total 42.80325 g -> 42.80
    assert log["grams_ethanol"] == 42.8
    assert log["standard_drinks"] == 3.1  # 42.80 / 14
    assert log["drinks"][1] == {"kind": "wine", "volume_ml": 150, "abv_percent": 12.5, "count": 1}


@pytest.mark.parametrize(
    ("sex", "drinks", "heavy"),
    [
        ("female", 3.9, False),
        ("female", 4, True),
        ("unspecified", 4, True),
        ("male", 4.9, False),
        ("male", 5, True),
    ],
)
def test_heavy_day_by_sex(clock, register, sex, drinks, heavy):
    member = register(sex=sex)
    assert member.put(f"/drink-logs/{TODAY}", {"standard_drinks": drinks}).get_json()["heavy"] is heavy


def test_country_sets_the_standard_drink(clock, register):
    uk = register(country="GB", timezone="Europe/London")
    log = uk.put(f"/drink-logs/{TODAY}", {"standard_drinks": 3}).get_json()
    assert log["grams_ethanol"] == 24 and log["standard_drinks"] == 3


def test_recall_when_entered_after_the_next_day(member):
    assert (
        member.put(f"/drink-logs/{TODAY - timedelta(days=1)}", {"standard_drinks": 0}).get_json()["source"]
        == "realtime"
    )
    assert (
        member.put(f"/drink-logs/{TODAY - timedelta(days=2)}", {"standard_drinks": 0}).get_json()["source"]
        == "recall"
    )


@pytest.mark.parametrize("day", [TODAY + timedelta(days=1), TODAY - timedelta(days=61)])
def test_dates_outside_the_window_are_422(member, day):
    r = member.put(f"/drink-logs/{day}", {"standard_drinks": 1})
    assert r.status_code == 422 and "date" in r.get_json()["error"]["fields"]


def test_sixty_days_back_is_allowed(member):
    assert member.put(f"/drink-logs/{TODAY - timedelta(days=60)}", {"standard_drinks": 1}).status_code == 201


def test_local_date_not_utc_date(clock, register):
    # 2026-11-20 20:00 UTC is already 2026-11-21 09:00 in Auckland.
    kiwi = register(timezone="Pacific/Auckland")
    assert kiwi.put("/drink-logs/2026-11-21", {"standard_drinks": 0}).status_code == 201
    assert kiwi.put("/drink-logs/2026-11-22", {"standard_drinks": 0}).status_code == 422


def test_stale_update_is_409_with_the_stored_log(member):
    newer = "2026-11-20T14:00:00-05:00"
    member.put(f"/drink-logs/{TODAY}", {"standard_drinks": 3, "updated_at": newer})
    r = member.put(f"/drink-logs/{TODAY}", {"standard_drinks": 1, "updated_at": "2026-11-20T13:00:00-05:00"})
    assert r.status_code == 409
    error = r.get_json()["error"]
    assert error["code"] == "conflict" and error["current"]["standard_drinks"] == 3
    assert error["current"]["updated_at"] == "2026-11-20T19:00:00Z"
    assert (
        member.put(
            f"/drink-logs/{TODAY}", {"standard_drinks": 1, "updated_at": "2026-11-20T14:30:00-05:00"}
        ).status_code
        == 200
    )


def test_an_edit_follows_the_same_rules_in_its_one_statement(member):
    """Edits are written by the statement that met the stored day (tracking.rowset.upsert_one); what
    it leaves alone goes through the stored-log path. Each rule of that path, end to end."""
    day = f"/drink-logs/{TODAY - timedelta(days=1)}"
    first = member.put(day, {"standard_drinks": 1, "updated_at": "2026-11-20T08:00:00Z"}).get_json()
    # The same amounts again, without a newer time: unchanged, nothing moves.
    again = member.put(day, {"standard_drinks": 1, "updated_at": "2026-11-20T08:00:00Z"})
    assert again.status_code == 200 and again.get_json() == first
    # A newer edit of the same amounts still moves updated_at (or an older edit would later win).
    newer = member.put(day, {"standard_drinks": 1, "updated_at": "2026-11-20T09:00:00Z"})
    assert newer.status_code == 200 and newer.get_json()["updated_at"] == "2026-11-20T09:00:00Z"
    # A changed log keeps its provenance and re-derives heavy from the member.
    heavier = member.put(day, {"standard_drinks": 5, "note": "wedding"}).get_json()
    assert heavier["heavy"] is True and heavier["note"] == "wedding" and heavier["grams_ethanol"] == 70
    assert heavier["created_at"] == first["created_at"] and heavier["source"] == first["source"]
    assert heavier["updated_at"] > "2026-11-20T09:00:00Z"  # no time given: the server's
    # Older than what is stored: 409, nothing written.
    stale = member.put(day, {"standard_drinks": 0, "updated_at": "2026-11-20T09:30:00Z"})
    assert stale.status_code == 409 and stale.get_json()["error"]["current"]["standard_drinks"] == 5
    assert member.get(day).get_json() == heavier
    # Deleted, then logged again: a new log (201), with a new creation time.
    assert member.delete(day).status_code == 204
    revived = member.put(day, {"drinks": [{"kind": "wine", "volume_ml": 150, "abv_percent": 12}]})
    assert revived.status_code == 201 and revived.get_json()["created_at"] > first["created_at"]
    assert revived.get_json()["drinks"][0]["kind"] == "wine"


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({}, {"standard_drinks", "drinks"}),
        ({"standard_drinks": 1, "drinks": []}, {"standard_drinks", "drinks"}),
        ({"standard_drinks": 50.1}, {"standard_drinks"}),
        ({"standard_drinks": -1}, {"standard_drinks"}),
        ({"standard_drinks": 1.25}, {"standard_drinks"}),
        ({"standard_drinks": "two"}, {"standard_drinks"}),
        ({"drinks": [{"kind": "cider", "volume_ml": 300, "abv_percent": 5}]}, {"drinks"}),
        ({"drinks": [{"kind": "beer", "volume_ml": 0, "abv_percent": 5}]}, {"drinks"}),
        ({"drinks": [{"kind": "beer", "volume_ml": 2001, "abv_percent": 5}]}, {"drinks"}),
        ({"drinks": [{"kind": "beer", "volume_ml": 330, "abv_percent": 101}]}, {"drinks"}),
        ({"drinks": [{"kind": "beer", "volume_ml": 330, "abv_percent": 5, "count": 0}]}, {"drinks"}),
        ({"drinks": [{"kind": "beer", "volume_ml": 330.5, "abv_percent": 5}]}, {"drinks"}),
        ({"standard_drinks": 1, "note": "x" * 1001}, {"note"}),
        ({"standard_drinks": 1, "updated_at": "2026-11-20T10:00:00"}, {"updated_at"}),
        ({"standard_drinks": 1, "heavy": True}, {"heavy"}),
    ],
)
def test_drink_log_validation_names_fields(member, body, fields):
    r = member.put(f"/drink-logs/{TODAY}", body)
    assert r.status_code == 422, r.get_json()
    assert fields <= set(r.get_json()["error"]["fields"])


@pytest.mark.parametrize("day", ["2026-13-01", "yesterday", "2026-1-5", "20261120"])
def test_bad_date_in_path_is_422(member, day):
    r = member.put(f"/drink-logs/{day}", {"standard_drinks": 1})
    assert r.status_code == 422 and "date" in r.get_json()["error"]["fields"]


def test_delete_then_missing_then_logged_again(member):
    member.put(f"/drink-logs/{TODAY}", {"standard_drinks": 1})
    assert member.delete(f"/drink-logs/{TODAY}").status_code == 204
    assert member.get(f"/drink-logs/{TODAY}").status_code == 404
    assert member.delete(f"/drink-logs/{TODAY}").status_code == 404
    assert member.put(f"/drink-logs/{TODAY}", {"standard_drinks": 0}).status_code == 201


def test_list_by_range_and_pages(member):
    for n in range(7):
        member.put(f"/drink-logs/{TODAY - timedelta(days=n)}", {"standard_drinks": n})
    r = member.get(f"/drink-logs?from={TODAY - timedelta(days=5)}&to={TODAY - timedelta(days=1)}&limit=2")
    body = r.get_json()
    assert [i["date"] for i in body["items"]] == [
        str(TODAY - timedelta(days=5)),
        str(TODAY - timedelta(days=4)),
    ]
    seen = [i["date"] for i in body["items"]]
    while body["next_cursor"]:
        body = member.get(
            f"/drink-logs?from={TODAY - timedelta(days=5)}&to={TODAY - timedelta(days=1)}"
            f"&limit=2&cursor={body['next_cursor']}"
        ).get_json()
        seen += [i["date"] for i in body["items"]]
    assert seen == [str(TODAY - timedelta(days=n)) for n in range(5, 0, -1)]
    assert len(member.get("/drink-logs").get_json()["items"]) == 7  # default: the last 30 days


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("from=2026-11-10&to=2026-11-01", "from"),
        ("from=2025-01-01&to=2026-11-01", "to"),
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("from=nope", "from"),
        ("cursor=%%%", "cursor"),
        ("surprise=1", "surprise"),
    ],
)
def test_list_arguments_are_validated(member, query, field):
    r = member.get(f"/drink-logs?{query}")
    assert r.status_code == 422, r.get_json()
    assert field in r.get_json()["error"]["fields"]


def test_a_cursor_is_signed_and_bound_to_its_filters(member, register):
    """issue 25: a cursor is the server's signed word for one list read with one set of filters."""
    for n in range(4):
        member.put(f"/drink-logs/{TODAY - timedelta(days=n)}", {"standard_drinks": n})
    window = f"from={TODAY - timedelta(days=3)}&to={TODAY}"
    cursor = member.get(f"/drink-logs?{window}&limit=2").get_json()["next_cursor"]
    # the page size is no filter: a client may change it between pages
    assert member.get(f"/drink-logs?{window}&limit=3&cursor={cursor}").status_code == 200

    def refused(path: str, api: Api = member) -> str:
        r = api.get(path)
        assert r.status_code == 422, r.get_json()
        [message] = r.get_json()["error"]["fields"]["cursor"]
        return message

    # The payload's first character, not the signature's last: base64's last character may carry only
    # padding bits, so changing it can leave the signature's bytes as they were (a flaky test).
    tampered = ("A" if cursor[0] != "A" else "B") + cursor[1:]
    assert refused(f"/drink-logs?{window}&cursor={tampered}") == "Not a cursor this server issued."
    other_window = f"from={TODAY - timedelta(days=2)}&to={TODAY}"
    assert "other filters" in refused(f"/drink-logs?{other_window}&cursor={cursor}")
    assert "other filters" in refused(f"/cravings?{window}&cursor={cursor}")  # another list
    assert "other filters" in refused(f"/drink-logs?{window}&cursor={cursor}", register())  # another member


def test_other_members_logs_are_invisible(clock, member, register):
    member.put(f"/drink-logs/{TODAY}", {"standard_drinks": 1})
    other = register()
    assert other.get(f"/drink-logs/{TODAY}").status_code == 404
    assert other.get("/drink-logs").get_json()["items"] == []
    assert other.delete(f"/drink-logs/{TODAY}").status_code == 404


def test_tracking_needs_a_member(staff, api):
    assert api.get("/drink-logs").status_code == 401
    assert staff("coach").put(f"/drink-logs/{TODAY}", {"standard_drinks": 1}).status_code == 403


def test_concurrent_first_logs_store_one_row(app, member):
    barrier = threading.Barrier(4)
    statuses = []

    def put():
        client = app.test_client()
        barrier.wait()
        statuses.append(
            Api(client, member.token).put(f"/drink-logs/{TODAY}", {"standard_drinks": 2}).status_code
        )

    threads = [threading.Thread(target=put) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == [200, 200, 200, 201]
    assert len(member.get("/drink-logs").get_json()["items"]) == 1


# --- cravings and breath readings -------------------------------------------------------------------


def craving(**overrides):
    body = {
        "id": str(uuid.uuid4()),
        "recorded_at": "2026-11-20T14:30:00-05:00",
        "intensity": 7,
        "triggers": ["stress", "friends"],
        "note": "after work",
    }
    body.update(overrides)
    return body


def test_craving_is_idempotent_by_id(member):
    body = craving()
    first = member.post("/cravings", body)
    assert first.status_code == 201
    stored = first.get_json()
    assert stored["date"] == str(TODAY) and stored["recorded_at"] == "2026-11-20T19:30:00Z"
    again = member.post("/cravings", body)
    assert again.status_code == 200 and again.get_json() == stored
    # The same instant written with another offset is the same body.
    assert member.post("/cravings", {**body, "recorded_at": "2026-11-20T19:30:00+00:00"}).status_code == 200
    conflict = member.post("/cravings", {**body, "intensity": 3})
    assert conflict.status_code == 409 and conflict.get_json()["error"]["current"]["intensity"] == 7
    assert len(member.get("/cravings").get_json()["items"]) == 1


def test_the_same_id_from_another_member_is_their_own(member, register):
    body = craving()
    member.post("/cravings", body)
    other = register()
    assert other.post("/cravings", {**body, "intensity": 1}).status_code == 201


def test_craving_local_date_in_auckland(clock, register):
    kiwi = register(timezone="Pacific/Auckland")
    # 11:30 UTC on the 20th is 00:30 on the 21st in Auckland (NZDT, +13).
    r = kiwi.post("/cravings", craving(recorded_at="2026-11-20T11:30:00Z"))
    assert r.get_json()["date"] == "2026-11-21"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"intensity": 11}, "intensity"),
        ({"intensity": -1}, "intensity"),
        ({"intensity": 7.5}, "intensity"),
        ({"intensity": "7"}, "intensity"),
        ({"id": "not-a-uuid"}, "id"),
        ({"recorded_at": "2026-11-20T14:30:00"}, "recorded_at"),
        ({"recorded_at": "2026-11-21T14:30:00-05:00"}, "recorded_at"),
        ({"recorded_at": "2026-09-01T14:30:00-05:00"}, "recorded_at"),
        ({"triggers": ["x"] * 11}, "triggers"),
        ({"triggers": ["x" * 41]}, "triggers"),
        ({"note": "x" * 1001}, "note"),
        ({"date": "2026-11-20"}, "date"),
    ],
)
def test_craving_validation(member, change, field):
    r = member.post("/cravings", craving(**change))
    assert r.status_code == 422, r.get_json()
    assert field in r.get_json()["error"]["fields"]


def test_bac_reading(member):
    body = {
        "id": str(uuid.uuid4()),
        "measured_at": "2026-11-20T08:00:00-05:00",
        "bac_g_dl": 0.045,
        "device": {"model": "BACtrack C8", "serial": "A1"},
    }
    first = member.post("/bac-readings", body)
    assert first.status_code == 201
    assert first.get_json()["bac_g_dl"] == 0.045 and first.get_json()["date"] == str(TODAY)
    assert member.post("/bac-readings", body).status_code == 200
    assert member.post("/bac-readings", {**body, "bac_g_dl": 0.05}).status_code == 409
    assert len(member.get("/bac-readings").get_json()["items"]) == 1


@pytest.mark.parametrize(
    ("value", "ok"), [(0, True), (0.5, True), (0.501, False), (-0.001, False), (0.0455, False)]
)
def test_bac_range(member, value, ok):
    r = member.post(
        "/bac-readings", {"id": str(uuid.uuid4()), "measured_at": "2026-11-20T08:00:00Z", "bac_g_dl": value}
    )
    assert r.status_code == (201 if ok else 422), r.get_json()


def test_export_includes_tracking(member):
    member.put(f"/drink-logs/{TODAY}", {"standard_drinks": 1})
    member.post("/cravings", craving())
    export = member.get("/me/export").get_json()
    assert len(export["tracking"]["drink_logs"]) == 1 and len(export["tracking"]["cravings"]) == 1


def test_erasure_removes_tracking(app, member):
    from sqlalchemy import text

    from companion import db
    from tests.conftest import PASSWORD

    member.put(f"/drink-logs/{TODAY}", {"standard_drinks": 1})
    member.post("/cravings", craving())
    assert member.delete("/me", {"password": PASSWORD}).status_code == 202
    with app.app_context():
        for table in ("drink_logs", "cravings", "bac_readings"):
            assert db.session.execute(text(f"SELECT count(*) FROM {table}")).scalar() == 0
