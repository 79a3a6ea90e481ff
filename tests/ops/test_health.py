"""Liveness and readiness that tell the truth (issue 24): `/healthz` is never rate-limited; `/readyz`
and `companion status` report PostgreSQL, Redis, the worker's and beat's heartbeats and the queue.

The last tests run a real worker and beat (Celery processes on the test database and Redis), stop
and kill them, and watch readiness follow.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from companion import heartbeats
from tests.isolated import run_app_script

ROOT = Path(__file__).resolve().parent.parent.parent
CELERY = Path(sys.executable).with_name("celery")
COMPANION = Path(sys.executable).with_name("companion")


def test_healthz_and_readyz_are_never_rate_limited(database_url, redis_url):
    out = run_app_script(
        """
        out["healthz"] = sorted({client.get("/healthz").status_code for _ in range(40)})
        out["readyz"] = sorted({client.get("/readyz").status_code for _ in range(40)})
        out["other"] = [client.get("/api/v1/me").status_code for _ in range(5)]
        """,
        env={"DATABASE_URL": database_url, "REDIS_URL": redis_url, "RATELIMIT_DEFAULT": "3 per minute"},
    )
    assert out["healthz"] == [200]
    assert out["readyz"] == [503]  # no worker or beat here; never a 429
    assert out["other"][-1] == 429, "the limit is on: other routes are refused past it"


def test_readyz_names_the_missing_worker_and_beat(api, redis):
    response = api.get("/readyz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["checks"] == {"postgresql": "ok", "redis": "ok", "worker": "missing", "beat": "missing"}
    assert body["failing"] == ["worker", "beat"]
    assert body["queue_depth"] == 0


def test_readyz_200_with_fresh_heartbeats_and_503_naming_the_stale_one(api, redis):
    now = time.time()
    heartbeats.write_worker(redis, "celery@a", now - 5)
    heartbeats.write_beat(redis, now - 10)
    response = api.get("/readyz")
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["status"] == "ready" and body["failing"] == []
    assert body["heartbeats"]["worker"]["alive"] == 1
    assert 4 <= body["heartbeats"]["worker"]["age_seconds"] < 60

    heartbeats.write_beat(redis, now - 181)  # 3 minutes and a second
    response = api.get("/readyz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["failing"] == ["beat"] and body["checks"]["beat"] == "stale"
    assert body["heartbeats"]["beat"]["age_seconds"] >= 181

    heartbeats.write_beat(redis, now)
    heartbeats.write_worker(redis, "celery@a", now - 200)
    body = api.get("/readyz").get_json()
    assert body["failing"] == ["worker"] and body["checks"]["worker"] == "stale"
    heartbeats.write_worker(redis, "celery@b", now)  # a second worker is alive: ready
    body = api.get("/readyz").get_json()
    assert body["failing"] == [] and body["heartbeats"]["worker"]["alive"] == 1


def test_readyz_reports_the_queue_depth(api, redis):
    heartbeats.write_worker(redis, "celery@a", time.time())
    heartbeats.write_beat(redis, time.time())
    for n in range(3):
        redis.lpush("celery", json.dumps({"n": n}))
    redis.lpush(f"celery{chr(6)}{chr(0x16)}9", "{}")  # a message at another priority step
    assert api.get("/readyz").get_json()["queue_depth"] == 4


def test_companion_status_prints_the_same(app, redis, monkeypatch):
    from companion.cli import main

    monkeypatch.setenv("DATABASE_URL", app.config["DATABASE_URL"])
    monkeypatch.setenv("REDIS_URL", app.config["REDIS_URL"])
    runner = CliRunner()
    result = runner.invoke(main, ["status"])
    assert result.exit_code == 1, result.output
    assert "worker      missing" in result.output and "NOT READY: worker, beat" in result.output

    heartbeats.write_worker(redis, "celery@a", time.time() - 42)
    heartbeats.write_beat(redis, time.time())
    result = runner.invoke(main, ["status"])
    assert result.exit_code == 0, result.output
    assert "postgresql  ok" in result.output and "redis       ok" in result.output
    assert re.search(r"worker      ok \(last heartbeat 4\d s ago, 1 alive\)", result.output), result.output
    assert result.output.rstrip().endswith("ready")
    result = runner.invoke(main, ["status", "--json"])
    assert result.exit_code == 0 and json.loads(result.output)["status"] == "ready"


def test_companion_version():
    result = subprocess.run([str(COMPANION), "--version"], capture_output=True, text=True, timeout=60)
    from importlib.metadata import version

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"companion, version {version('companion')}"


# --- with a real worker and beat ------------------------------------------------------------------

STALE = 6  # seconds: HEARTBEAT_STALE_SECONDS for these processes and the app under test


class Celery:
    """A worker or beat process of our own, in its own process group, its output in a file."""

    def __init__(self, folder: Path, env: dict[str, str], *args: str) -> None:
        self.out = folder / f"{args[0]}-{uuid.uuid4().hex[:6]}.out"
        with open(self.out, "wb") as out:
            self.process = subprocess.Popen(
                [str(CELERY), "-A", "workers.celery_app", *args],
                env=env,
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def signal(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, sig)

    def wait(self, timeout: float = 30) -> None:
        self.process.wait(timeout)

    def output(self) -> str:
        return self.out.read_text(errors="replace")[-4000:]


@pytest.fixture
def processes(database_url, redis_url, tmp_path) -> Iterator:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "COMPANION_"))}
    env.update(
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        HEARTBEAT_STALE_SECONDS=str(STALE),
        COMPANION_INSTANCE_PATH=str(tmp_path),
        PYTHONUNBUFFERED="1",
    )
    started: list[Celery] = []

    def start(kind: str) -> Celery:
        if kind == "worker":
            args = ["worker", "--loglevel=INFO", "--concurrency=1", "--without-gossip", "--without-mingle",
                    "-n", f"health-{uuid.uuid4().hex[:6]}@%h"]  # fmt: skip
        else:
            schedule = str(tmp_path / f"beat-{uuid.uuid4().hex[:6]}")
            args = ["beat", "--loglevel=INFO", "-s", schedule, "--pidfile="]
        started.append(Celery(tmp_path, env, *args))
        return started[-1]

    yield start
    for process in started:
        process.signal(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(10)


def wait_for(api, predicate, what: str, processes_started=(), timeout: float = 45) -> dict:
    deadline = time.monotonic() + timeout
    body: dict = {}
    while time.monotonic() < deadline:
        response = api.get("/readyz")
        body = {"status_code": response.status_code, **response.get_json()}
        if predicate(body):
            return body
        time.sleep(0.3)
    logs = "\n".join(p.output() for p in processes_started)
    raise AssertionError(f"readiness never showed {what}: {body}\n{logs}")


def test_readiness_follows_the_worker_and_beat(app, api, processes, monkeypatch):
    monkeypatch.setitem(app.config, "COMPANION_HEARTBEAT_STALE_SECONDS", STALE)
    worker, beat = processes("worker"), processes("beat")
    seen = (worker, beat)
    wait_for(api, lambda b: b["status_code"] == 200, "ready", seen)

    # A worker stopped cleanly (warm shutdown) takes its heartbeat with it: 503 at once, naming it.
    started = time.monotonic()
    worker.signal(signal.SIGTERM)
    worker.wait()
    body = wait_for(api, lambda b: b["status_code"] == 503, "503 after the worker stopped", seen, timeout=5)
    assert body["failing"] == ["worker"] and body["checks"]["worker"] == "missing", body
    assert time.monotonic() - started < 15

    # Back: ready again.
    worker = processes("worker")
    seen = (worker, beat)
    wait_for(api, lambda b: b["status_code"] == 200, "ready with the new worker", seen)

    # Killed (no goodbye): stale once its heartbeat is older than the window.
    worker.signal(signal.SIGKILL)
    worker.wait()
    body = wait_for(api, lambda b: b["status_code"] == 503, "503 once the killed worker", seen, STALE * 3)
    assert body["failing"] == ["worker"] and body["checks"]["worker"] == "stale", body

    # Beat stopped: named on its own, the (new) worker still fine.
    worker = processes("worker")
    seen = (worker, beat)
    wait_for(api, lambda b: b["status_code"] == 200, "ready again", seen)
    beat.signal(signal.SIGKILL)
    beat.wait()
    body = wait_for(api, lambda b: b["status_code"] == 503, "503 after beat was killed", seen, STALE * 3)
    assert body["failing"] == ["beat"] and body["checks"]["beat"] == "stale", body


def test_the_container_probe_checks_this_process_heartbeat(app, redis, redis_url, monkeypatch, capsys):
    from companion import probe

    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("HEARTBEAT_STALE_SECONDS", "180")
    assert probe.main(["worker", "--node", "celery@box1"]) == 1
    assert "celery@box1: no heartbeat" in capsys.readouterr().err
    heartbeats.write_worker(redis, "celery@box1", time.time() - 10)
    heartbeats.write_worker(redis, "celery@box2", time.time() - 500)
    assert probe.main(["worker", "--node", "celery@box1"]) == 0
    assert probe.main(["worker", "--node", "celery@box2"]) == 1  # another container's worker is stale
    assert "last heartbeat 500 s ago" in capsys.readouterr().err
    assert probe.main(["beat"]) == 1
    heartbeats.write_beat(redis, time.time())
    assert probe.main(["beat"]) == 0
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")
    assert probe.main(["beat"]) == 1


# --- create-staff without the password on the command line ----------------------------------------


def _staff_cli(app, monkeypatch, args: list[str], stdin: str):
    from companion.cli import main

    monkeypatch.setenv("DATABASE_URL", app.config["DATABASE_URL"])
    monkeypatch.setenv("REDIS_URL", app.config["REDIS_URL"])
    return CliRunner().invoke(main, ["create-staff", "--role", "coach", *args], input=stdin)


def _signs_in(api, email: str, password: str) -> bool:
    return api.post("/auth/token", {"email": email, "password": password}).status_code == 200


def test_create_staff_prompts_for_the_password_twice_hidden(app, api, monkeypatch):
    email = f"coach-{uuid.uuid4().hex[:8]}@example.org"
    secret = "prompted password 1"
    result = _staff_cli(app, monkeypatch, ["--email", email], f"{secret}\n{secret}\n")
    assert result.exit_code == 0, result.output
    assert "Password:" in result.output and "Repeat for confirmation:" in result.output
    assert secret not in result.output, "the prompt hides what is typed"
    assert _signs_in(api, email, secret)


def test_create_staff_prompt_refuses_a_mismatch(app, api, monkeypatch):
    email = f"coach-{uuid.uuid4().hex[:8]}@example.org"
    result = _staff_cli(app, monkeypatch, ["--email", email], "first password 1\nsecond password 2\n")
    assert result.exit_code != 0 and "do not match" in result.output.lower()
    assert not _signs_in(api, email, "first password 1")


def test_create_staff_reads_the_password_from_stdin(app, api, monkeypatch):
    email = f"coach-{uuid.uuid4().hex[:8]}@example.org"
    result = _staff_cli(app, monkeypatch, ["--email", email, "--password-stdin"], "piped password 1\n")
    assert result.exit_code == 0, result.output
    assert "Password:" not in result.output
    assert _signs_in(api, email, "piped password 1")
    both = _staff_cli(
        app, monkeypatch, ["--email", "x@example.org", "--password-stdin", "--password", "p"], ""
    )
    assert both.exit_code == 2 and "not both" in both.output
    empty = _staff_cli(app, monkeypatch, ["--email", "y@example.org", "--password-stdin"], "")
    assert empty.exit_code == 2 and "held no password" in empty.output
