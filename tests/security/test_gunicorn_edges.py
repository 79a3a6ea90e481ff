"""Under gunicorn as `companion up`, the Dockerfile and compose run it (their head limits): a request line
or header over the app's limits, and a chunked body over 1 MiB, answer the JSON envelope (issue 21,
findings 5 and 9), not gunicorn's HTML 414/400 nor a 400 `invalid_json` for a cut body."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest

from companion.supervisor import GUNICORN_HEAD_LIMITS
from tests.reliability.servers import ApiServer


@pytest.fixture
def server(tmp_path: Path, database_url: str, redis_url: str):
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "SECRET_KEY": "gunicorn-edges",
        "COMPANION_INSTANCE_PATH": str(tmp_path / "instance"),
        "SESSION_COOKIE_SECURE": "false",
    }
    api = ApiServer(tmp_path, env, workers=1)
    api.start()
    yield api
    api.stop()


def exchange(port: int, raw: bytes) -> tuple[int, dict[str, str], bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=20) as conn:
        conn.sendall(raw)
        conn.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    return int(lines[0].split()[1]), {k.lower(): v for k, v in headers.items()}, body


def envelope(status: int, headers: dict[str, str], body: bytes) -> dict:
    assert headers["content-type"].startswith("application/json"), (status, headers, body[:200])
    error = json.loads(body)["error"]
    assert error["status"] == status
    return error


def test_the_app_answers_oversized_heads_before_gunicorn(server):
    assert "--limit-request-line" in GUNICORN_HEAD_LIMITS
    line = b"GET /api/v1/sync?since=" + b"A" * 6000 + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    status, headers, body = exchange(server.port, line)
    assert status == 414 and envelope(status, headers, body)["code"] == "uri_too_long"

    pad = b"X-Pad: " + b"p" * 12000
    big_header = b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + pad + b"\r\nConnection: close\r\n\r\n"
    status, headers, body = exchange(server.port, big_header)
    assert status == 431 and envelope(status, headers, body)["code"] == "headers_too_large"


def test_a_chunked_body_over_1_mib_is_413_under_gunicorn(server):
    payload = b'{"note": "' + b"x" * (1024 * 1024 + 10) + b'"}'
    chunks = b"".join(
        b"%x\r\n%s\r\n" % (len(payload[i : i + 65536]), payload[i : i + 65536])
        for i in range(0, len(payload), 65536)
    )
    request = (
        b"POST /api/v1/auth/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n" + chunks + b"0\r\n\r\n"
    )
    status, headers, body = exchange(server.port, request)
    assert status == 413 and envelope(status, headers, body)["code"] == "payload_too_large"

    small = b'{"email": "a@example.org"}'
    request = (
        b"POST /api/v1/auth/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        + b"%x\r\n%s\r\n0\r\n\r\n"
        % (len(small), small)
    )
    status, headers, body = exchange(server.port, request)
    assert status == 422 and "password" in envelope(status, headers, body)["fields"]
