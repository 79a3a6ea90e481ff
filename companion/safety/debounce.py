"""Debounce the per-member scans the web side asks for after each entry, without losing the last one.

A phone coming back online sends a burst of entries; each request asks for a scan of the member after
it commits. The first request of a quiet member scans at once (an urgent pattern reaches the coach
in seconds); any further request within `SCAN_DEBOUNCE_SECONDS` of that scan is folded into ONE
trailing scan, sent with a countdown to when the window ends, so it reads every entry committed
before it runs. Two Redis keys per member, both expiring:

* `lock`: set NX with the window's expiry by the scan that runs now. While it exists, a scan ran (or
  is running) within the window.
* `trailing`: set NX by the first request that finds the lock; it sends the trailing scan. Later
  requests that find it set know a trailing scan is due after them and do nothing.

Why no request is lost: a request that does not scan either scheduled the trailing scan itself or
found `trailing` set. The trailing scan deletes `trailing` before it looks at the lock, and reads the
database after that; so a request that found the key set did so before the trailing scan read the
database, and its entry (committed before its request was sent) is seen. If the trailing scan finds
the lock taken again (a new window began), it defers once more. A scan requested while a scan is
running is therefore always followed by another.

Redis may lose all of this at any moment: with Redis unreachable every request scans at once, and a
lost trailing message is caught up by the periodic sweep. The database, not Redis, keeps two scans of
one member from writing at once (companion/safety/findings.py).
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass

import redis

#: The debounce window, seconds (ours): a burst of entries costs two scans at most per window, and a
#: pattern in the burst's later entries reaches the coach at most this much later.
SCAN_DEBOUNCE_SECONDS = 15
#: Added to a trailing scan's countdown, so it runs after the lock has expired.
TRAILING_MARGIN_SECONDS = 0.5

_PREFIX = "companion:safety:scan"


class Decision(enum.StrEnum):
    #: Scan now.
    SCAN = "scan"
    #: Send the trailing scan, `countdown` seconds from now.
    DEFER = "defer"
    #: A trailing scan is already due after this request: nothing to do.
    COALESCED = "coalesced"


@dataclass(frozen=True)
class Admission:
    decision: Decision
    countdown: float = 0.0


def _keys(member_id: uuid.UUID | str) -> tuple[str, str]:
    return f"{_PREFIX}:lock:{member_id}", f"{_PREFIX}:trailing:{member_id}"


def admit(
    client: redis.Redis,
    member_id: uuid.UUID | str,
    *,
    trailing: bool = False,
    window: int = SCAN_DEBOUNCE_SECONDS,
) -> Admission:
    """Whether a requested scan runs now, is deferred to a trailing scan, or is already covered.

    `trailing` is True for the trailing scan itself. Raises redis errors: the caller scans at once.
    """
    lock, trailing_key = _keys(member_id)
    if trailing:
        client.delete(trailing_key)
    if client.set(lock, "1", nx=True, ex=window):
        return Admission(Decision.SCAN)
    remaining_ms = client.pttl(lock)
    if remaining_ms < 0:  # expired between the two calls (or lost its expiry): wait one window
        remaining_ms = window * 1000
    countdown = remaining_ms / 1000 + TRAILING_MARGIN_SECONDS
    if client.set(trailing_key, "1", nx=True, px=int((countdown + window) * 1000)):
        return Admission(Decision.DEFER, countdown)
    return Admission(Decision.COALESCED)
