"""Member writes read nothing they do not need (docs/performance/member-writes.md): the member comes
with the access token, and a new record comes back from its INSERT."""

from __future__ import annotations

import uuid
from contextlib import contextmanager

import pytest
from sqlalchemy import event

from companion import db


@pytest.fixture(autouse=True)
def _full_path(app, monkeypatch):
    """These count the full path's statements; the write lane's are in tests/api/test_write_lane.py."""
    monkeypatch.setitem(app.config, "COMPANION_WRITE_LANE", False)


@contextmanager
def _statements(app):
    seen: list[str] = []

    def record(conn, cursor, statement, params, context, executemany):
        seen.append(" ".join(statement.split()))

    engine = app.extensions["engine"]
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def _reads(statements: list[str], table: str) -> list[str]:
    return [s for s in statements if s.startswith("SELECT") and f"FROM {table}" in s]


def test_new_records_are_not_read_back(app, register):
    member = register()
    today = member.get("/me/summary").get_json()["as_of"]
    with _statements(app) as seen:
        logged = member.put(f"/drink-logs/{today}", {"standard_drinks": "2"})
        craving = member.post(
            "/cravings",
            {"id": str(uuid.uuid4()), "recorded_at": db.utcnow().isoformat(), "intensity": 4},
        )
    assert logged.status_code == 201 and logged.get_json()["grams_ethanol"] == 28
    assert craving.status_code == 201 and craving.get_json()["intensity"] == 4
    token_reads = _reads(seen, "auth_tokens")
    assert len(token_reads) == 2 and all("JOIN members" in s for s in token_reads)
    assert not _reads(seen, "members") and not _reads(seen, "drink_logs") and not _reads(seen, "cravings")

    # An edit replaces the stored day in the statement that met it, and answers what that returned.
    with _statements(app) as seen:
        edited = member.put(f"/drink-logs/{today}", {"standard_drinks": "3"})
    assert edited.status_code == 200 and edited.get_json()["grams_ethanol"] == 42
    assert edited.get_json()["created_at"] == logged.get_json()["created_at"]  # the first log's provenance
    assert not _reads(seen, "drink_logs")
    (write,) = _writes(seen)
    assert "ON CONFLICT (member_id, date) DO UPDATE" in write and "INSERT INTO safety_watch" in write

    # A replay changes nothing, so the statement keeps the row: only then is the stored day read.
    with _statements(app) as seen:
        replayed = member.put(f"/drink-logs/{today}", {"standard_drinks": "3"})
    assert replayed.status_code == 200 and replayed.get_json() == edited.get_json()
    assert len(_reads(seen, "drink_logs")) == 1


def _writes(statements: list[str]) -> list[str]:
    """Statements after the token's read (one per request)."""
    return [s for s in statements if "FROM auth_tokens" not in s]


def test_a_new_record_is_one_statement_with_its_change_lock_and_safety_request(app, register):
    member = register()
    today = member.get("/me/summary").get_json()["as_of"]
    with _statements(app) as seen:
        logged = member.put(f"/drink-logs/{today}", {"standard_drinks": "2"})
    assert logged.status_code == 201
    (write,) = _writes(seen)
    assert "pg_advisory_xact_lock" in write and "INSERT INTO drink_logs" in write
    assert "INSERT INTO safety_watch" in write
    with _statements(app) as seen:
        reading = member.post(
            "/bac-readings",
            {"id": str(uuid.uuid4()), "measured_at": db.utcnow().isoformat(), "bac_g_dl": "0.020"},
        )
    assert reading.status_code == 201 and reading.get_json()["bac_g_dl"] == 0.02
    assert len(_writes(seen)) == 1


def test_the_scan_message_goes_only_when_no_scan_is_pending(app, register, monkeypatch):
    """companion/safety/watch.py: a write whose member is already due (since < PENDING_SCAN_SECONDS)
    publishes no second message; a row due for longer, or scanned since (next check ahead), does."""
    from datetime import timedelta

    from sqlalchemy import text

    from companion import jobs
    from companion.safety.watch import PENDING_SCAN_SECONDS

    sent: list[dict] = []
    monkeypatch.setattr(jobs, "send_now", lambda task, **ids: sent.append({"task": task, **ids}) or True)
    member = register()
    member_id = member.body["member"]["id"]

    def craving() -> int:
        body = {"id": str(uuid.uuid4()), "recorded_at": db.utcnow().isoformat(), "intensity": 2}
        return member.post("/cravings", body).status_code

    def watch_row(at=None):
        with app.app_context(), db.unit_of_work() as s:
            if at is not None:
                s.execute(
                    text("UPDATE safety_watch SET next_check_at = :at WHERE member_id = :m"),
                    {"at": at, "m": member_id},
                )
            return s.execute(
                text("SELECT next_check_at FROM safety_watch WHERE member_id = :m"), {"m": member_id}
            ).scalar_one()

    scans = lambda: [m for m in sent if m["task"] == jobs.SCAN_MEMBER]  # noqa: E731
    assert craving() == 201 and scans() == [{"task": jobs.SCAN_MEMBER, "member_id": member_id}]
    first_due = watch_row()
    assert craving() == 201 and len(scans()) == 1  # a scan is pending: no second message
    assert watch_row() == first_due
    long_ago = db.utcnow() - timedelta(seconds=PENDING_SCAN_SECONDS + 30)
    watch_row(long_ago)  # due for longer: its message may be lost
    assert craving() == 201 and len(scans()) == 2
    assert watch_row() > long_ago + timedelta(seconds=PENDING_SCAN_SECONDS)
    watch_row(db.utcnow() + timedelta(hours=3))  # scanned since: next check ahead
    assert craving() == 201 and len(scans()) == 3


def test_an_answer_built_from_what_was_written_is_what_a_replay_reads(register):
    """The 201 is built without reading the row back: its instants are UTC, as the stored row's."""
    from datetime import timedelta, timezone

    member = register()
    at = (db.utcnow() - timedelta(hours=1)).astimezone(timezone(timedelta(hours=2))).isoformat()
    for path, body in (
        ("/cravings", {"id": str(uuid.uuid4()), "recorded_at": at, "intensity": 3, "triggers": ["stress"]}),
        ("/bac-readings", {"id": str(uuid.uuid4()), "measured_at": at, "bac_g_dl": "0.05"}),
    ):
        created = member.post(path, body)
        replayed = member.post(path, body)
        assert (created.status_code, replayed.status_code) == (201, 200)
        assert created.get_json() == replayed.get_json()


def test_the_user_and_member_read_with_the_token_behave_as_loaded(app, register):
    """`attach_as_loaded`: a write flushes nothing for the user or member it did not change; a profile
    change is written once and read back."""
    member = register()
    today = member.get("/me/summary").get_json()["as_of"]
    with _statements(app) as seen:
        assert member.put(f"/drink-logs/{today}", {"standard_drinks": "1"}).status_code == 201
    assert not [s for s in seen if s.startswith(("UPDATE users", "UPDATE members"))]
    with _statements(app) as seen:
        changed = member.patch("/me", {"reminders": {"log_time": "21:30"}})
    assert changed.status_code == 200, changed.get_json()
    assert len([s for s in seen if s.startswith("UPDATE members")]) == 1
    assert not [s for s in seen if s.startswith("UPDATE users")]
    assert member.get("/me").get_json()["reminders"]["log_time"] == "21:30"
