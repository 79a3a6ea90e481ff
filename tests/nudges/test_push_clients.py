"""The FCM HTTP v1 and APNs clients against the local fake gateway: each provider error, as documented
(DOMAIN.md "Delivery errors"), becomes the right next step; the provider token is a valid ES256 JWT."""

from __future__ import annotations

import random
import socket
import time
from datetime import UTC, datetime, timedelta

import jwt
import pytest

from companion.notifications import PushMessage, PushOutcome, build_channels
from companion.notifications.base import QUOTA_MIN_DELAY, parse_retry_after, retry_delay
from tests import fake_push
from tests.fake_push import OK, apns_error, fcm_error
from tests.nudges.conftest import push_settings

MESSAGE = PushMessage(nudge_id="00000000-0000-4000-8000-000000000001", title="Title", body="Body")
A, D, F, R = PushOutcome.SENT, PushOutcome.DEACTIVATE, PushOutcome.FAILED, PushOutcome.RETRY


@pytest.fixture
def fcm(channels):
    return channels.for_platform("android")


@pytest.fixture
def apns(channels):
    return channels.for_platform("ios")


def test_fcm_sends_the_v1_request_and_reads_the_message_name(fcm, gateway):
    result = fcm.send("tok-a", MESSAGE)
    assert (result.outcome, result.provider) == (A, "fcm")
    assert result.provider_message_id == f"projects/{fake_push.FCM_PROJECT}/messages/1"
    [received] = gateway.requests()
    assert received.path == f"/v1/projects/{fake_push.FCM_PROJECT}/messages:send"
    assert received.headers["authorization"] == f"Bearer {fake_push.FCM_BEARER}"
    assert received.body["message"]["token"] == "tok-a"
    assert received.body["message"]["notification"] == {"title": "Title", "body": "Body"}


@pytest.mark.parametrize(
    ("reply",                                      "outcome", "quota", "retry_after"),
    [
        (fcm_error("UNREGISTERED"),                 D,         False,   None),
        (fcm_error("SENDER_ID_MISMATCH"),           D,         False,   None),
        (fcm_error("INVALID_ARGUMENT"),             F,         False,   None),
        (fcm_error("QUOTA_EXCEEDED"),               R,         True,    None),
        (fcm_error("QUOTA_EXCEEDED", retry_after=90), R,       True,    90.0),
        (fcm_error("UNAVAILABLE", retry_after=30),  R,         False,   30.0),
        (fcm_error("UNAVAILABLE"),                  R,         False,   None),
        (fcm_error("INTERNAL"),                     R,         False,   None),
        (fcm_error("THIRD_PARTY_AUTH_ERROR"),       R,         False,   None),
    ],
)  # fmt: skip
def test_fcm_errors(fcm, gateway, reply, outcome, quota, retry_after):
    gateway.script("tok", reply)
    result = fcm.send("tok", MESSAGE)
    assert (result.outcome, result.quota, result.retry_after) == (outcome, quota, retry_after)
    assert str(reply.status) in (result.error or "")


def test_fcm_wrong_bearer_is_retried_not_dropped(gateway, tmp_path):
    made = build_channels(push_settings(gateway, tmp_path / "k.p8", COMPANION_FCM_ACCESS_TOKEN="stale"))
    result = made.for_platform("android").send("tok", MESSAGE)
    assert (result.outcome, result.error) == (R, "401 UNAUTHENTICATED")
    made.close()


def test_apns_sends_a_valid_provider_token(apns, gateway):
    result = apns.send("device-token-1", MESSAGE)
    assert (result.outcome, result.provider) == (A, "apns")
    [received] = gateway.requests()
    assert received.path == "/3/device/device-token-1"
    assert result.provider_message_id == received.headers["apns-id"]
    assert received.headers["apns-topic"] == fake_push.APNS_TOPIC
    assert received.headers["apns-push-type"] == "alert"
    assert received.headers["apns-collapse-id"] == MESSAGE.nudge_id
    bearer = received.headers["authorization"].removeprefix("bearer ")
    claims = jwt.decode(bearer, gateway.apns_public_key, algorithms=["ES256"])
    assert claims["iss"] == fake_push.APNS_TEAM_ID
    assert jwt.get_unverified_header(bearer) == {"alg": "ES256", "kid": fake_push.APNS_KEY_ID, "typ": "JWT"}
    assert received.body == {"aps": {"alert": {"title": "Title", "body": "Body"}, "sound": "default"},
                             "nudge_id": MESSAGE.nudge_id}  # fmt: skip


