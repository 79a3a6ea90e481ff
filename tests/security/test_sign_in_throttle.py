"""Sign-in throttling that an attacker cannot turn against the owner (issue 21, finding 9): failures slow
guesses down exponentially, the owner's known address is never held back by someone else's failures,
the API and the dashboard share one count, and the count lives in PostgreSQL (it holds without Redis)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from companion.domain import throttle as rules
from companion.extensions import limiter
from tests.conftest import PASSWORD, Api
from tests.dashboard import pages


@pytest.fixture
def no_redis_limiter():
    """The Redis-backed limiter (per-address limits) switched off: what still throttles is the count."""
    was = limiter.enabled
    limiter.enabled = False
    yield
    limiter.enabled = was


def client_at(app, address: str) -> Api:
    c = app.test_client()
    c.environ_base["REMOTE_ADDR"] = address
    return Api(c)


def attempt(api: Api, email: str, password: str):
    return api.post("/auth/token", {"email": email, "password": password})


def test_the_delay_doubles_after_five_failures_and_stops_at_15_minutes():
    assert [rules.delay_seconds(n) for n in range(4, 10)] == [0, 2, 4, 8, 16, 32]
    assert rules.delay_seconds(40) == rules.MAX_DELAY == 900
    now = datetime(2026, 12, 6, tzinfo=UTC)
    assert rules.wait_seconds(6, now - timedelta(seconds=1), now) == 3
    assert rules.wait_seconds(6, now - timedelta(hours=25), now) == 0  # forgotten after a day


def test_an_attacker_cannot_lock_the_owner_out(app, register, no_redis_limiter):
    member = register()
    email = member.body["member"]["email"]
    owner = client_at(app, "203.0.113.10")
    assert attempt(owner, email, PASSWORD).status_code == 200  # the owner's phone signed in before
    start = datetime.now(UTC)
    with time_machine.travel(start, tick=False) as clock:
        attacker = client_at(app, "198.51.100.66")
        answers = []
        for _ in range(39):  # every time the delay allows, for hours (the last one a failure)
            r = attempt(attacker, email, "guess " + "x" * 8)
            answers.append(r.status_code)
            if r.status_code == 429:
                clock.shift(timedelta(seconds=int(r.headers["Retry-After"])))
        assert answers.count(401) < 25 and 429 in answers  # guesses were slowed down
        assert answers[-1] == 401
        r = attempt(attacker, email, PASSWORD)  # even the right password waits from the attacker's side
        assert r.status_code == 429 and int(r.headers["Retry-After"]) == rules.MAX_DELAY
        # A new address waits for the account's delay too (at most 15 minutes) ...
        fresh = client_at(app, "203.0.113.99")
        r = attempt(fresh, email, PASSWORD)
        assert r.status_code == 429 and int(r.headers["Retry-After"]) <= rules.MAX_DELAY
        # ... but the owner, from their known address, is let in at once with the right password.
        assert attempt(owner, email, PASSWORD).status_code == 200
        clock.shift(timedelta(seconds=1))
        assert attempt(fresh, email, PASSWORD).status_code == 200  # the owner's success reset the count


def test_the_retry_after_grows(app, register, no_redis_limiter):
    email = register().body["member"]["email"]
    start = datetime.now(UTC)
    with time_machine.travel(start, tick=False) as clock:
        api = client_at(app, "198.51.100.7")
        waits = []
        for _ in range(5):
            assert attempt(api, email, "wrong password").status_code == 401
        for _ in range(4):
            r = attempt(api, email, "wrong password")
            assert r.status_code == 429
            waits.append(int(r.headers["Retry-After"]))
            clock.shift(timedelta(seconds=waits[-1]))
            assert attempt(api, email, "wrong password").status_code == 401
    assert waits == [2, 4, 8, 16], waits


def test_case_and_space_variants_and_both_doors_share_one_count(app, register, staff):
    coach = staff("coach")
    email = coach.email
    api = client_at(app, "198.51.100.20")
    for variant in (email, email.upper(), f"  {email} "):
        assert attempt(api, variant, "wrong password").status_code == 401
    browser = app.test_client()
    browser.environ_base["REMOTE_ADDR"] = "198.51.100.21"
    assert pages.sign_in(browser, email, "wrong password!").status_code == 401
    assert pages.sign_in(browser, email, "wrong password!").status_code == 401
    # five failures through two doors: the next attempt waits, at either door
    r = pages.sign_in(browser, email, PASSWORD)
    assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0
    assert "Too many failed sign-ins" in r.get_data(as_text=True)
    assert attempt(api, email, PASSWORD).status_code == 429


def test_the_count_holds_without_the_redis_limiter(app, register, no_redis_limiter):
    email = register().body["member"]["email"]
    statuses = [
        attempt(client_at(app, f"192.0.2.{n + 1}"), email, "wrong password").status_code for n in range(7)
    ]
    assert statuses[:5] == [401] * 5 and statuses[5:] == [429, 429], statuses
