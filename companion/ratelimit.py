"""The rate limiter's Redis storage: one round trip a request instead of two.

Flask-Limiter's moving window makes two Redis calls for every limited request: `acquire_entry` (a Lua
script that counts the hit) and, for the `X-RateLimit-*` headers, `get_moving_window` (a second
script that reads the window back). This storage runs one script that does both, the first script's
exact steps followed by the second's, and keeps the window it returned for the rest of the request;
a window asked for without an acquire in this request (a limit only tested, e.g. failed sign-ins)
is read as before. Selected by the `companion+redis://` / `companion+redis+unix://` storage URIs
(`companion.runtime.limiter_storage_url`).
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from flask import Flask, Response, current_app, g, has_app_context, request
from flask_limiter import RequestLimit
from limits import RateLimitItem, parse_many
from limits.storage import RedisStorage

from companion.extensions import limiter, process_share

log = logging.getLogger(__name__)

#: acquire_moving_window.lua of `limits`, then moving_window.lua over the same key: {acquired, oldest
#: entry in the window or false, entries in the window}. Two shortcuts of ours, which change no answer:
#: when the list's last entry is still in the window, no binary search; entries that have left the
#: window are trimmed off (Redis's time a count: 54 -> 26 us at the benchmark's limit, 33 -> 17 at 600).
ACQUIRE_AND_WINDOW = """
local timestamp = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local expiry = tonumber(ARGV[3])
local amount = tonumber(ARGV[4])
local acquired = 0