def test_apns_reuses_its_provider_token_then_mints_another(apns, gateway):
    apns.send("t1", MESSAGE)
    apns.send("t2", MESSAGE)
    first, second = (r.headers["authorization"] for r in gateway.requests())
    assert first == second  # Apple rate-limits new tokens: reuse for 40 minutes
    apns.provider_token._minted -= 41 * 60
    apns.send("t3", MESSAGE)
    assert gateway.requests()[-1].headers["authorization"] != first


@pytest.mark.parametrize(
    ("reply",                                            "outcome", "quota", "retry_after"),
    [
        (apns_error(410, "Unregistered"),                 D,         False,   None),
        (apns_error(400, "BadDeviceToken"),               D,         False,   None),
        (apns_error(400, "DeviceTokenNotForTopic"),       D,         False,   None),
        (apns_error(400, "BadCollapseId"),                F,         False,   None),
        (apns_error(413, "PayloadTooLarge"),              F,         False,   None),
        (apns_error(429, "TooManyRequests"),              R,         True,    None),
        (apns_error(503, "ServiceUnavailable", retry_after=20), R,   False,   20.0),
        (apns_error(500, "InternalServerError"),          R,         False,   None),
        (apns_error(403, "ExpiredProviderToken"),         R,         False,   None),
    ],
)  # fmt: skip
def test_apns_errors(apns, gateway, reply, outcome, quota, retry_after):
    gateway.script("tok", reply)
    result = apns.send("tok", MESSAGE)
    assert (result.outcome, result.quota, result.retry_after) == (outcome, quota, retry_after)


def test_apns_refused_provider_token_is_minted_again(apns, gateway):
    gateway.script("tok", apns_error(403, "ExpiredProviderToken"), OK)
    assert apns.send("tok", MESSAGE).outcome is R
    assert apns.send("tok", MESSAGE).outcome is A
    first, second = (r.headers["authorization"] for r in gateway.requests())
    assert first != second


def test_an_unreachable_or_slow_gateway_is_a_retry(gateway, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    made = build_channels(
        push_settings(
            gateway, tmp_path / "k.p8", COMPANION_FCM_BASE_URL=closed, COMPANION_PUSH_TIMEOUT_SECONDS=1
        )
    )
    result = made.for_platform("android").send("tok", MESSAGE)
    assert result.outcome is R and result.error.startswith("network:")
    made.close()
    gateway.latency = 1.5
    made = build_channels(push_settings(gateway, tmp_path / "k.p8", COMPANION_PUSH_TIMEOUT_SECONDS=1))
    started = time.monotonic()
    result = made.for_platform("ios").send("tok", MESSAGE)
    assert result.outcome is R and "Timeout" in result.error
    assert time.monotonic() - started < 1.4
    made.close()


def test_without_providers_pushes_go_to_the_log_channel():
    made = build_channels({"COMPANION_PUSH_TIMEOUT_SECONDS": 5})
    assert made.for_platform("android").name == made.for_platform("ios").name == "log"
    assert made.for_platform("android").send("tok", MESSAGE).outcome is A


@pytest.mark.parametrize(
    ("attempt", "retry_after", "quota", "low",  "high"),
    [
        (1,         None,          False,   7.5,    15.0),
        (2,         None,          False,   15.0,   30.0),
        (4,         None,          False,   60.0,   120.0),
        (12,        None,          False,   450.0,  900.0),   # capped
        (1,         None,          True,    60.0,   60.0),    # a rate limit: first retry >= 60 s
        (1,         200.0,         False,   200.0,  200.0),   # Retry-After honoured
        (3,         5.0,           False,   30.0,   60.0),    # ... but never below the backoff
    ],
)  # fmt: skip
def test_retry_delay(attempt, retry_after, quota, low, high):
    rng = random.Random(attempt)
    delays = [retry_delay(attempt, retry_after=retry_after, quota=quota, rng=rng) for _ in range(200)]
    assert low <= min(delays) and max(delays) <= high
    if quota:
        assert min(delays) >= QUOTA_MIN_DELAY


def test_retry_after_header_forms():
    now = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    assert parse_retry_after("120", now=now) == 120.0
    assert parse_retry_after("Fri, 20 Nov 2026 12:01:30 GMT", now=now) == 90.0
    assert parse_retry_after("Fri, 20 Nov 2026 11:00:00 GMT", now=now) == 0.0
    assert parse_retry_after("soon", now=now) is None
    assert parse_retry_after(None, now=now) is None
    assert now + timedelta(seconds=parse_retry_after("0", now=now)) == now
