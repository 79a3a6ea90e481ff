"""`companion up` end to end, as a person runs it: a real process tree, stopped by one Ctrl-C.

1. Embedded servers (COMPANION_EMBEDDED=1, no DATABASE_URL/REDIS_URL): PostgreSQL and Redis from PyPI
   in a fresh instance folder, demo data, a staff sign-in, a task through the worker, then SIGINT
   stops everything it started, the embedded servers included.
2. Given servers (DATABASE_URL/REDIS_URL, as in production): a fresh database on the test PostgreSQL
   (local, or whatever tests/services.py found), and the worker consumes a task sent to Redis.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import psutil
import psycopg
import pytest
import redis as redis_lib
from celery import Celery
from psycopg import sql

from companion import runtime
from companion.broker import celery_settings
from companion.demo import COACH_EMAIL, DEMO_PASSWORD, MEMBERS
from tests import services as test_services

COMPANION = Path(sys.executable).with_name("companion")
READY_WITHIN = 60
STOPPED_WITHIN = 30
TASK_WITHIN = 30


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Up:
    """One `companion up` process, its output in files (a full pipe would block it)."""

    def __init__(self, tmp_path: Path, env: dict[str, str]):
        self.port = free_port()
        self.instance = tmp_path / "i"  # short: unix socket paths live under it
        self.out_path = tmp_path / "up.out"
        self.err_path = tmp_path / "up.err"
        self.env = {**env, "COMPANION_INSTANCE_PATH": str(self.instance), "PYTHONUNBUFFERED": "1"}
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            self.process = subprocess.Popen(
                [str(COMPANION), "up", "--port", str(self.port), "--demo"],
                env=self.env,
                cwd=self.instance.parent,
                stdout=out,
                stderr=err,
            )

    @property
    def stdout(self) -> str:
        return self.out_path.read_text(errors="replace") if self.out_path.exists() else ""

    def output(self) -> str:
        err = self.err_path.read_text(errors="replace") if self.err_path.exists() else ""
        return f"--- companion up stdout ---\n{self.stdout}\n--- stderr (last 8000 chars) ---\n{err[-8000:]}"

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def wait_ready(self) -> float:
        assert self.process is not None
        started = time.monotonic()
        last = "no answer"
        while time.monotonic() - started < READY_WITHIN:
            if self.process.poll() is not None:
                code = self.process.returncode
                pytest.fail(f"companion up exited with {code} before it was ready\n{self.output()}")
            try:
                response = httpx.get(self.url("/readyz"), timeout=2)
                if response.status_code == 200:
                    return time.monotonic() - started
                last = f"{response.status_code} {response.text}"
            except httpx.HTTPError as exc:
                last = repr(exc)
            time.sleep(0.25)
        pytest.fail(f"/readyz not 200 within {READY_WITHIN}s (last: {last})\n{self.output()}")

    def redis_url(self) -> str:
        found = re.search(r"^services: .* redis=(\S+)", self.stdout, re.M)
        assert found, f"`companion up` did not print its services\n{self.output()}"
        return found.group(1)

    def interrupt(self) -> float:
        """One Ctrl-C; the seconds until the process exited."""
        assert self.process is not None
        started = time.monotonic()
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=STOPPED_WITHIN)
        except subprocess.TimeoutExpired:
            pytest.fail(f"companion up still running {STOPPED_WITHIN}s after SIGINT\n{self.output()}")
        return time.monotonic() - started

    def markers(self) -> tuple[str, ...]:
        # gunicorn binds the port, the worker is named after it, beat and the embedded servers
        # (postgres -D, redis-server's title) name the instance folder.
        return (str(self.instance), f"127.0.0.1:{self.port}", f"companion-{self.port}@")

    def leftovers(self) -> list[psutil.Process]:
        found = []
        for process in psutil.process_iter(["pid", "cmdline"]):
            if process.pid == os.getpid():
                continue
            cmdline = " ".join(process.info["cmdline"] or [])
            if any(marker in cmdline for marker in self.markers()):
                found.append(process)
        return found

    def wait_no_leftovers(self, timeout: float = 5) -> list[str]:
        deadline = time.monotonic() + timeout
        while True:
            described = []
            for process in self.leftovers():
                with contextlib.suppress(psutil.Error):
                    described.append(f"{process.pid} {' '.join(process.cmdline())}")
            if not described or time.monotonic() > deadline:
                return described
            time.sleep(0.2)

    def kill_everything(self) -> None:
        """Whatever happened, leave nothing running: the tree first, then anything naming our instance."""
        processes: list[psutil.Process] = []
        if self.process is not None and self.process.poll() is None:
            try:
                parent = psutil.Process(self.process.pid)
                processes = [*parent.children(recursive=True), parent]
            except psutil.Error:
                pass
        processes += self.leftovers()
        for process in processes:
            with contextlib.suppress(psutil.Error):
                process.terminate()
        _gone, alive = psutil.wait_procs(processes, timeout=10)
        for process in alive:
            with contextlib.suppress(psutil.Error):
                process.kill()
        if self.process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=10)


@pytest.fixture
def make_up(tmp_path: Path) -> Iterator[Callable[[dict[str, str]], Up]]:
    started: list[Up] = []

    def make(env: dict[str, str]) -> Up:
        up = Up(tmp_path, env)
        started.append(up)
        return up

    yield make
    for up in started:
        sys.stdout.write(up.output())  # pytest shows it when the test failed
        up.kill_everything()


def base_env() -> dict[str, str]:
    # No DATABASE_URL/REDIS_URL/COMPANION_*: each test says what it wants. No pytest/xdist variables.
    def keep(name: str) -> bool:
        return name not in {"DATABASE_URL", "REDIS_URL"} and not name.startswith(("PYTEST_", "COMPANION_"))

    return {k: v for k, v in os.environ.items() if keep(k)}


def ping_through_the_worker(redis_url: str) -> float:
    """Send `system.ping` through the broker as the web side would; the seconds until the worker ran it."""
    token = uuid.uuid4().hex
    client = Celery("up-test")
    client.conf.update(celery_settings(redis_url, 1800))
    redis_client = redis_lib.Redis.from_url(redis_url)
    try:
        started = time.monotonic()
        client.send_task("system.ping", kwargs={"token": token})
        while time.monotonic() - started < TASK_WITHIN:
            if redis_client.get(f"companion:ping:{token}") == b"pong":
                return time.monotonic() - started
            time.sleep(0.2)
        pytest.fail(f"the worker did not run system.ping within {TASK_WITHIN}s")
    finally:
        client.close()
        redis_client.close()


def sign_in(up: Up, email: str, password: str) -> str:
    body = {"email": email, "password": password}
    response = httpx.post(up.url("/api/v1/auth/token"), json=body, timeout=10)
    assert response.status_code == 200, f"{email}: {response.status_code} {response.text}\n{up.output()}"
    token = response.json()["access_token"]
    assert isinstance(token, str) and token
    return token


def sign_in_with_the_printed_demo_logins(up: Up) -> None:
    stdout = up.stdout
    assert COACH_EMAIL in stdout, f"demo logins not printed\n{up.output()}"
    password = re.search(r"password for all: (\S+?)\)", stdout)
    assert password and password.group(1) == DEMO_PASSWORD, up.output()
    sign_in(up, COACH_EMAIL, password.group(1))
    # A token works across processes (any gunicorn worker): a demo member reads their own account.
    member = MEMBERS[0][0]
    assert member in stdout
    token = sign_in(up, member, password.group(1))
    me = httpx.get(up.url("/api/v1/me"), headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert me.status_code == 200, f"{me.status_code} {me.text}"
    assert me.json()["email"] == member


def stop_and_check_nothing_is_left(up: Up) -> float:
    seconds = up.interrupt()
    assert up.process is not None and up.process.returncode == 0, up.output()
    assert "stopped" in up.stdout
    left = up.wait_no_leftovers()
    assert not left, "still running after Ctrl-C:\n" + "\n".join(left)
    return seconds


def test_up_with_embedded_servers(make_up: Callable[[dict[str, str]], Up]) -> None:
    up = make_up({**base_env(), "COMPANION_EMBEDDED": "1"})
    up.start()
    ready = up.wait_ready()
    assert "embedded=postgresql, redis" in up.stdout, up.output()
    sign_in_with_the_printed_demo_logins(up)
    redis_url = up.redis_url()
    assert redis_url.startswith("unix://") and str(up.instance) in redis_url
    ping_through_the_worker(redis_url)
    stopped = stop_and_check_nothing_is_left(up)
    # The data outlives the servers, in the instance folder.
    assert (up.instance / "pgdata" / "PG_VERSION").exists()
    assert (up.instance / "redis" / "dump.rdb").exists()
    sys.stdout.write(f"embedded: ready in {ready:.1f}s, stopped in {stopped:.1f}s\n")


@pytest.fixture
def fresh_database(servers: test_services.TestServices) -> Iterator[str]:
    """companion_up_test_<pid>: created empty here, dropped after; concurrent runs never share one."""
    name = f"companion_up_test_{os.getpid()}"
    url = servers.database_url(name)
    runtime.ensure_database(url, recreate=True)
    yield url
    admin = runtime.libpq_url(servers.database_url("postgres"))
    with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def test_up_with_given_servers(
    fresh_database: str, servers: test_services.TestServices, make_up: Callable[[dict[str, str]], Up]
) -> None:
    # fresh_database first: its teardown (the DROP) then runs after make_up's (stop everything).
    # Redis database 0: the other tests take 1-15 (tests/services.py). Nothing is flushed: only the
    # ping key is ours, and it expires.
    redis_url = servers.redis_url(0)
    env = {**base_env(), "DATABASE_URL": fresh_database, "REDIS_URL": redis_url}
    env.pop("SECRET_KEY", None)  # no key given: `companion up` makes one (issue 21), never a default
    up = make_up(env)
    up.start()
    ready = up.wait_ready()
    assert "embedded=none" in up.stdout, up.output()
    key = up.instance / "secret_key"
    assert key.exists() and stat.S_IMODE(key.stat().st_mode) == 0o600, up.output()
    assert len(key.read_text().strip()) >= 48
    sign_in_with_the_printed_demo_logins(up)
    task = ping_through_the_worker(redis_url)
    stopped = stop_and_check_nothing_is_left(up)
    timings = f"ready in {ready:.1f}s, task in {task:.1f}s, stopped in {stopped:.1f}s"
    sys.stdout.write(f"given servers: {timings}\n")
