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


# --- production transports: APNs over HTTP/2, tokens that refresh themselves -------------------------


def test_apns_speaks_http2_only(apns, gateway):
    """The fake's APNs port answers HTTP/2 only, like Apple's; the client gets through."""
    assert apns.send("device-h2", MESSAGE).outcome == A
    [received] = gateway.requests()
    assert received.provider == "apns" and gateway._apns.http2_requests == 1
    import httpx

    with httpx.Client(http2=False) as http11, pytest.raises(httpx.HTTPError):
        http11.post(f"{gateway.apns_url}/3/device/x", json={}, timeout=2)


def test_apns_provider_token_is_minted_again_before_its_hour(apns, gateway):
    import time_machine

    start = datetime.now(UTC)
    with time_machine.travel(start, tick=False):
        assert apns.send("dev", MESSAGE).outcome == A
    with time_machine.travel(start + timedelta(minutes=39), tick=False):
        assert apns.send("dev", MESSAGE).outcome == A
    with time_machine.travel(start + timedelta(minutes=59), tick=False):  # Apple refuses after 60
        assert apns.send("dev", MESSAGE).outcome == A
    tokens = [r.headers["authorization"] for r in gateway.requests()]
    assert tokens[0] == tokens[1] != tokens[2], "reused for 40 minutes, then minted again"
    issued = [jwt.decode(t[7:], options={"verify_signature": False})["iat"] for t in tokens]
    assert issued[2] - issued[0] == 59 * 60


@pytest.fixture
def fcm_oauth(gateway, tmp_path):
    credentials = fake_push.make_service_account(gateway, tmp_path / "firebase.json")
    made = build_channels(
        push_settings(
            gateway,
            tmp_path / "k.p8",
            COMPANION_FCM_ACCESS_TOKEN="",
            COMPANION_FCM_CREDENTIALS_FILE=credentials,
        )
    )
    yield made.for_platform("android")
    made.close()


def test_fcm_mints_its_bearer_from_the_service_account_and_again_after_the_hour(fcm_oauth, gateway):
    import time_machine

    start = datetime.now(UTC)
    with time_machine.travel(start, tick=False):
        assert fcm_oauth.send("tok", MESSAGE).outcome == A
        assert fcm_oauth.send("tok", MESSAGE).outcome == A
    assert gateway.token_requests == 1, "one token for both"
    with time_machine.travel(start + timedelta(minutes=61), tick=False):
        assert fcm_oauth.send("tok", MESSAGE).outcome == A  # the first token expired at 60
    assert gateway.token_requests == 2
    bearers = [r.headers["authorization"] for r in gateway.requests()]
    assert bearers == ["Bearer ya29.fake-1", "Bearer ya29.fake-1", "Bearer ya29.fake-2"]


def test_fcm_mints_again_after_a_refused_bearer(fcm_oauth, gateway):
    assert fcm_oauth.send("tok", MESSAGE).outcome == A
    gateway.issued.clear()  # FCM no longer accepts the token (revoked, or the clocks disagree)
    result = fcm_oauth.send("tok", MESSAGE)
    assert (result.outcome, result.error) == (R, "401 UNAUTHENTICATED")  # retried later, not dropped
    assert fcm_oauth.send("tok", MESSAGE).outcome == A
    assert gateway.token_requests == 2


def test_fcm_token_endpoint_down_is_a_retry(gateway, tmp_path):
    credentials = fake_push.make_service_account(gateway, tmp_path / "firebase.json")
    gateway.service_accounts.clear()  # the endpoint refuses the account's assertion
    made = build_channels(
        push_settings(gateway, tmp_path / "k.p8", COMPANION_FCM_CREDENTIALS_FILE=credentials)
    )
    result = made.for_platform("android").send("tok", MESSAGE)
    assert (result.outcome, result.error) == (R, "oauth:RefreshError")
    assert [r for r in gateway.requests() if r.provider == "fcm"] == []
    made.close()


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: 2000000\r\n\r\n",  # announced too long
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + b"100000\r\n" + b"x" * 0x100000 + b"\r\n"
        + b"10\r\n" + b"x" * 16 + b"\r\n0\r\n\r\n",  # chunks adding up past the bound
        b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + b"x" * (1024 * 1024 + 10),  # until close
    ],
)  # fmt: skip
def test_the_http1_push_client_bounds_answer_sizes(answer):
    """The hand-written HTTP/1.1 client (kept for speed: docs/performance/nudge-tick.md) never buffers a
    huge answer."""
    import asyncio
    import threading

    from companion.notifications import http1

    with socket.create_server(("127.0.0.1", 0)) as server:

        def serve() -> None:
            conn, _ = server.accept()
            with conn:
                conn.recv(65536)
                conn.sendall(answer)

        threading.Thread(target=serve, daemon=True).start()
        port = server.getsockname()[1]

        async def post() -> None:
            pool = http1.Http1Pool(f"http://127.0.0.1:{port}", timeout=5)
            try:
                await pool.post("/x", b"{}", b"Content-Type: application/json\r\n")
            finally:
                pool.close()

        with pytest.raises(http1.HttpError) as raised:
            asyncio.run(post())
    assert raised.value.kind == "ResponseTooLarge"


class ConnectProxy:
    """An HTTP proxy that only tunnels (`CONNECT host:port`), as corporate egress proxies do."""

    def __init__(self) -> None:
        import threading

        self.tunnels: list[str] = []
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        import threading

        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self._tunnel, args=(client,), daemon=True).start()

    def _tunnel(self, client: socket.socket) -> None:
        import threading

        head = b""
        while b"\r\n\r\n" not in head:
            head += client.recv(4096)
        method, target, _ = head.split(b"\r\n", 1)[0].split(b" ", 2)
        assert method == b"CONNECT"
        self.tunnels.append(target.decode())
        host, port = target.decode().rsplit(":", 1)
        upstream = socket.create_connection((host, int(port)))
        client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")

        def pipe(a: socket.socket, b: socket.socket) -> None:
            try:
                while data := a.recv(65536):
                    b.sendall(data)
            except OSError:
                pass
            finally:
                b.close()

        threading.Thread(target=pipe, args=(upstream, client), daemon=True).start()
        pipe(client, upstream)

    def close(self) -> None:
        self.server.close()


def test_the_http1_push_client_goes_through_the_environments_proxy(gateway, tmp_path, monkeypatch):
    proxy = ConnectProxy()
    try:
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.port}")
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        made = build_channels(push_settings(gateway, tmp_path / "k.p8"))
        assert made.for_platform("android").send("tok", MESSAGE).outcome == A
        made.close()
        gateway_port = gateway.url.rsplit(":", 1)[1]
        assert proxy.tunnels == [f"127.0.0.1:{gateway_port}"]
        assert len(gateway.requests()) == 1

        monkeypatch.setenv("NO_PROXY", "127.0.0.1")  # bypassed: straight to the gateway
        made = build_channels(push_settings(gateway, tmp_path / "k.p8"))
        assert made.for_platform("android").send("tok", MESSAGE).outcome == A
        made.close()
        assert len(proxy.tunnels) == 1 and len(gateway.requests()) == 2
    finally:
        proxy.close()
