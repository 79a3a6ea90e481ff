"""One clinical scenario through a real Celery worker process: the entries written through the API send
`safety.scan_member` after commit, the worker (started as production starts it) consumes it from
Redis and the flag appears; the same entries sent again raise nothing more."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from tests.domain.test_safety import NY, Member
from tests.domain.test_safety_scenarios import logs_daily, on
from tests.safety import helpers

WITHIN = 60


@pytest.fixture
def worker(database_url, redis_url, tmp_path):
    """`celery -A workers.celery_app worker` on the test database and Redis, on the real clock."""
    log = tmp_path / "worker.log"
    with helpers.worker_process(database_url, redis_url, log):
        yield log


def test_an_urgent_scenario_through_a_real_worker(app, client, redis, worker):
    with helpers.travel(datetime(2026, 1, 1, 9, tzinfo=UTC)):
        _, coach_email = helpers.new_staff(app, "coach")
        _, admin_email = helpers.new_staff(app, "admin")
    # The table's "drinks logged on disulfiram", built to end now: the worker's clock is the real one.
    local_now = datetime.now(UTC).astimezone(ZoneInfo(NY))
    m = Member(today=local_now.date(), at=local_now.strftime("%H:%M"))
    on(m, "disulfiram", "08:00")
    logs_daily(m, days=range(1, 30))
    m.drink(0, 28)
    history = helpers.trimmed(m.build())
    replayed = helpers.replay(app, client, history, coach_email=coach_email, admin_email=admin_email)
    deadline = time.monotonic() + WITHIN
    while time.monotonic() < deadline and not helpers.flags_of(app, replayed.member_id):
        time.sleep(0.5)
    flags = helpers.flags_of(app, replayed.member_id)
    assert [f.rule for f in flags] == ["disulfiram_with_drinking"], worker.read_text()[-4000:]
    assert len(helpers.alerts_of(app, replayed.member_id)) == 1

    # The same entries again: "unchanged", no scan asked for, nothing new; a sweep changes nothing.
    _, last_batch = replayed.batches[-1]
    results = helpers.send_batch(app, client, replayed.member_id, last_batch, at=datetime.now(UTC))
    assert {r["status"] for r in results} == {"unchanged"}
    from workers.tasks import safety as tasks

    helpers.forget_debounce(redis)
    tasks.scan_member(str(replayed.member_id))
    time.sleep(2)
    assert [f.id for f in helpers.flags_of(app, replayed.member_id)] == [f.id for f in flags]
    assert len(helpers.alerts_of(app, replayed.member_id)) == 1
