"""What every push channel takes and answers, and how long to wait before trying again.

A channel sends one `PushMessage` to one device token and answers a `PushResult` whose outcome is
what the caller must do next (DOMAIN.md "Delivery errors"):

* SENT: the gateway accepted it;
* DEACTIVATE: the token is dead (FCM `UNREGISTERED`/404, APNs 410 or a bad token): stop using the
  device, never retry;
* FAILED: the request is wrong and will stay wrong (FCM `INVALID_ARGUMENT`/400): never retry;
* RETRY: try again later, no sooner than `retry_after` seconds (the provider's Retry-After);
  `quota` marks a rate limit (FCM `QUOTA_EXCEEDED`, 429), whose first retry waits at least 60 s.

Channels never raise for a gateway's answer or a network failure: both are results.
"""

from __future__ import annotations

import enum
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Protocol

import httpx

#: A rate-limited push is not retried sooner than this (DOMAIN.md: first retry >= 60 s).
QUOTA_MIN_DELAY = 60.0
#: Exponential backoff for transient errors: about BASE x 2^(n-1) seconds before retry n, jittered
#: between half and all of it, never more than CAP (ours).
BACKOFF_BASE = 15.0
BACKOFF_CAP = 900.0


class PushOutcome(enum.StrEnum):
    SENT = "sent"
    RETRY = "retry"
    FAILED = "failed"
    DEACTIVATE = "deactivate"


@dataclass(frozen=True, slots=True)
class PushMessage:
    """What a push says. Texts come from `domain.nudges.TEMPLATES` and carry no health data; the only
    data is the nudge's id, which the app uses to open the inbox item."""

    nudge_id: str
    title: str
    body: str
    #: Unix time after which the gateway should not deliver it (None: no expiry).
    expires_epoch: int | None = None


@dataclass(frozen=True, slots=True)
class PushResult:
    outcome: PushOutcome
    provider: str
    provider_message_id: str | None = None
    #: The provider's error code or HTTP status, short: never the payload or the token.
    error: str | None = None
    retry_after: float | None = None
    quota: bool = False


class PushChannel(Protocol):
    name: str

    def send(self, token: str, message: PushMessage) -> PushResult: ...

    async def push(self, token: str, message: PushMessage) -> PushResult:
        """`send`, awaited on the push event loop (`http1.event_loop()`): many at once."""
        ...


def retry_delay(attempt: int, *, retry_after: float | None, quota: bool, rng: random.Random) -> float:
    """Seconds to wait before retry number `attempt` (1 for the first retry).

    Exponential with jitter (half to all of BASE x 2^(attempt-1), capped), never less than the
    provider's Retry-After, and never less than QUOTA_MIN_DELAY after a rate limit.
    """
    if attempt < 1:
        raise ValueError("attempt counts from 1")
    ceiling = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** (attempt - 1))
    delay = ceiling / 2 + rng.uniform(0, ceiling / 2)
    if retry_after is not None:
        delay = max(delay, retry_after)
    if quota:
        delay = max(delay, QUOTA_MIN_DELAY)
    return delay


def parse_retry_after(value: str | None, *, now: datetime) -> float | None:
    """An HTTP Retry-After header (seconds, or an HTTP date) as seconds from `now`; None if absent or bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


class ThreadClients:
    """One httpx client per sending thread: a client shared by many threads spends more time on its
    connection pool's lock than on the request (measured: 16 threads on one client were slower than one
    thread). Each thread keeps its own keep-alive connection."""

    def __init__(self, make: Callable[[], httpx.Client]) -> None:
        self._make = make
        self._local = threading.local()
        self._all: list[httpx.Client] = []
        self._lock = threading.Lock()

    def get(self) -> httpx.Client:
        client = getattr(self._local, "client", None)
        if client is None:
            client = self._local.client = self._make()
            with self._lock:
                self._all.append(client)
        return client

    def close(self) -> None:
        with self._lock:
            clients, self._all = self._all, []
        for client in clients:
            client.close()
        self._local = threading.local()
