"""companion/gunicorn_worker.py under a real gunicorn: a worker with no thread free leaves new connections
to the others, and a kept-alive connection is closed after `KEEPALIVE_REQUESTS` requests."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.client import HTTPConnection
from pathlib import Path

import pytest

from companion.gunicorn_worker import KEEPALIVE_REQUESTS
from companion.supervisor import WEB_WORKER_CLASS

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server() -> Iterator[int]:
    """Two workers of one thread each, as the worker class runs in `companion up` (fewer threads)."""
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", "2", "--threads", "1",
         "--worker-class", WEB_WORKER_CLASS, "--log-level", "warning", "tests.ops.pid_app:app"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        pids: set[str] = set()
        while len(pids) < 2:  # both workers up and answering
            assert time.monotonic() < deadline, "gunicorn did not start two workers"
            try:
                pids.add(_get(port, "/"))
            except OSError:
                time.sleep(0.1)
        yield port
    finally:
        process.terminate()
        process.wait(20)


def _get(port: int, path: str) -> str:
    conn = HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        return conn.getresponse().read().decode()
    finally:
        conn.close()


def test_a_busy_worker_leaves_new_connections_to_an_idle_one(server):
    """With one worker's only thread busy, every new connection is answered by the other worker. gthread's
    own workers take a new connection whichever is first to call accept(), busy or not (so this fails
    about half the time for each of the five tries)."""
    for _ in range(5):
        slow: dict[str, str] = {}
        busy = threading.Thread(target=lambda into=slow: into.update(pid=_get(server, "/slow")))
        busy.start()
        time.sleep(0.3)  # the slow request accepted and running
        fast = _get(server, "/")
        busy.join()
        assert fast != slow["pid"]


def test_a_kept_alive_connection_is_closed_after_its_share_of_requests(server):
    conn = HTTPConnection("127.0.0.1", server, timeout=10)
    answers = []
    for _ in range(KEEPALIVE_REQUESTS):
        conn.request("GET", "/")
        response = conn.getresponse()
        response.read()
        answers.append(response.getheader("Connection"))
    conn.close()
    assert answers[:-1] == ["keep-alive"] * (KEEPALIVE_REQUESTS - 1)
    assert answers[-1] == "close"
