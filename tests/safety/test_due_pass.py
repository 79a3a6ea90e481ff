"""The every-minute pass over due `safety_watch` rows (issue 26): the row a write marks due in its own
transaction, not the message, is the guarantee. Messages lost here on purpose (the queue is emptied):
the pass scans the member once the grace is over, skips rows another transaction holds, and one
member whose scan fails never holds back the others."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, text

from companion import db
from companion.domain import safety as rules
from companion.safety import services
from companion.safety.models import SafetyWatch
from tests.safety import helpers
from workers.tasks import safety as tasks

NOW = datetime(2026, 11, 20, 18, 0, tzinfo=UTC)  # 13:00 in New York
GRACE = timedelta(seconds=30)


@pytest.fixture
def members(app, client, redis):
    """Three members on disulfiram, each with a drink logged now whose scan message is lost."""
    with helpers.travel(NOW - timedelta(days=3)):
        _, coach_email = helpers.new_staff(app, "coach")
        ids = []
        for _ in range(3):
            member_id, email = helpers.new_member(app, client, timezone="America/New_York")
            helpers.assign(app, email, coach_email)
            helpers.create_plan(
                app, coach_email, member_id, {"medication": "disulfiram", "dose_mg": 250, "times": ["08:00"]},
                now=NOW - timedelta(days=3),
            )  # fmt: skip
            ids.append(member_id)
        with app.app_context(), db.unit_of_work():
            services.scan_members(ids, now=db.utcnow())  # settled: nothing due before the drinks
    with helpers.travel(NOW):
        for member_id in ids:
            r = helpers.api_for(app, client, member_id).put(
                "/drink-logs/2026-11-20", {"standard_drinks": "2"}
            )
            assert r.status_code == 201
    redis.flushdb()  # every scan message lost
    return ids


def due_rows(app) -> dict[uuid.UUID, datetime | None]:
    with app.app_context():
        rows = dict(db.session.execute(select(SafetyWatch.member_id, SafetyWatch.next_check_at)).all())
        db.session.remove()
        return rows


def run_pass(at: datetime) -> int:
    with helpers.travel(at):
        return tasks.scan_due()


def flagged(app, ids) -> set[uuid.UUID]:
    return {f.member_id for f in helpers.flags_of(app) if f.rule == "disulfiram_with_drinking"} & set(ids)


def test_a_lost_message_is_scanned_by_the_pass_once_the_grace_is_over(app, members):
    assert all(due_rows(app)[m] <= NOW for m in members)
    assert run_pass(NOW + GRACE - timedelta(seconds=1)) == 0  # still the message's turn
    assert flagged(app, members) == set()
    assert run_pass(NOW + GRACE) == 3
    assert flagged(app, members) == set(members)
    # Scanned: each row now waits for its next deadline (or nothing), so the next pass has no work.
    assert all(at is None or at > NOW + GRACE for at in due_rows(app).values())
    assert run_pass(NOW + 2 * GRACE) == 0


def test_the_pass_skips_a_row_another_transaction_holds(app, members):
    held, *others = members
    engine = app.extensions["engine"]
    with engine.connect() as conn, conn.begin():
        conn.execute(text("SELECT 1 FROM safety_watch WHERE member_id = :m FOR UPDATE"), {"m": held})
        assert run_pass(NOW + GRACE) == 2  # did not wait for the writer
    assert flagged(app, members) == set(others)
    assert run_pass(NOW + GRACE + timedelta(minutes=1)) == 1
    assert flagged(app, members) == set(members)


def test_a_member_whose_scan_fails_never_holds_back_the_others(app, members, monkeypatch, caplog):
    """The rules fail on one member's records (a bug): the batch is redone member by member."""
    poisoned = members[1]
    load, evaluate = services.load_histories, rules.evaluate
    loading_poisoned = [False]

    def load_and_note(member_ids, **kw):
        loaded = load(member_ids, **kw)
        loading_poisoned[0] = poisoned in loaded
        return loaded

    def evaluate_or_fail(history, settings=rules.DEFAULT):
        if loading_poisoned[0]:
            raise RuntimeError("a rule failed on this member's records")
        return evaluate(history, settings)

    with monkeypatch.context() as patch:
        patch.setattr(services, "load_histories", load_and_note)
        patch.setattr(services.rules, "evaluate", evaluate_or_fail)
        assert run_pass(NOW + GRACE) == 2
        assert flagged(app, members) == {m for m in members if m != poisoned}
        assert "safety scan failed; retried later" in caplog.text
        # The failing member waits FAILED_SCAN_RETRY: the pass stays quick for everyone else.
        assert due_rows(app)[poisoned] == NOW + GRACE + tasks.FAILED_SCAN_RETRY
        assert run_pass(NOW + GRACE + timedelta(minutes=1)) == 0
    assert run_pass(NOW + 2 * GRACE + tasks.FAILED_SCAN_RETRY) == 1
    assert flagged(app, members) == set(members)


def test_a_flag_opened_for_a_due_member_measures_its_latency_from_the_write(app, members):
    """The flag latency (a Prometheus histogram): from when the write made the row due to the flag."""
    with helpers.travel(NOW + GRACE + timedelta(seconds=12)), app.app_context(), db.unit_of_work():
        result = services.scan_due(now=db.utcnow(), grace=GRACE)
    assert sorted(result.latencies) == [("disulfiram_with_drinking", "urgent", 42.0)] * 3
    assert result.opened_rules == [("disulfiram_with_drinking", "urgent")] * 3
