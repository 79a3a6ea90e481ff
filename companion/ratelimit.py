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

import time
from typing import Any

from flask import g, has_request_context
from limits.storage import RedisStorage

#: acquire_moving_window.lua of `limits`, then moving_window.lua over the same key: {acquired, oldest
#: entry in the window or false, entries in the window}.
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

    def acquire_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        timestamp = time.time()
        acquired, oldest, count = self.lua_acquire_and_window(
            [self.prefixed_key(key)], [timestamp, limit, expiry, amount]
        )
        if has_request_context():
            windows = g.setdefault(_WINDOWS, {})
            windows[(key, limit, expiry)] = (float(oldest), int(count)) if oldest else (timestamp, 0)
        return bool(acquired)

    def get_moving_window(self, key: str, limit: int, expiry: int) -> tuple[float, int]:
        if has_request_context():
            window = g.get(_WINDOWS, {}).get((key, limit, expiry))
            if window is not None:
                return window
        return super().get_moving_window(key, limit, expiry)
