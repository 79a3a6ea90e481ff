"""Redis dies under a running `companion up` (issues 21 and 26): the API keeps answering, the worker and
beat come back with it, and what was written meanwhile goes out once it returns. A module of its own:
its stack must be the only one on the test database (another stack's beat would dispatch its nudges
through a worker with no push gateway)."""

from __future__ import annotations

import time
import uuid

import pytest

from tests import fake_push
from tests.nudges.processes import worker_env
from tests.safety.test_production_path import RULE, make_team, ok, quiet_members
from tests.stack import Stack, wait_for_flags

#: What was written while Redis was down: beat's safety pass (every minute, after a 30 s grace) finds
#: the due rows, and the nudge dispatcher (every minute) the coach's messages; two minutes and a margin.
AFTER_REDIS_RETURNS_WITHIN = 150


@pytest.fixture
def gateway():
    running = fake_push.FakeGateway().start()
    yield running
    running.stop()


@pytest.fixture
def own_stack(database_url, tmp_path, gateway):
    # Pushes go to the local fake FCM, configured as the other worker tests configure it.
    push = {k: v for k, v in worker_env(database_url, "", gateway).items() if k.startswith(("FCM_", "PUSH_"))}
    running = Stack(tmp_path / "stack", database_url, **push)
    running.start()
    yield running
    running.stop()


def test_redis_stopped_and_restarted_mid_burst(app, own_stack, gateway):
    """Redis dies under a running `companion up` and comes back empty: the API answers throughout, and
    what was written meanwhile goes out once it is back: the flags, and the coach's messages (pushed
    exactly once) within two minutes."""
    stack = own_stack
    team = make_team(app, stack)
    phones = quiet_members(app, stack, team, 3)
    for phone in phones:
        device = {"platform": "android", "push_token": f"android-{uuid.uuid4().hex}"}
        ok(phone.http.post("/me/devices", json=device))
        ok(phone.craving())
    stack.redis.stop()  # everything Redis held is gone: queued messages, debounce keys, limits
    down_since = time.monotonic()
    messages = []
    with stack.http(team["admin"]) as staff:
        for phone in phones:
            for r in (phone.breath(), phone.drinks("2"), phone.craving()):
                ok(r)  # the API keeps answering, and every write is stored
            r = staff.post(f"/coach/members/{phone.id}/messages", json={"body": "How are you today?"})
            ok(r)
            messages.append(r.json()["id"])
    time.sleep(max(0.0, 10 - (time.monotonic() - down_since)))
    stack.redis.start()
    returned = time.monotonic()
    assert stack.running(), stack.output()
    seen = wait_for_flags(
        stack, team["admin"], RULE, {p.id for p in phones}, within=AFTER_REDIS_RETURNS_WITHIN, poll=1
    )
    assert set(seen) == {p.id for p in phones}, stack.output()
    deadline = returned + AFTER_REDIS_RETURNS_WITHIN
    while time.monotonic() < deadline and not set(messages) <= set(gateway.per_nudge()):
        time.sleep(1)
    time.sleep(2)  # a few more ticks: nothing goes twice
    delivered = gateway.per_nudge()
    assert {m: delivered.get(m) for m in messages} == dict.fromkeys(messages, 1), stack.output()
    assert stack.running(), stack.output()
