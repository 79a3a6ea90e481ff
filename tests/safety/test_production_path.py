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

from tests.safety import helpers
from tests.stack import Phone, Stack, staff_token, wait_for_flags

RULE = "disulfiram_with_drinking"
#: The debounce window is 15 s: the trailing scan of a burst comes at most about that long after it.
WITHIN = 60


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


#: The due-row pass runs every 60 s and takes a row due for 30 s: a flag sooner than this came from the
#: scan message the write sent.
FIRST_ENTRY_WITHIN = 15


def test_a_first_dangerous_entry_reaches_the_coach_in_seconds(app, stack, team):
    """A quiet member's one drink on disulfiram, answered by the member-write lane (on, as `companion up`
    runs it), sends the scan message from the request: flagged well before the due-row pass could."""
    [phone] = quiet_members(app, stack, team, 1)
    ok(phone.drinks("2"))
    seen = wait_for_flags(stack, team["admin"], RULE, {phone.id}, within=FIRST_ENTRY_WITHIN)
    assert set(seen) == {phone.id}, stack.output()


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


def test_withdrawal_after_doses_stopped_before_a_taper_on_paper(app, stack, team):
    """Issue 19 item 4 through the stack: a gabapentin plan whose last week the coach marked a taper, but
    whose doses the member stopped taking three days before it began; the plan has ended. A seizure
    reported 13 days after the last dose taken is urgent `withdrawal_after_stop` (before issue 19 the
    plan's taper hid it)."""
    from zoneinfo import ZoneInfo

    phone = Phone(stack)
    zone = ZoneInfo(phone.zone)
    today = datetime.now(UTC).astimezone(zone).date()
    body = {
        "medication": "gabapentin",
        "dose_mg": 600,
        "times": ["09:00", "21:00"],
        "start_date": str(today - timedelta(days=20)),
        "end_date": str(today - timedelta(days=4)),
        "steps": [
            {"from_date": str(today - timedelta(days=10)), "dose_mg": 300, "times": ["09:00", "21:00"],
             "taper": True},
        ],
    }  # fmt: skip
    plan_id = helpers.create_plan(
        app, team["admin_email"], uuid.UUID(phone.id), body, now=datetime.now(UTC) - timedelta(days=21)
    )
    taken = []
    for days_ago in range(20, 12, -1):  # every dose from the start to 13 days ago, none since
        for hour in (9, 21):
            due = datetime.combine(today - timedelta(days=days_ago), datetime.min.time(), zone).replace(
                hour=hour
            )
            data = {
                "id": str(uuid.uuid4()),
                "plan_id": plan_id,
                "scheduled_for": due.isoformat(),
                "status": "taken",
                "taken_at": (due + timedelta(minutes=5)).isoformat(),
            }
            taken.append({"type": "medication_checkin", "data": data})
    r = phone.sync(taken)
    ok(r)
    assert {x["status"] for x in r.json()["results"]} == {"created"}, r.json()
    report = {
        "id": str(uuid.uuid4()),
        "reported_at": datetime.now(UTC).isoformat(),
        "symptoms": [{"code": "seizure", "severity": "severe"}],
    }
    ok(phone.http.post("/symptom-reports", json=report))
    seen = wait_for_flags(stack, team["admin"], "withdrawal_after_stop", {phone.id}, within=WITHIN)
    assert set(seen) == {phone.id}, stack.output()
