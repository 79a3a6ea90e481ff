"""Sign-in throttling as arithmetic (issue 21): failures slow guesses down without locking the owner out.

Each account has a failure count, and so has each (account, client address) pair. After FREE_FAILURES
failures the next attempt must wait 2, 4, 8 ... seconds after the last failure, at most MAX_DELAY; a
failure older than FORGET_AFTER starts the count again. The account's count does not hold back an
address that signed into that account successfully within KNOWN_FOR: the owner's phone or desk is
slowed only by its own failures, whatever anyone else sends. An attempt made while it must wait is
refused without checking the password and is not counted.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

FREE_FAILURES = 5
MAX_DELAY = 15 * 60
FORGET_AFTER = timedelta(hours=24)
KNOWN_FOR = timedelta(days=30)


def delay_seconds(failures: int) -> int:
    """Seconds to wait after the last of `failures` failures: 0 up to FREE_FAILURES, then doubling."""
    if failures < FREE_FAILURES:
        return 0
    return min(MAX_DELAY, 1 << (failures - FREE_FAILURES + 1))


def current_failures(failures: int, last_failure: datetime | None, now: datetime) -> int:
    if last_failure is None or now - last_failure > FORGET_AFTER:
        return 0
    return failures


def wait_seconds(failures: int, last_failure: datetime | None, now: datetime) -> int:
    """How long an attempt at `now` must still wait (0: it may be tried)."""
    count = current_failures(failures, last_failure, now)
    if count < FREE_FAILURES or last_failure is None:
        return 0
    remaining = (last_failure + timedelta(seconds=delay_seconds(count)) - now).total_seconds()
    return max(0, math.ceil(remaining))


def is_known(last_success: datetime | None, now: datetime) -> bool:
    return last_success is not None and now - last_success <= KNOWN_FOR
