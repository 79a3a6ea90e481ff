"""The rate limiter's one-trip script (companion/ratelimit.py) answers as `limits`' own two scripts do:
whether a hit is acquired, then the window (its oldest entry and how many are in it), for a random run of
hits and reads at moving times, at a limit the run reaches and one it never does. Its shortcuts (no
search when the last entry is in the window, entries past the window trimmed) change no answer."""

from __future__ import annotations

import random

import pytest
import redis as redis_lib
from limits.storage import RedisStorage

from companion.ratelimit import ACQUIRE_AND_WINDOW, OneTripRedisStorage


@pytest.mark.parametrize("limit", [5, 40, 1_000_000])
def test_the_one_trip_script_answers_as_the_two_scripts_of_limits(redis_url: str, limit: int):
    ours = redis_lib.Redis.from_url(redis_url).register_script(ACQUIRE_AND_WINDOW)
    theirs = RedisStorage(redis_url)
    connection = redis_lib.Redis.from_url(redis_url)
    key_ours, key_theirs = f"test-rl-ours-{limit}", f"test-rl-theirs-{limit}"
    connection.delete(key_ours, key_theirs)
    rng, now, expiry = random.Random(limit), 1_800_000_000.0, 60
    try:
        for _ in range(600):
            now += rng.choice([0.01, 0.2, 1.0, 7.5, 31.0, 70.0])
            acquired, oldest, count = ours([key_ours], [now, limit, expiry, 1])
            got = (bool(acquired), (float(oldest), int(count)) if oldest else (now, 0))
            taken = theirs.lua_acquire_moving_window([key_theirs], [now, limit, expiry, 1])
            window = theirs.lua_moving_window([key_theirs], [now - expiry, limit])
            expected = (bool(taken), (float(window[0]), int(window[1])) if window else (now, 0))
            # The oldest entry as each script prints it (ours the stored float, theirs to 14 digits).
            assert got == (expected[0], pytest.approx(expected[1], abs=1e-3)), (now, limit)
    finally:
        connection.delete(key_ours, key_theirs)


def test_a_count_on_a_lost_connection_or_a_lost_script_is_made_once(redis_url: str):
    """The storage sends its script on a connection of its own (no pool, no retry wrapper). When Redis has
    dropped that connection, or lost the script (a restart, SCRIPT FLUSH), the library's own path counts
    instead, reconnecting or loading the script: every hit is counted, and once."""
    storage = OneTripRedisStorage(f"companion+{redis_url}")
    client = redis_lib.Redis.from_url(redis_url)
    key = "test-rl-lost"
    client.delete(storage.prefixed_key(key))
    try:
        assert storage.acquire_entry(key, 10, 60)
        own = storage._own.connection
        own.send_command("CLIENT", "ID")
        client.client_kill_filter(_id=own.read_response())
        assert storage.acquire_entry(key, 10, 60)
        assert storage._own.connection is None  # dropped; the next count opens another
        client.script_flush()
        assert storage.acquire_entry(key, 10, 60)
        assert storage.acquire_entry(key, 10, 60)
        assert storage._own.connection is not None and storage._own.connection is not own
        assert storage.get_moving_window(key, 10, 60)[1] == 4
    finally:
        client.delete(storage.prefixed_key(key))
        client.close()


def test_the_app_does_not_start_without_flask_limiters_hooks_where_init_app_puts_them():
    """The lane's count stands in for Flask-Limiter's two hooks, found among the app's hooks: if a new
    Flask-Limiter registered them otherwise, the app would count twice or not at all, so it refuses to
    start instead."""
    from flask import Flask

    from companion import ratelimit
    from companion.extensions import limiter

    bare = Flask(__name__)
    with pytest.raises(ValueError):
        ratelimit.init_app(bare)  # no before-request hook
    bare.before_request(limiter._check_request_limit)
    with pytest.raises(RuntimeError, match="header hook"):
        ratelimit.init_app(bare)  # no header hook bound to the limiter
