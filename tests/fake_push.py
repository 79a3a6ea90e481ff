"""A local push gateway speaking FCM HTTP v1 (HTTP/1.1, with Google's OAuth 2.0 token endpoint for
service accounts) and APNs (HTTP/2 only, as Apple's: `apns_url`, cleartext h2 with prior knowledge),
for the push clients and the workers.

It is the only fake in the tests: a threaded `http.server` that checks what the real gateways check
(FCM: the path and the OAuth bearer; APNs: the ES256 provider token, its key id and team, the topic and
push type), records every request it receives (counted per nudge), and answers success, or whatever
error a test scripted for a device token, as the providers document them:

    fake.script("token-1", fcm_error("UNAVAILABLE", retry_after=30), OK)
    fake.script("token-2", apns_error(410, "Unregistered"))

`hold()` keeps every answer back (requests are still counted as they arrive) until `release()`: a
test can kill a worker while its pushes are on the wire.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter, defaultdict, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt

FCM_BEARER = "test-fcm-bearer"
FCM_PROJECT = "companion-test"
APNS_KEY_ID = "TESTKEY123"
APNS_TEAM_ID = "TESTTEAM45"
APNS_TOPIC = "org.example.companion"
GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"


@dataclass(frozen=True)
class Reply:
    status: int
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)


#: Success: the default answer (the gateway fills in the message name / apns-id).
OK = Reply(200)

_FCM_STATUS = {
    "UNREGISTERED": (404, "NOT_FOUND"),
    "INVALID_ARGUMENT": (400, "INVALID_ARGUMENT"),
    "SENDER_ID_MISMATCH": (403, "PERMISSION_DENIED"),
    "QUOTA_EXCEEDED": (429, "RESOURCE_EXHAUSTED"),
    "UNAVAILABLE": (503, "UNAVAILABLE"),
    "INTERNAL": (500, "INTERNAL"),
    "THIRD_PARTY_AUTH_ERROR": (401, "UNAUTHENTICATED"),
}


def fcm_error(code: str, *, retry_after: int | str | None = None) -> Reply:
    """An FCM v1 error as the API answers it: google.rpc.Status with an FcmError detail."""
    status, rpc_status = _FCM_STATUS[code]
    body = {
        "error": {
            "code": status,
            "message": f"fake {code}",
            "status": rpc_status,
            "details": [{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": code}],
        }
    }
    return Reply(status, body, {"Retry-After": str(retry_after)} if retry_after is not None else {})


def apns_error(status: int, reason: str, *, retry_after: int | None = None) -> Reply:
    body: dict[str, Any] = {"reason": reason}
    if status == 410:
        body["timestamp"] = int(time.time() * 1000)
    return Reply(status, body, {"Retry-After": str(retry_after)} if retry_after is not None else {})


@dataclass(frozen=True)
class Received:
    provider: str  # "fcm" or "apns"
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    token: str
    nudge_id: str | None
    status: int  # what the gateway answered


class FakeGateway:
    def __init__(self, *, apns_public_key: Any = None, latency: float = 0.0, record: bool = True) -> None:
        self.apns_public_key = apns_public_key
        #: Google's OAuth token endpoint (`POST /token`): the service accounts it knows (email -> public
        #: key), the tokens it issued (token -> expiry, Unix time) and how long they live.
        self.service_accounts: dict[str, Any] = {}
        self.issued: dict[str, float] = {}
        self.token_requests = 0
        self.oauth_expires_in = 3600
        self.latency = latency
        #: False (the benchmark): keep only the count per nudge, not every request.
        self.record = record
        self.received: list[Received] = []
        self.counts: Counter[str | None] = Counter()
        self._scripts: dict[str, deque[Reply]] = defaultdict(deque)
        self._lock = threading.Lock()
        self._open = threading.Event()
        self._open.set()
        self._arrived = threading.Condition(self._lock)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._sequence = 0

    # --- control ---------------------------------------------------------------------------------

    def start(self) -> FakeGateway:
        gateway = self

        class Handler(_Handler):
            fake = gateway

        self._server = _Server(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True, name="fake-push"
        )
        self._thread.start()
        self._apns = Http2Server(self)
        return self

    def stop(self) -> None:
        self._open.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if getattr(self, "_apns", None) is not None:
            self._apns.close()

    @property
    def apns_url(self) -> str:
        """APNs: HTTP/2 only (an HTTP/1.1 request gets no answer it can read)."""
        return f"http://127.0.0.1:{self._apns.port}"

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def script(self, token: str, *replies: Reply) -> None:
        """Answer the next requests for `token` with these replies, in order; then success."""
        with self._lock:
            self._scripts[token].extend(replies)

    def hold(self) -> None:
        self._open.clear()

    def release(self) -> None:
        self._open.set()

    def clear(self) -> None:
        with self._lock:
            self.received.clear()
            self.counts.clear()
            self._scripts.clear()

    # --- what arrived ----------------------------------------------------------------------------

    def requests(self) -> list[Received]:
        with self._lock:
            return list(self.received)

    def per_nudge(self) -> Counter[str]:
        """How many requests each nudge made (all devices together)."""
        with self._lock:
            return Counter({nudge: n for nudge, n in self.counts.items() if nudge})

    def per_nudge_and_token(self) -> Counter[tuple[str | None, str]]:
        return Counter((r.nudge_id, r.token) for r in self.requests())

    def wait_for(self, count: int, timeout: float = 10.0) -> bool:
        """Until at least `count` requests arrived (True), or `timeout` passed (False)."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while len(self.received) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._arrived.wait(left)
            return True

    def settled(self, quiet: float = 0.5, timeout: float = 10.0) -> int:
        """Wait until no request arrived for `quiet` seconds; how many arrived."""
        deadline = time.monotonic() + timeout
        seen = -1
        while time.monotonic() < deadline:
            now = len(self.requests())
            if now == seen:
                return now
            seen = now
            time.sleep(quiet)
        return len(self.requests())

    # --- the protocols -----------------------------------------------------------------------------

    def _next_reply(self, token: str) -> Reply:
        with self._lock:
            queue = self._scripts.get(token)
            return queue.popleft() if queue else OK

    def _record(self, received: Received) -> None:
        with self._arrived:
            self.counts[received.nudge_id] += 1
            if self.record:
                self.received.append(received)
            self._arrived.notify_all()

    def stats(self) -> dict[str, int]:
        """Requests, distinct nudges, and how many nudges came more than once (GET /_stats)."""
        with self._lock:
            return {
                "requests": sum(self.counts.values()),
                "nudges": len(self.counts),
                "more_than_once": sum(1 for n in self.counts.values() if n > 1),
            }

    def handle_fcm(self, path: str, headers: dict[str, str], body: dict[str, Any]) -> Reply:
        parts = path.strip("/").split("/")
        if len(parts) != 4 or parts[:2] != ["v1", "projects"] or parts[3] != "messages:send":
            return Reply(404, {"error": {"code": 404, "status": "NOT_FOUND", "message": "no such method"}})
        bearer = headers.get("authorization", "").removeprefix("Bearer ")
        with self._lock:
            expiry = self.issued.get(bearer)
        if bearer != FCM_BEARER and (expiry is None or time.time() >= expiry):
            return Reply(401, {"error": {"code": 401, "status": "UNAUTHENTICATED", "message": "bad bearer"}})
        message = body.get("message") or {}
        token = message.get("token")
        if not token or not isinstance(message.get("notification"), dict):
            return fcm_error("INVALID_ARGUMENT")
        reply = self._next_reply(token)
        if reply.status == 200:
            with self._lock:
                self._sequence += 1
                name = f"projects/{parts[2]}/messages/{self._sequence}"
            return Reply(200, {"name": name})
        return reply

    def handle_token(self, form: dict[str, str]) -> Reply:
        """Google's OAuth 2.0 token endpoint for a service account's signed JWT (RFC 7523)."""
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return Reply(400, {"error": "unsupported_grant_type"})
        assertion = form.get("assertion", "")
        try:
            issuer = jwt.decode(assertion, options={"verify_signature": False}).get("iss")
            claims = jwt.decode(
                # google-auth addresses its assertion to Google's token URI wherever it posts it.
                assertion,
                self.service_accounts[issuer],
                algorithms=["RS256"],
                audience=GOOGLE_TOKEN_URI,
            )
        except (jwt.PyJWTError, KeyError):
            return Reply(400, {"error": "invalid_grant", "error_description": "bad assertion"})
        if "https://www.googleapis.com/auth/firebase.messaging" not in claims.get("scope", "").split():
            return Reply(400, {"error": "invalid_scope"})
        with self._lock:
            self.token_requests += 1
            token = f"ya29.fake-{self.token_requests}"
            self.issued[token] = time.time() + self.oauth_expires_in
        return Reply(
            200, {"access_token": token, "expires_in": self.oauth_expires_in, "token_type": "Bearer"}
        )

    def handle_apns(self, path: str, headers: dict[str, str], body: dict[str, Any]) -> Reply:
        token = path.rsplit("/", 1)[-1]
        bearer = headers.get("authorization", "")
        if not bearer.startswith("bearer "):
            return apns_error(403, "MissingProviderToken")
        try:
            header = jwt.get_unverified_header(bearer[7:])
            claims = jwt.decode(bearer[7:], self.apns_public_key, algorithms=["ES256"])
        except jwt.PyJWTError:
            return apns_error(403, "InvalidProviderToken")
        if header.get("kid") != APNS_KEY_ID or claims.get("iss") != APNS_TEAM_ID:
            return apns_error(403, "InvalidProviderToken")
        if time.time() - claims.get("iat", 0) > 3600:
            return apns_error(403, "ExpiredProviderToken")
        if headers.get("apns-topic") != APNS_TOPIC:
            return apns_error(400, "BadTopic")
        if headers.get("apns-push-type") != "alert" or "aps" not in body:
            return apns_error(400, "BadMessageId" if "aps" in body else "PayloadEmpty")
        reply = self._next_reply(token)
        if reply.status == 200:
            return Reply(200, None, {"apns-id": headers.get("apns-id", "")})
        return reply