if amount <= limit then
    local entry = redis.call('lindex', KEYS[1], limit - amount)
    if not (entry and tonumber(entry) >= timestamp - expiry) then
        local entries = {}
        for i = 1, amount do
            entries[i] = timestamp
        end
        for i = 1, #entries, 5000 do
            redis.call('lpush', KEYS[1], unpack(entries, i, math.min(i + 4999, #entries)))
        end
        redis.call('ltrim', KEYS[1], 0, limit - 1)
        redis.call('expire', KEYS[1], expiry)
        acquired = 1
    end
end

local target = timestamp - expiry
-- The oldest entry kept is still in the window, so all are (the binary search would find the last).
local oldest = redis.call('lindex', KEYS[1], -1)
if oldest and tonumber(oldest) >= target then
    return {acquired, tostring(oldest), redis.call('llen', KEYS[1])}
end
local low, high, found = 0, limit - 1, nil
while low <= high do
    local mid = math.floor((low + high) / 2)
    local val = tonumber(redis.call('lindex', KEYS[1], mid))
    if val and val >= target then
        found = mid
        low = mid + 1
    else
        high = mid - 1
    end
end
if found then
    -- Entries past the window count for nothing (neither script reads past the last in the window):
    -- dropped, so that the next request takes the short way above.
    redis.call('ltrim', KEYS[1], 0, found)
    return {acquired, tostring(redis.call('lindex', KEYS[1], found)), found + 1}
end
return {acquired, false, 0}
"""

_WINDOWS = "_companion_ratelimit_windows"


class OneTripRedisStorage(RedisStorage):
    STORAGE_SCHEME = ["companion+redis", "companion+rediss", "companion+redis+unix"]

    def __init__(self, uri: str, **options: Any) -> None:
        super().__init__(uri.removeprefix("companion+"), **options)

    def initialize_storage(self, uri: str) -> None:
        super().initialize_storage(uri)
        self.lua_acquire_and_window = self.get_connection().register_script(ACQUIRE_AND_WINDOW)
        self._own = threading.local()

    def acquire_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        acquired, window = self.acquire_with_window(key, limit, expiry, amount)
        if has_app_context():
            g.setdefault(_WINDOWS, {})[(key, limit, expiry)] = window
        return acquired

    def acquire_with_window(
        self, key: str, limit: int, expiry: int, amount: int = 1
    ) -> tuple[bool, tuple[float, int]]:
        """`acquire_entry`'s answer, and the window as `get_moving_window` would then read it: (its
        oldest entry's time, or now when it is empty; the entries in it)."""
        timestamp = time.time()
        acquired, oldest, count = self._acquire_and_window(
            self.prefixed_key(key), timestamp, limit, expiry, amount
        )
        return bool(acquired), ((float(oldest), int(count)) if oldest else (timestamp, 0))

    def _acquire_and_window(self, key: str, *args: float) -> Any:
        """The script on this thread's own connection: one EVALSHA written and its reply read. redis-py's
        path around the same command (the pool's checkout and fork check, the retry wrapper, the command's
        argument filters) cost twice the command itself (issue 20). On any failure the connection is
        dropped and the library's path runs instead: it connects again, loads a script Redis has lost
        (NOSCRIPT) and retries as configured, as it would have done on its own."""
        own, pid = self._own, os.getpid()
        connection = getattr(own, "connection", None)
        if connection is None or own.pid != pid:  # a forked process opens its own
            connection = own.connection = self.storage.connection_pool.make_connection()
            own.pid = pid
        try:
            connection.send_command("EVALSHA", self.lua_acquire_and_window.sha, 1, key, *args)
            return connection.read_response()
        except Exception:
            own.connection = None
            connection.disconnect()
            return self.lua_acquire_and_window([key], list(args))

    def get_moving_window(self, key: str, limit: int, expiry: int) -> tuple[float, int]:
        if has_app_context():
            window = g.get(_WINDOWS, {}).get((key, limit, expiry))
            if window is not None:
                return window
        return super().get_moving_window(key, limit, expiry)


# --- the default limit, counted in one call --------------------------------------------------------------
#
# Flask-Limiter's hook resolves a request's limits anew each time (defaults, decorators, blueprints,
# exemptions, meta limits), and its headers read the window back through its strategy: together a
# tenth of a member write's CPU, around the one script that counts (issue 20). For the member-write
# lane's requests, whose only limit is the default, `count_default_limit` counts it itself, with the
# same storage, key and scope as the hook, and gives the same headers. A request it counted carries the
# count in its WSGI environ: if the lane hands it to Flask, the hook passes it and `_headers_of_count`
# writes its headers. Anything else is left to Flask-Limiter: a refusal (its hook counts again, refuses,
# and answers the 429 as always), the storage down (its in-memory fallback), the limiter off, more than
# one default limit, an answer with a Retry-After of its own (a 503).

#: The WSGI environ's key for a request counted by `count_default_limit`: (limit, key arguments, headers).
COUNTED = "companion.ratelimit_counted"
_HEADERS_WRITTEN = "_companion_ratelimit_headers"


@functools.lru_cache(maxsize=16)
def _parsed(limit: str) -> list[RateLimitItem]:
    return parse_many(limit)


def count_default_limit(environ: dict[str, Any], endpoint: str, key: str) -> list[tuple[str, str]] | None:
    """Count a request to `endpoint` against the default limit (Flask-Limiter's scope: the account's
    `key` and the endpoint); in an app context. When counted and allowed: the rate-limit headers of its
    answer, and the count kept in `environ`, so Flask-Limiter's hook passes the request should it reach
    Flask. None leaves the request to the hook, as if this had not run."""
    if not (limiter.enabled and limiter.initialized) or limiter._storage_dead:
        return None
    items = _parsed(process_share(current_app.config["COMPANION_RATELIMIT_DEFAULT"]))
    if len(items) != 1 or limiter.limit_manager.has_hints(endpoint):
        return None
    storage = limiter.limiter.storage
    if not isinstance(storage, OneTripRedisStorage):
        return None
    item, prefix = items[0], [limiter._key_prefix] if limiter._key_prefix else []
    args = [*prefix, key, endpoint]
    expiry = item.get_expiry()
    try:
        # The moving window's `hit` and `get_window_stats` (limits.strategies) in one call to the storage:
        # the same key, count and window.
        allowed, (start, entries) = storage.acquire_with_window(item.key_for(*args), item.amount, expiry)
    except Exception:
        # As Flask-Limiter does on the same failure: per-process counters until the storage is back.
        log.warning("Rate limit storage unreachable - falling back to in-memory storage")
        limiter._storage_dead = True
        return None
    if not allowed:
        return None
    # Flask-Limiter's headers: the limit, what remains of it, when its window resets (as
    # `RequestLimit.reset_at` says it).
    headers = [
        ("X-RateLimit-Limit", str(item.amount)),
        ("X-RateLimit-Remaining", str(item.amount - entries)),
        ("X-RateLimit-Reset", str(int(start + expiry + 1))),
    ]
    environ[COUNTED] = (item, args, headers)
    return headers


def _unless_counted(check: Callable[[], None]) -> Callable[[], None]:
    def check_unless_counted() -> None:
        if COUNTED not in request.environ:
            check()

    return check_unless_counted


def _headers_of_count(response: Response) -> Response:
    """The headers of a request counted by `count_default_limit` that Flask answers. An answer with a
    Retry-After of its own is left to Flask-Limiter's hook (added next), which weighs the two."""
    counted = request.environ.get(COUNTED)
    if counted is None:
        return response
    item, args, headers = counted
    if "Retry-After" in response.headers:
        limiter.context.view_rate_limit = RequestLimit(limiter, item, args, False, False)
        return response
    setattr(g, _HEADERS_WRITTEN, True)  # Flask-Limiter's hook, next, has nothing left to add
    response.headers.extend(headers)
    return response


def _unless_headers_written(inject: Callable[[Response], Response]) -> Callable[[Response], Response]:
    def inject_unless_written(response: Response) -> Response:
        # A counted request has no conditional deductions (the hook that records them did not run).
        return response if g.get(_HEADERS_WRITTEN) else inject(response)

    return inject_unless_written


def init_app(app: Flask) -> None:
    """After `limiter.init_app`: its hooks pass over a request counted here (they are found among the
    app's hooks, or the app does not start), and the headers of that count."""
    before = app.before_request_funcs[None]
    before[before.index(limiter._check_request_limit)] = _unless_counted(limiter._check_request_limit)
    after = app.after_request_funcs[None]
    # Its header hook is the one after-request hook bound to the limiter: `partial(<its method>, limiter)`.
    found = [i for i, f in enumerate(after) if isinstance(f, functools.partial) and f.args == (limiter,)]
    if len(found) != 1:
        raise RuntimeError("Flask-Limiter's header hook is not where init_app registers it")
    after[found[0]] = _unless_headers_written(after[found[0]])
    app.after_request(_headers_of_count)  # registered after the limiter's own, so it runs before it
