"""`/metrics` (issue 24): protected by a bearer token, never rate-limited, counting real requests,
writes and sync items; heartbeats, queue depth and export jobs read at scrape time; gunicorn's workers
added up (multiprocess mode), and the Celery worker's own port counting the tasks it ran."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from companion import heartbeats
from tests.isolated import run_app_script
from tests.nudges.processes import wait_until_worker_runs_tasks
from tests.ops.metrics_scrape import value

ROOT = Path(__file__).resolve().parent.parent.parent
TOKEN = "metrics-test-token-0123456789"


@pytest.fixture
def scrape(app, api, monkeypatch):
    monkeypatch.setitem(app.config, "COMPANION_METRICS_TOKEN", TOKEN)

    def get() -> str:
        response = api.client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        assert response.status_code == 200, response.data
        assert response.content_type.startswith("text/plain; version=")
        return response.get_data(as_text=True)

    return get


def test_metrics_are_off_without_a_token(api):
    response = api.get("/metrics")
    assert response.status_code == 404


def test_metrics_refuse_a_missing_or_wrong_token(app, client, register, monkeypatch):
    monkeypatch.setitem(app.config, "COMPANION_METRICS_TOKEN", TOKEN)
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer nope"}).status_code == 401
    member = register()  # a member's own bearer token is not the scrape's
    assert client.get("/metrics", headers={"Authorization": f"Bearer {member.token}"}).status_code == 401


def test_requests_writes_and_sync_items_are_counted(scrape, register):
    before = scrape()
    member = register()
    craving = {"id": str(uuid.uuid4()), "recorded_at": datetime.now(UTC).isoformat(), "intensity": 4}
    assert member.post("/cravings", craving).status_code == 201
    assert member.get("/me").status_code == 200
    items = [
        {"type": "craving", "data": {**craving, "id": str(uuid.uuid4())}},
        {"type": "craving", "data": craving},  # the same one again: unchanged
        {"type": "craving", "data": {"id": "nope"}},
        {"type": "teleport", "data": {}},
    ]
    results = member.post("/sync", {"items": items}).get_json()["results"]
    statuses = [r["status"] for r in results]
    after = scrape()

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    route = "/api/v1/cravings"
    assert delta("companion_http_requests_total", method="POST", route=route, status="201") == 1
    assert delta("companion_http_request_duration_seconds_count", method="POST", route=route) == 1
    assert delta("companion_http_requests_total", method="GET", route="/api/v1/me", status="200") == 1
    assert delta("companion_writes_accepted_total", route=route) == 1
    assert delta("companion_writes_accepted_total", route="/api/v1/sync") == 1
    assert delta("companion_writes_accepted_total", route="/api/v1/me") == 0  # a read
    assert delta("companion_sync_items_total", type="craving", result=statuses[0]) >= 1
    assert delta("companion_sync_items_total", type="craving", result="invalid") == 1
    assert delta("companion_sync_items_total", type="unknown", result="invalid") == 1
    assert delta("companion_sync_items_total") == 4


def test_heartbeats_queue_and_export_jobs_are_read_at_scrape_time(scrape, redis):
    now = time.time()
    heartbeats.write_worker(redis, "celery@a", now - 30)
    heartbeats.write_beat(redis, now - 5)
    redis.lpush("celery", "{}", "{}")
    text = scrape()
    assert value(text, "companion_heartbeat_timestamp_seconds", process="worker") == pytest.approx(
        now - 30, 1
    )
    assert 4 <= value(text, "companion_heartbeat_age_seconds", process="beat") < 60
    assert value(text, "companion_queue_depth", queue="celery") == 2
    assert value(text, "companion_workers_seen") == 1
    assert value(text, "companion_dependency_up", dependency="redis") == 1
    assert value(text, "companion_dependency_up", dependency="postgresql") == 1
    assert {"queued", "running", "done", "failed"} <= {
        dict(labels)["state"]
        for (name, labels) in __import__("tests.ops.metrics_scrape").ops.metrics_scrape.samples(text)
        if name == "companion_export_jobs"
    }


def test_metrics_are_never_rate_limited(database_url, redis_url):
    out = run_app_script(
        f"""
        headers = {{"Authorization": "Bearer {TOKEN}"}}
        out["metrics"] = sorted({{client.get("/metrics", headers=headers).status_code for _ in range(30)}})
        """,
        env={
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "RATELIMIT_DEFAULT": "3 per minute",
            "METRICS_TOKEN": TOKEN,
        },
    )
    assert out["metrics"] == [200]


# --- real processes: gunicorn's workers added up, the Celery worker's own port ---------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _env(database_url: str, redis_url: str, folder: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "COMPANION_"))}
    env.update(DATABASE_URL=database_url, REDIS_URL=redis_url, COMPANION_INSTANCE_PATH=str(folder))
    env.update(PYTHONUNBUFFERED="1", METRICS_TOKEN=TOKEN, **extra)
    return env


@contextlib.contextmanager
def process(command: list[str], env: dict[str, str], out: Path):
    with open(out, "wb") as sink:
        child = subprocess.Popen(command, env=env, cwd=ROOT, stdout=sink, stderr=subprocess.STDOUT,
                                 start_new_session=True)  # fmt: skip
    try:
        yield child
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGTERM)
        try:
            child.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait(10)


def wait_http(url: str, child: subprocess.Popen, out: Path, timeout: float = 60, **kw) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child.poll() is not None:
            break
        with contextlib.suppress(httpx.HTTPError):
            return httpx.get(url, timeout=3, **kw)
        time.sleep(0.3)
    raise AssertionError(f"{url} never answered:\n{out.read_text(errors='replace')[-5000:]}")


def workers_that_counted(folder: Path, route: str) -> dict[str, float]:
    """pid -> the requests to `route` that process counted, from its own file in the folder."""
    from prometheus_client.mmap_dict import MmapedDict

    found = {}
    for path in folder.glob("counter_*.db"):
        n = sum(
            v
            for key, v, *_ in MmapedDict.read_all_values_from_file(str(path))
            if "companion_http_requests_total" in key and f'"{route}"' in key
        )
        if n:
            found[path.stem.rsplit("_", 1)[-1]] = n
    return found


def test_gunicorn_workers_are_added_up_and_log_json(database_url, redis_url, tmp_path):
    folder = tmp_path / "prom"
    folder.mkdir()
    (folder / "counter_999999.db").write_bytes(b"stale from an earlier run")  # emptied at start
    port = free_port()
    out = tmp_path / "gunicorn.out"
    gunicorn = Path(sys.executable).with_name("gunicorn")
    command = [str(gunicorn), "--config", "python:companion.gunicorn_conf", "--workers", "2",
               "--bind", f"127.0.0.1:{port}", "companion.wsgi:app"]  # fmt: skip
    env = _env(database_url, redis_url, tmp_path, PROMETHEUS_MULTIPROC_DIR=str(folder))
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with process(command, env, out) as child:
        wait_http(f"http://127.0.0.1:{port}/healthz", child, out)
        assert not (folder / "counter_999999.db").exists()
        # Each worker writes its file when it has loaded the app (an unlabelled counter): both up.
        deadline = time.monotonic() + 60
        while len(list(folder.glob("counter_*.db"))) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        base = f"http://127.0.0.1:{port}"

        def probe(_: int) -> list[int]:
            with httpx.Client(base_url=base) as web:  # one connection each, held: six at once
                return [web.get("/healthz").status_code for _ in range(10)]

        with ThreadPoolExecutor(6) as pool:
            statuses = [s for batch in pool.map(probe, range(6)) for s in batch]
        assert statuses == [200] * 60
        text = httpx.get(f"{base}/metrics", headers=auth, timeout=10).text
        answered = workers_that_counted(folder, "/healthz")
        assert len(answered) >= 2, f"one worker answered everything: {answered}"
        healthz = value(text, "companion_http_requests_total", route="/healthz", status="200")
        logged = sum(entry.get("route") == "/healthz" for entry in _json_lines(out))
        # Every request any worker answered is counted once: as many as the app's own request log
        # lines (the probes while waiting for the start, some given up by the client, included).
        assert healthz == logged >= 60, (healthz, logged)
        assert sum(answered.values()) == healthz
    lines = [line for line in out.read_text().splitlines() if line.strip()]
    assert all(line.startswith("{") for line in lines), "\n".join(line for line in lines if line[0] != "{")
    assert any(entry.get("logger") == "gunicorn.error" for entry in _json_lines(out)), out.read_text()[-3000:]


def _json_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]


def test_the_worker_serves_its_own_task_metrics(database_url, redis_url, tmp_path):
    port = free_port()
    folder = tmp_path / "prom"
    out = tmp_path / "worker.out"
    celery = Path(sys.executable).with_name("celery")
    command = [str(celery), "-A", "workers.celery_app", "--quiet", "worker", "--loglevel=INFO",
               "--concurrency=2", "--without-gossip", "--without-mingle",
               "-n", f"metrics-{uuid.uuid4().hex[:6]}@%h"]  # fmt: skip
    env = _env(
        database_url, redis_url, tmp_path,
        PROMETHEUS_MULTIPROC_DIR=str(folder), WORKER_METRICS_BIND=f"127.0.0.1:{port}",
    )  # fmt: skip
    with process(command, env, out) as child:
        for _ in range(3):
            wait_until_worker_runs_tasks(redis_url, timeout=60)
        response = wait_http(f"http://127.0.0.1:{port}/metrics", child, out)
        text = response.text
        assert value(text, "companion_celery_tasks_total", task="system.ping", state="SUCCESS") == 3, text
        assert value(text, "companion_celery_task_duration_seconds_count", task="system.ping") == 3
    lines = [line for line in out.read_text().splitlines() if line.strip()]
    plain = [line for line in lines if not line.startswith("{")]
    # Celery prints its shutdown notice from a signal handler (no logging there); everything else is JSON.
    assert all("shutdown" in line for line in plain), plain