class _Server(ThreadingHTTPServer):
    #: A real gateway takes a burst of new connections at once (a delivery task opens one per push in
    #: flight); socketserver's default backlog of 5 drops the rest, whose retries come seconds later.
    request_queue_size = 512


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    #: TCP_NODELAY: headers and body go out in two writes; with Nagle the body would wait for the
    #: client's delayed ACK (40 ms a response), as no real gateway does.
    disable_nagle_algorithm = True
    fake: FakeGateway

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        """The benchmark's controls: /_stats (counts so far) and /_reset."""
        if self.path == "/_reset":
            self.fake.clear()
        payload = json.dumps(self.fake.stats()).encode()
        self.send_response(200 if self.path in ("/_stats", "/_reset") else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if self.path == "/token":
            from urllib.parse import parse_qsl

            self._reply(self.fake.handle_token(dict(parse_qsl(raw.decode()))))
            return
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = {}
        headers = {k.lower(): v for k, v in self.headers.items()}
        if self.path.startswith("/3/device/"):  # APNs answers HTTP/2 only (`apns_url`)
            provider, token = "apns-http1", self.path.rsplit("/", 1)[-1]
            nudge_id = body.get("nudge_id")
            reply = Reply(505, {"reason": "HTTP/2 required"})
        else:
            message = body.get("message") or {}
            provider, token = "fcm", str(message.get("token"))
            nudge_id = (message.get("data") or {}).get("nudge_id")
            reply = self.fake.handle_fcm(self.path, headers, body)
        self.fake._record(Received(provider, self.path, headers, body, token, nudge_id, reply.status))
        if self.fake.latency:
            time.sleep(self.fake.latency)
        self.fake._open.wait(120)
        self._reply(reply)

    def _reply(self, reply: Reply) -> None:
        payload = json.dumps(reply.body).encode() if reply.body is not None else b""
        try:
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            if payload:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):  # the client died while we held the answer
            self.close_connection = True


