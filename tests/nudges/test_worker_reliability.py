"""Nothing lost, nothing doubled, with a real Celery worker and beat on a private redis-server.

1. Redis down: coach messages are still written (201) and reminders wait as rows; once Redis is back
   (empty: it lost everything), beat's dispatcher hands them out and each reaches the gateway once.
2. A worker SIGKILLed while its pushes are on the wire: the next worker delivers every due nudge,
   and the gateway counts exactly one request per nudge (a push recorded as leaving is never resent).
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from companion import db, jobs
from companion.accounts import services as accounts
from companion.nudges.models import Nudge
from tests import fake_push
from tests.nudges.conftest import add_device, make_member, nudges_of
from tests.nudges.processes import (
    PrivateRedis,
    Processes,
    client_for,
    wait_until_worker_runs_tasks,
    worker_env,
)

DELIVERED_WITHIN = 40


@pytest.fixture
def private_redis(tmp_path: Path):
    server = PrivateRedis(tmp_path / "redis")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def processes(tmp_path: Path):
    made: list[Processes] = []

    def make(env: dict[str, str]) -> Processes:
        made.append(Processes(tmp_path, env))
        return made[-1]

    yield make
    for group in made:
        group.stop_all()


@pytest.fixture
def fast_gateway():
    fake = fake_push.FakeGateway().start()
    yield fake
    fake.release()
    fake.stop()


def due_rows(app, count: int, *, minutes_ago: int = 1) -> list[uuid.UUID]:
    """`count` members, each with a phone and a reminder row already due (as the planner leaves them)."""
    now = datetime.now(UTC)
    ids = []
    with app.app_context():
        for n in range(count):
            earlier = (now - timedelta(hours=3)).time().replace(microsecond=0)  # no reminder of its own now
            member_id = make_member(app, timezone="UTC", log_time=earlier)
            add_device(app, member_id, "android")
            with db.unit_of_work() as session:
                row = Nudge(member_id=member_id, kind="log_reminder", dedupe_key=f"test:{n}",
                            local_date=now.date(), local_slot=now.time().replace(microsecond=0), zone="UTC",
                            due_at=now - timedelta(minutes=minutes_ago), expires_at=now + timedelta(hours=1),
                            template="log_reminder", status="pending")  # fmt: skip
                session.add(row)
                session.flush()
                ids.append(row.id)
    return ids


def wait_for(condition, timeout: float, what: str, group: Processes) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"{what} not within {timeout}s\n{group.output()}")


def test_with_redis_down_rows_wait_and_go_out_once_it_returns(
    app, database_url, private_redis, processes, fast_gateway, staff, register, monkeypatch
):
    group = processes(worker_env(database_url, private_redis.url, fast_gateway))
    group.start_worker()
    group.start_beat()
    wait_until_worker_runs_tasks(private_redis.url)

    # The web side sends to the same (private) Redis as the worker listens on.
    monkeypatch.setattr(jobs, "_celery", client_for(private_redis.url))
    monkeypatch.setattr(jobs, "_broker_down_until", 0.0)
    private_redis.stop()

    member = register(timezone="America/New_York")
    member_id = uuid.UUID(member.body["member"]["id"])
    add_device(app, member_id, "android")
    coach = staff("coach")
    with app.app_context(), db.unit_of_work():
        accounts.assign_coach(member.body["member"]["email"], coach.email, now=db.utcnow())
    started = time.monotonic()
    messages = []
    for n in range(5):
        response = coach.post(f"/coach/members/{member_id}/messages", {"body": f"note {n}"})
        assert response.status_code == 201, response.get_json()  # the request path never waits on Redis
        messages.append(response.get_json()["id"])
    assert time.monotonic() - started < 10
    reminders = due_rows(app, 10)
    expected = {*map(str, reminders), *messages}
    time.sleep(3)  # beat ticks, and cannot reach Redis
    assert fast_gateway.requests() == []
    assert {n.status for n in nudges_of(app)} == {"pending"}

    private_redis.start()  # back, and empty: every message sent before is gone
    wait_for(lambda: set(fast_gateway.per_nudge()) >= expected, DELIVERED_WITHIN, "all delivered", group)
    time.sleep(2)  # a few more ticks: nothing goes twice
    assert fast_gateway.per_nudge() == dict.fromkeys(expected, 1)
    assert {n.status for n in nudges_of(app)} == {"sent"}
    # The same worker delivered them: losing Redis while holding a message no longer kills it
    # (companion.broker.RedisChannel; tests/reliability/test_broker_connection_loss.py).
    assert group.worker is not None and group.worker.poll() is None, group.output()


def test_a_worker_running_a_task_when_redis_goes_away_reconnects_and_finishes(
    app, database_url, private_redis, processes, fast_gateway
):
    """Redis lost while the prefork worker holds an unacknowledged task (acks_late) and its consumer
    waits on BRPOP for the next: kombu's channel then restored through a collected connection, an
    AttributeError, and the worker exited (companion.broker.RedisChannel)."""
    ids = due_rows(app, 12)
    fast_gateway.hold()  # the delivery task stays running, its message unacknowledged
    group = processes(worker_env(database_url, private_redis.url, fast_gateway))
    group.start_beat()
    group.start_worker(concurrency=2)
    wait_for(lambda: len(fast_gateway.requests()) > 0, 30, "the first pushes", group)
    private_redis.stop()
    time.sleep(3)  # the consumer loses the broker while the task holds its message
    fast_gateway.release()
    private_redis.start()

    expected = set(map(str, ids))
    wait_for(lambda: set(fast_gateway.per_nudge()) >= expected, DELIVERED_WITHIN, "all delivered", group)
    time.sleep(2)  # a few more ticks: nothing goes twice
    assert fast_gateway.per_nudge() == dict.fromkeys(expected, 1)
    assert {n.status for n in nudges_of(app)} == {"sent"}
    assert group.worker is not None and group.worker.poll() is None, group.output()


def test_a_worker_killed_mid_delivery_leaves_every_nudge_delivered_exactly_once(
    app, database_url, private_redis, processes, fast_gateway
):
    from companion.nudges import delivery_tx as delivery

    ids = due_rows(app, delivery.PUSH_CONCURRENCY * delivery.IN_FLIGHT_GROUPS + 30)  # more than in flight
    fast_gateway.hold()  # pushes reach the gateway; its answers wait
    group = processes(worker_env(database_url, private_redis.url, fast_gateway))
    group.start_beat()
    group.start_worker(concurrency=1)
    wait_for(lambda: len(fast_gateway.requests()) > 0, 30, "the first pushes", group)
    in_flight = fast_gateway.settled(quiet=0.7)  # every sending thread is waiting for an answer
    assert 0 < in_flight < len(ids)
    group.kill_worker()
    fast_gateway.release()

    group.start_worker(concurrency=2)
    expected = set(map(str, ids))
    wait_for(lambda: set(fast_gateway.per_nudge()) >= expected, DELIVERED_WITHIN, "all delivered", group)
    time.sleep(2)
    counts = fast_gateway.per_nudge()
    assert counts == dict.fromkeys(map(str, ids), 1), [c for c in counts.items() if c[1] != 1]
    rows = nudges_of(app)
    assert {n.status for n in rows} == {"sent"}
    with app.app_context():
        from companion.nudges.models import Delivery

        statuses = [d.status for d in db.session.query(Delivery).all()]
    # The pushes that were on the wire when the worker died are `unknown` (never sent again).
    assert statuses.count("unknown") == in_flight and statuses.count("sent") == len(ids) - in_flight
