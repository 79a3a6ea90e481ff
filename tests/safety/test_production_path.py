"""The safety net the way production runs it (issue 26): `companion up` with its prefork worker and real
beat on a real Redis, members writing over HTTP, and each test waiting for the urgent flag to appear in
`GET /coach/flags` with a deadline, failing without it. No clock is moved and no task is called here.

The pattern: a member on disulfiram logs a drink (`disulfiram_with_drinking`, urgent), as the last
entry of a burst, across the debounce window, inside a sync batch, and while Redis is down.
"""

from __future__ import annotations

import collections
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from tests import fake_push
from tests.nudges.processes import worker_env
from tests.safety import helpers
from tests.stack import Phone, Stack, staff_token, wait_for_flags

RULE = "disulfiram_with_drinking"
#: The debounce window is 15 s: the trailing scan of a burst comes at most about that long after it.
WITHIN = 60
#: What was written while Redis was down: beat's safety pass (every minute, after a 30 s grace) finds
#: the due rows, and the nudge dispatcher (every minute) the coach's messages; two minutes and a margin.
AFTER_REDIS_RETURNS_WITHIN = 150


def make_team(app, stack: Stack) -> dict[str, str]:
    emails: dict[str, str] = {}

    def create(role: str, email: str) -> None:
        helpers.new_staff(app, role, email)
        emails[role] = email

    tokens = {role: staff_token(stack, create, role) for role in ("coach", "admin")}
    return {**tokens, "admin_email": emails["admin"]}


@pytest.fixture(scope="module")
def stack(database_url, tmp_path_factory):
    running = Stack(tmp_path_factory.mktemp("stack"), database_url)
    running.start()
    yield running
    running.stop()


@pytest.fixture
def team(app, stack):
    return make_team(app, stack)


def quiet_members(app, stack: Stack, team, n: int) -> list[Phone]:
    """Members registered over HTTP, on a disulfiram plan since yesterday: quiet, so their next entry
    is scanned at once. (The plan is written in this process, as of yesterday: the API refuses a start
    in the past; its scan message goes to this process's Redis, not the stack's, and is lost.)"""
    phones = [Phone(stack) for _ in range(n)]
    yesterday = datetime.now(UTC) - timedelta(days=1)
    for phone in phones:
        body = {"medication": "disulfiram", "dose_mg": 250, "times": ["08:00"]}
        helpers.create_plan(app, team["admin_email"], uuid.UUID(phone.id), body, now=yesterday)
    return phones


def ok(response) -> None:
    assert response.status_code in (200, 201), response.text


def test_a_burst_ending_in_the_pattern_is_flagged_and_costs_two_scans(app, stack, team):
    short, long = quiet_members(app, stack, team, 2)
    for _ in range(4):
        ok(short.craving())
    ok(short.drinks("2"))  # the fifth entry completes the pattern
    started = time.monotonic()
    for i in range(49):
        ok(long.craving(i % 10) if i % 2 else long.breath())
    ok(long.drinks("1"))  # the fiftieth
    windows = 1 + int((time.monotonic() - started) // 15)  # the debounce windows the burst spans
    seen = wait_for_flags(stack, team["admin"], RULE, {short.id, long.id}, within=WITHIN)
    assert set(seen) == {short.id, long.id}, stack.output()
    # The debounce: the first entry scanned at once, the rest folded into one trailing scan a window.
    time.sleep(2)
    assert 1 <= stack.scans_of(long.id) <= 2 * windows, stack.output()


def test_several_members_at_once(app, stack, team):
    phones = quiet_members(app, stack, team, 6)
    errors: list[str] = []

    def burst(phone: Phone) -> None:
        try:
            for r in (phone.craving(), phone.breath(), phone.drinks("3")):
                ok(r)
        except AssertionError as exc:
            errors.append(str(exc))

    threads = [threading.Thread(target=burst, args=(p,)) for p in phones]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    seen = wait_for_flags(stack, team["admin"], RULE, {p.id for p in phones}, within=WITHIN)
    assert set(seen) == {p.id for p in phones}, stack.output()


def test_entries_spread_across_the_debounce_window(app, stack, team):
    [phone] = quiet_members(app, stack, team, 1)
    for _ in range(3):
        ok(phone.craving())
        time.sleep(6)
    ok(phone.drinks("1"))  # 18 s after the first entry: after the first window's trailing scan
    seen = wait_for_flags(stack, team["admin"], RULE, {phone.id}, within=WITHIN)
    assert set(seen) == {phone.id}, stack.output()


def test_a_sync_batch(app, stack, team):
    [phone] = quiet_members(app, stack, team, 1)
    r = phone.sync(phone.sync_items(cravings=40, drinks="2"))
    ok(r)
    assert collections.Counter(x["status"] for x in r.json()["results"]) == {"created": 41}
    seen = wait_for_flags(stack, team["admin"], RULE, {phone.id}, within=WITHIN)
    assert set(seen) == {phone.id}, stack.output()


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