def make_service_account(gateway: FakeGateway, path: Any) -> str:
    """A Firebase service account's JSON key file at `path`, whose token endpoint is the gateway's;
    the gateway knows its public key. Returns the path, as FCM_CREDENTIALS_FILE takes it."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    email = f"push-{len(gateway.service_accounts)}@{FCM_PROJECT}.iam.gserviceaccount.com"
    gateway.service_accounts[email] = private.public_key()
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    info = {
        "type": "service_account",
        "project_id": FCM_PROJECT,
        "private_key_id": "fake-key-1",
        "private_key": pem,
        "client_email": email,
        "client_id": "1",
        "token_uri": f"{gateway.url}/token",
    }
    with open(path, "w") as out:
        json.dump(info, out)
    return str(path)


def make_apns_key() -> tuple[str, Any]:
    """A fresh P-256 key: (the .p8 PEM the server signs with, the public key the fake verifies with)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    private = ec.generate_private_key(ec.SECP256R1())
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return pem, private.public_key()


class LeanFcmGateway:
    """The benchmark's gateway: FCM HTTP v1's success path only (bearer checked, message name answered,
    requests counted per nudge), on asyncio, so 100,000 pushes measure the sender, not the fake.

    Run it in a process of its own: `serve_lean(port_queue)`; `GET /_stats` and `GET /_reset` as above.
    """

    def __init__(self) -> None:
        self.counts: Counter[str | None] = Counter()
        self.sequence = 0

    def stats(self) -> dict[str, int]:
        return {
            "requests": sum(self.counts.values()),
            "nudges": len(self.counts),
            "more_than_once": sum(1 for n in self.counts.values() if n > 1),
        }

    def answer(
        self, method: bytes, path: bytes, headers: dict[bytes, bytes], body: bytes
    ) -> tuple[int, bytes]:
        if method == b"GET":
            if path == b"/_reset":
                self.counts.clear()
            return 200, json.dumps(self.stats()).encode()
        if headers.get(b"authorization") != f"Bearer {FCM_BEARER}".encode():
            return 401, b'{"error": {"code": 401, "status": "UNAUTHENTICATED"}}'
        try:
            message = json.loads(body)["message"]
            self.counts[message["data"]["nudge_id"]] += 1
        except (ValueError, KeyError, TypeError):
            return 400, b'{"error": {"code": 400, "status": "INVALID_ARGUMENT"}}'
        self.sequence += 1
        return 200, b'{"name": "projects/%s/messages/%d"}' % (path.split(b"/")[3], self.sequence)


