"""Apple Push Notification service: `POST {base}/3/device/{token}` with a provider token (ES256 JWT).

The JWT names the key (`kid`) and team (`iss`), is signed with the .p8 key from the settings, and is
reused for 40 minutes (Apple refuses tokens older than an hour and rate-limits new ones). Errors, as
APNs reports them (HTTP status and `reason`): 410 Unregistered, BadDeviceToken and
DeviceTokenNotForTopic deactivate the device; other 400s are never retried; 429 TooManyRequests backs
off at least 60 s; 500/503 honour Retry-After with jittered backoff; an expired or refused provider
token (403) is minted again and retried.

APNs speaks HTTP/2 only, and so does this client (httpx with `h2`, locked: `httpx[http2]`; HTTP/1.1
is off): ALPN over TLS, prior knowledge over a cleartext URL (the tests' fake gateway). One client per
sending thread: `push` (what a delivery task awaits) hands `send` to this channel's threads. httpx
reads HTTPS_PROXY / NO_PROXY from the environment.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import jwt

from companion.db import utcnow
from companion.notifications.base import (
    PushMessage,
    PushOutcome,
    PushResult,
    ThreadClients,
    parse_retry_after,
)

NAME = "apns"
#: A provider token is minted again after this many seconds (Apple: between 20 and 60 minutes).
TOKEN_REUSE_SECONDS = 40 * 60
#: Pushes in flight at once per process (one thread and one client each): at least as many as a
#: delivery task has in flight (nudges.delivery_tx), so a push recorded as leaving never waits for a thread.
SENDING_THREADS = 256
DEACTIVATE_REASONS = frozenset({"Unregistered", "BadDeviceToken", "DeviceTokenNotForTopic"})
TOKEN_REASONS = frozenset({"ExpiredProviderToken", "InvalidProviderToken", "MissingProviderToken"})


def payload(message: PushMessage) -> dict[str, Any]:
    """The request body: the template texts and the nudge id, nothing else."""
    return {
        "aps": {"alert": {"title": message.title, "body": message.body}, "sound": "default"},
        "nudge_id": message.nudge_id,
    }


class ProviderToken:
    """The APNs provider JWT, minted at most every TOKEN_REUSE_SECONDS, shared by the sending threads."""

    def __init__(self, *, key_pem: str, key_id: str, team_id: str) -> None:
        self._key, self._key_id, self._team_id = key_pem, key_id, team_id
        self._lock = threading.Lock()
        self._token: str | None = None
        self._minted = 0.0

    def get(self, *, fresh: bool = False) -> str:
        with self._lock:
            now = time.time()
            if fresh or self._token is None or now - self._minted >= TOKEN_REUSE_SECONDS:
                self._token = jwt.encode(
                    {"iss": self._team_id, "iat": int(now)},
                    self._key,
                    algorithm="ES256",
                    headers={"kid": self._key_id},
                )
                self._minted = now
            return self._token

    def invalidate(self, used: str) -> None:
        with self._lock:
            if self._token == used:
                self._token = None


class ApnsChannel:
    name = NAME

    def __init__(
        self, *, key_file: str, key_id: str, team_id: str, topic: str, base_url: str, timeout: float
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.topic = topic
        self.provider_token = ProviderToken(
            key_pem=Path(key_file).read_text(), key_id=key_id, team_id=team_id
        )
        self._clients = ThreadClients(
            lambda: httpx.Client(
                timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)), http1=False, http2=True
            )
        )
        self._threads: ThreadPoolExecutor | None = None
        self._threads_pid = 0

    async def push(self, token: str, message: PushMessage) -> PushResult:
        """`send` on one of this process's sending threads (threads do not survive a fork: made again)."""
        if self._threads is None or self._threads_pid != os.getpid():
            self._threads = ThreadPoolExecutor(SENDING_THREADS, thread_name_prefix="apns")
            self._threads_pid = os.getpid()
        return await asyncio.get_running_loop().run_in_executor(self._threads, self.send, token, message)

    def send(self, token: str, message: PushMessage) -> PushResult:
        bearer = self.provider_token.get()
        headers = {
            "authorization": f"bearer {bearer}",
            "apns-topic": self.topic,
            "apns-push-type": "alert",
            "apns-priority": "10",
            "apns-id": str(uuid.uuid4()),
            "apns-collapse-id": message.nudge_id,
            "apns-expiration": str(message.expires_epoch or 0),
        }
        try:
            response = self._clients.get().post(
                f"{self.base_url}/3/device/{token}", json=payload(message), headers=headers
            )
        except httpx.HTTPError as exc:  # timeouts and connection failures: transient
            return PushResult(PushOutcome.RETRY, NAME, error=f"network:{type(exc).__name__}")
        result = classify(response)
        if result.error is not None and any(reason in result.error for reason in TOKEN_REASONS):
            self.provider_token.invalidate(bearer)
        return result

    def close(self) -> None:
        if self._threads is not None and self._threads_pid == os.getpid():
            self._threads.shutdown(wait=False)
        self._threads = None
        self._clients.close()


def classify(response: httpx.Response) -> PushResult:
    status = response.status_code
    if status == 200:
        return PushResult(PushOutcome.SENT, NAME, provider_message_id=response.headers.get("apns-id"))
    try:
        reason = str(response.json().get("reason") or "")
    except ValueError:
        reason = ""
    error = f"{status} {reason}".strip()
    retry_after = parse_retry_after(response.headers.get("Retry-After"), now=utcnow())
    if status == 410 or reason in DEACTIVATE_REASONS:
        return PushResult(PushOutcome.DEACTIVATE, NAME, error=error)
    if status == 429:
        return PushResult(PushOutcome.RETRY, NAME, error=error, retry_after=retry_after, quota=True)
    if status >= 500 or reason in TOKEN_REASONS:
        return PushResult(PushOutcome.RETRY, NAME, error=error, retry_after=retry_after)
    return PushResult(PushOutcome.FAILED, NAME, error=error)
