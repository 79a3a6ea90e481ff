"""Firebase Cloud Messaging HTTP v1: `POST {base}/v1/projects/{project}/messages:send`, a message a request.

The OAuth 2.0 bearer token (scope firebase.messaging) is minted from a service account by google-auth
(`FCM_CREDENTIALS_FILE`) and minted again before its hour is up, or after FCM refused it (401); the
mint runs off the push event loop. A static `FCM_ACCESS_TOKEN` is still accepted for a short trial:
it stops working after its hour. Errors, as FCM reports
them (`error.status` and the FcmError `errorCode` in `error.details`), map to what to do next:
UNREGISTERED / 404 (and SENDER_ID_MISMATCH: the token belongs to another project) deactivate the
device; INVALID_ARGUMENT / 400 is never retried; QUOTA_EXCEEDED / 429 backs off at least 60 s;
UNAVAILABLE / INTERNAL / 503 / 500 honour Retry-After with jittered exponential backoff; a bad bearer
(401) is retried, so a rotated token recovers.

Requests go over `http1.Http1Pool` on the process's push event loop: `push` is the coroutine the
delivery task runs many of at once, `send` waits for one (docs/performance/nudge-tick.md: httpx cost
20x the CPU).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import threading
from typing import Any

import orjson

from companion.db import utcnow
from companion.notifications import http1
from companion.notifications.base import PushMessage, PushOutcome, PushResult, parse_retry_after

log = logging.getLogger(__name__)

NAME = "fcm"
DEACTIVATE_CODES = frozenset({"UNREGISTERED", "SENDER_ID_MISMATCH"})
QUOTA_CODES = frozenset({"QUOTA_EXCEEDED", "RESOURCE_EXHAUSTED"})
TRANSIENT_CODES = frozenset({"UNAVAILABLE", "INTERNAL", "THIRD_PARTY_AUTH_ERROR", "UNAUTHENTICATED"})


def payload(token: str, message: PushMessage, *, now_epoch: int) -> dict[str, Any]:
    """The request body: the template texts and the nudge id, nothing else."""
    android: dict[str, Any] = {"priority": "high", "collapse_key": message.nudge_id}
    if message.expires_epoch is not None:
        android["ttl"] = f"{max(0, message.expires_epoch - now_epoch)}s"  # not delivered once expired
    return {
        "message": {
            "token": token,
            "notification": {"title": message.title, "body": message.body},
            "data": {"nudge_id": message.nudge_id},
            "android": android,
        }
    }


SCOPE = "https://www.googleapis.com/auth/firebase.messaging"


def _header_safe(token: str) -> str:
    if any(c in token for c in "\r\n"):
        raise ValueError("an FCM access token with a line break cannot go in a header")
    return token


class StaticBearer:
    """A token given in the settings (FCM_ACCESS_TOKEN): never refreshed, so good for an hour."""

    def __init__(self, token: str) -> None:
        self._token = _header_safe(token)

    def current(self) -> str | None:
        return self._token

    def refresh(self) -> str:
        return self._token

    def invalidate(self, used: str) -> None:
        pass


class ServiceAccountBearer:
    """OAuth 2.0 access tokens for a service account (google-auth): `current()` is None once the token
    is within google-auth's refresh margin of its expiry (or refused), and `refresh()` mints another
    from the account's token endpoint (over `requests`: proxies from the environment, a timeout)."""

    def __init__(self, credentials_file: str, *, timeout: float) -> None:
        from google.oauth2 import service_account

        self._credentials = service_account.Credentials.from_service_account_file(
            credentials_file, scopes=[SCOPE]
        )
        self._timeout = timeout
        self._lock = threading.Lock()

    def current(self) -> str | None:
        credentials = self._credentials
        return credentials.token if credentials.valid else None

    def refresh(self) -> str:
        import google.auth.transport.requests

        with self._lock:  # one mint for every push waiting on it
            if not self._credentials.valid:
                request = google.auth.transport.requests.Request()
                self._credentials.refresh(functools.partial(request, timeout=self._timeout))
            return _header_safe(self._credentials.token)

    def invalidate(self, used: str) -> None:
        with self._lock:
            if self._credentials.token == used:
                self._credentials.token = None  # not valid: the next push mints another