def serve_lean(urls: Any) -> None:
    import asyncio

    gateway = LeanFcmGateway()
    reasons = {200: b"OK", 400: b"Bad Request", 401: b"Unauthorized"}

    class Protocol(asyncio.Protocol):
        def connection_made(self, transport: Any) -> None:
            self.transport = transport
            self.buffer = b""

        def data_received(self, data: bytes) -> None:
            self.buffer += data
            while True:
                end = self.buffer.find(b"\r\n\r\n")
                if end < 0:
                    return
                head = self.buffer[:end].split(b"\r\n")
                headers = {}
                for line in head[1:]:
                    name, _, value = line.partition(b":")
                    headers[name.strip().lower()] = value.strip()
                length = int(headers.get(b"content-length", b"0"))
                if len(self.buffer) < end + 4 + length:
                    return
                body = self.buffer[end + 4 : end + 4 + length]
                self.buffer = self.buffer[end + 4 + length :]
                method, path, _ = head[0].split(b" ", 2)
                status, payload = gateway.answer(method, path, headers, body)
                self.transport.write(
                    b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                    % (status, reasons[status], len(payload), payload)
                )

    async def main() -> None:
        server = await asyncio.get_running_loop().create_server(Protocol, "127.0.0.1", 0)
        urls.put(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}")
        await server.serve_forever()

    asyncio.run(main())


class Http2Server:
    """APNs's transport: HTTP/2 with prior knowledge (h2c) on a port of its own, one thread a
    connection, streams answered in the order they end. Built on the `h2` protocol library; what it
    answers is `FakeGateway.handle_apns`. `http2_requests` counts the requests that came over HTTP/2."""

    def __init__(self, fake: FakeGateway) -> None:
        import socket

        self.fake = fake
        self.http2_requests = 0
        self._sock = socket.create_server(("127.0.0.1", 0), backlog=512)
        self.port = self._sock.getsockname()[1]
        self._closed = False
        threading.Thread(target=self._accept, daemon=True, name="fake-apns-h2").start()

    def close(self) -> None:
        self._closed = True
        self._sock.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True, name="fake-apns-conn").start()

    def _serve(self, sock: Any) -> None:
        import socket

        import h2.config
        import h2.connection
        import h2.events
        import h2.exceptions

        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=False, header_encoding="utf-8")
        )
        conn.initiate_connection()
        sock.sendall(conn.data_to_send())
        streams: dict[int, tuple[dict[str, str], bytearray]] = {}
        try:
            while True:
                data = sock.recv(65536)
                if not data:
                    return
                try:
                    events = conn.receive_data(data)
                except h2.exceptions.ProtocolError:  # e.g. an HTTP/1.1 request: not APNs's protocol
                    sock.sendall(conn.data_to_send())
                    return
                for event in events:
                    if isinstance(event, h2.events.RequestReceived):
                        streams[event.stream_id] = (dict(event.headers), bytearray())
                    elif isinstance(event, h2.events.DataReceived):
                        streams[event.stream_id][1].extend(event.data)
                        conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                    elif isinstance(event, h2.events.StreamEnded):
                        headers, body = streams.pop(event.stream_id)
                        self._answer(conn, event.stream_id, headers, bytes(body))
                sock.sendall(conn.data_to_send())
        except OSError:
            return
        finally:
            sock.close()

    def _answer(self, conn: Any, stream_id: int, headers: dict[str, str], raw: bytes) -> None:
        path = headers.get(":path", "")
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = {}
        with self.fake._lock:
            self.http2_requests += 1
        if headers.get(":method") != "POST" or not path.startswith("/3/device/"):
            reply = apns_error(404, "BadPath")
        else:
            reply = self.fake.handle_apns(path, {k: v for k, v in headers.items() if k[0] != ":"}, body)
        token = path.rsplit("/", 1)[-1]
        plain = {k: v for k, v in headers.items() if k[0] != ":"}
        self.fake._record(Received("apns", path, plain, body, token, body.get("nudge_id"), reply.status))
        if self.fake.latency:
            time.sleep(self.fake.latency)
        self.fake._open.wait(120)
        payload = json.dumps(reply.body).encode() if reply.body is not None else b""
        response = [(":status", str(reply.status)), *((k.lower(), v) for k, v in reply.headers.items())]
        if payload:
            response.append(("content-type", "application/json"))
        response.append(("content-length", str(len(payload))))
        conn.send_headers(stream_id, response, end_stream=not payload)
        if payload:
            conn.send_data(stream_id, payload, end_stream=True)