class FcmChannel:
    name = NAME

    def __init__(
        self,
        *,
        project_id: str,
        base_url: str,
        timeout: float,
        access_token: str = "",
        credentials_file: str = "",
    ) -> None:
        self.base_url, self.timeout = base_url, timeout
        self.path = f"/v1/projects/{project_id}/messages:send"
        self.bearer: StaticBearer | ServiceAccountBearer = (
            ServiceAccountBearer(credentials_file, timeout=timeout)
            if credentials_file
            else StaticBearer(access_token)
        )
        self._pool: http1.Http1Pool | None = None
        self._pool_pid = 0

    def _connections(self) -> http1.Http1Pool:
        """This process's connections (a forked child's own: sockets must not be shared)."""
        if self._pool is None or self._pool_pid != os.getpid():
            self._pool = http1.Http1Pool(self.base_url, timeout=self.timeout)
            self._pool_pid = os.getpid()
        return self._pool

    async def push(self, token: str, message: PushMessage) -> PushResult:
        """Send one message (on the push event loop)."""
        body = orjson.dumps(payload(token, message, now_epoch=int(utcnow().timestamp())))
        bearer = self.bearer.current()
        if bearer is None:
            try:
                bearer = await asyncio.get_running_loop().run_in_executor(None, self.bearer.refresh)
            except Exception as exc:  # google-auth's RefreshError / TransportError: our side, retried
                log.warning("fcm token not minted", extra={"error": type(exc).__name__})
                return PushResult(PushOutcome.RETRY, NAME, error=f"oauth:{type(exc).__name__}")
        headers = f"Authorization: Bearer {bearer}\r\nContent-Type: application/json\r\n".encode()
        try:
            response = await self._connections().post(self.path, body, headers)
        except http1.HttpError as exc:  # timeouts and connection failures: transient
            return PushResult(PushOutcome.RETRY, NAME, error=f"network:{exc.kind}")
        if response.status_code == 401:
            self.bearer.invalidate(bearer)
        return classify(response)

    def send(self, token: str, message: PushMessage) -> PushResult:
        return http1.event_loop().run(self.push(token, message))

    def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None and self._pool_pid == os.getpid():
            http1.event_loop().loop.call_soon_threadsafe(pool.close)


def _error_code(response: http1.Response) -> str | None:
    try:
        error = response.json().get("error") or {}
    except ValueError:
        return None
    for detail in error.get("details") or []:
        if isinstance(detail, dict) and detail.get("errorCode"):
            return str(detail["errorCode"])
    status = error.get("status")
    return str(status) if status else None


def classify(response: http1.Response) -> PushResult:
    status = response.status_code
    if status == 200:
        try:
            name = response.json().get("name")
        except ValueError:
            name = None
        return PushResult(PushOutcome.SENT, NAME, provider_message_id=name)
    code = _error_code(response)
    error = f"{status} {code}" if code else str(status)
    retry_after = parse_retry_after(response.headers.get("retry-after"), now=utcnow())
    if code in DEACTIVATE_CODES or status == 404:
        return PushResult(PushOutcome.DEACTIVATE, NAME, error=error)
    if code in QUOTA_CODES or status == 429:
        return PushResult(PushOutcome.RETRY, NAME, error=error, retry_after=retry_after, quota=True)
    if code in TRANSIENT_CODES or status >= 500 or status == 401:
        return PushResult(PushOutcome.RETRY, NAME, error=error, retry_after=retry_after)
    return PushResult(PushOutcome.FAILED, NAME, error=error)  # INVALID_ARGUMENT / 400 and other 4xx
