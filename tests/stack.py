"""The whole system as production runs it, for end-to-end tests and bench/flag_latency.py: `companion up`
(gunicorn, a prefork Celery worker, beat) on a given PostgreSQL database and a private Redis of its own,
which a test may stop and start; members and staff driven over HTTP like the phone app and the dashboard.

Never the machine's shared Redis: the private one is ours alone (tests/nudges/processes.py).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from tests.nudges.processes import ROOT, PrivateRedis, free_port, wait_until_worker_runs_tasks

COMPANION = Path(sys.executable).with_name("companion")
PASSWORD = "correct horse battery"


class Stack:
    """`companion up --port P` on `database_url` and a private Redis; its output in `folder/up.out`."""

    def __init__(self, folder: Path, database_url: str, **env: str) -> None:
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.redis = PrivateRedis(folder / "redis")
        self.database_url = database_url
        self.port = free_port()
        self.out = folder / "up.out"
        self.extra_env = env
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        keep = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "COMPANION_"))}
        return {
            **keep,
            "DATABASE_URL": self.database_url,
            "REDIS_URL": self.redis.url,
            "COMPANION_INSTANCE_PATH": str(self.folder / "i"),
            "LOG_LEVEL": "INFO",
            "PYTHONUNBUFFERED": "1",
            # Many members register and sign in from one address here, as no real phone does.
            "RATELIMIT_DEFAULT": "100000 per minute",
            "RATELIMIT_REGISTER": "100000 per minute",
            "RATELIMIT_LOGIN": "100000 per minute",
            **self.extra_env,
        }

    def start(self, timeout: float = 120) -> None:
        self.redis.start()
        with open(self.out, "ab") as out:
            self.process = subprocess.Popen(
                [str(COMPANION), "up", "--port", str(self.port)],
                env=self.env(), cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"companion up exited with {self.process.returncode}\n{self.output()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.base_url}/readyz", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"companion up not ready within {timeout}s\n{self.output()}")
            time.sleep(0.25)
        wait_until_worker_runs_tasks(self.redis.url, timeout=max(10.0, deadline - time.monotonic()))

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(40)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(10)
        self.redis.stop()

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def output(self, tail: int = 12000) -> str:
        return self.out.read_text(errors="replace")[-tail:] if self.out.exists() else ""

    def log_records(self) -> Iterator[dict[str, Any]]:
        """The JSON log lines of every process `companion up` ran (the app, the worker, beat)."""
        if not self.out.exists():
            return
        for line in self.out.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                with contextlib.suppress(ValueError):
                    yield json.loads(line)

    def scans_of(self, member_id: str) -> int:
        """Safety scans run for the member so far (the worker logs one line a scan, with its counts)."""
        return sum(
            1
            for r in self.log_records()
            if r.get("event") == "safety scan" and r.get("member_id") == member_id and "opened" in r
        )

    def http(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=f"{self.base_url}/api/v1", headers=headers, timeout=30)


def staff_token(stack: Stack, create: Callable[[str, str], None], role: str) -> str:
    """A staff account made by `create(role, email)` (in-process, on the same database), signed in."""
    email = f"{role}-{uuid.uuid4().hex[:8]}@staff.example.org"
    create(role, email)
    with stack.http() as http:
        r = http.post("/auth/token", json={"email": email, "password": PASSWORD})
        r.raise_for_status()
        return r.json()["access_token"]


class Phone:
    """One member's phone: registers, then writes through the API like the app does."""

    def __init__(self, stack: Stack, zone: str = "America/New_York") -> None:
        self.stack = stack
        self.zone = zone
        with stack.http() as http:
            r = http.post(
                "/auth/register",
                json={
                    "email": f"member-{uuid.uuid4().hex[:10]}@example.org",
                    "password": PASSWORD,
                    "timezone": zone,
                    "goal": {"type": "abstain"},
                },
            )
            r.raise_for_status()
        body = r.json()
        self.id: str = body["member"]["id"]
        self.http = stack.http(body["access_token"])

    def today(self) -> str:
        from zoneinfo import ZoneInfo

        return datetime.now(UTC).astimezone(ZoneInfo(self.zone)).date().isoformat()

    def craving(self, intensity: int = 4) -> httpx.Response:
        body = {"id": str(uuid.uuid4()), "recorded_at": datetime.now(UTC).isoformat(), "intensity": intensity}
        return self.http.post("/cravings", json=body)

    def breath(self, g_dl: str = "0.000") -> httpx.Response:
        body = {"id": str(uuid.uuid4()), "measured_at": datetime.now(UTC).isoformat(), "bac_g_dl": g_dl}
        return self.http.post("/bac-readings", json=body)

    def drinks(self, standard_drinks: str) -> httpx.Response:
        return self.http.put(f"/drink-logs/{self.today()}", json={"standard_drinks": standard_drinks})

    def sync(self, items: list[dict[str, Any]]) -> httpx.Response:
        return self.http.post("/sync", json={"items": items})

    def sync_items(self, cravings: int, drinks: str) -> list[dict[str, Any]]:
        """`cravings` craving items, then today's drink log."""
        now = datetime.now(UTC).isoformat()
        items: list[dict[str, Any]] = [
            {"type": "craving", "data": {"id": str(uuid.uuid4()), "recorded_at": now, "intensity": 3}}
            for _ in range(cravings)
        ]
        items.append({"type": "drink_log", "data": {"date": self.today(), "standard_drinks": drinks}})
        return items

    def close(self) -> None:
        self.http.close()


def start_disulfiram(stack: Stack, staff_token: str, phone: Phone) -> None:
    """A disulfiram plan from the member's today, written by staff (an admin, or their coach) through
    the API: from now on any drink logged is the urgent pattern `disulfiram_with_drinking`."""
    with stack.http(staff_token) as http:
        r = http.post(
            f"/coach/members/{phone.id}/medication-plans",
            json={"medication": "disulfiram", "dose_mg": 250, "times": ["08:00"]},
        )
        r.raise_for_status()


def flagged(stack: Stack, admin_token: str, rule: str) -> dict[str, datetime]:
    """Member id -> when this call saw their open flag of `rule` in `GET /coach/flags` (every page)."""
    seen: dict[str, datetime] = {}
    cursor = None
    with stack.http(admin_token) as http:
        while True:
            params = {"limit": 100, **({"cursor": cursor} if cursor else {})}
            r = http.get("/coach/flags", params=params)
            r.raise_for_status()
            body = r.json()
            now = datetime.now(UTC)
            for flag in body["items"]:
                if flag["rule"] == rule and flag["status"] == "open":
                    seen.setdefault(flag["member_id"], now)
            cursor = body.get("next_cursor")
            if not cursor:
                return seen


def wait_for_flags(
    stack: Stack, admin_token: str, rule: str, members: set[str], *, within: float, poll: float = 0.5
) -> dict[str, float]:
    """Poll `GET /coach/flags` until each member has an open flag of `rule` or `within` seconds pass:
    member id -> seconds after the call began when it was first seen (missing: never seen)."""
    started = time.monotonic()
    seen: dict[str, float] = {}
    while time.monotonic() - started < within and not members <= set(seen):
        for member_id in flagged(stack, admin_token, rule):
            if member_id in members:
                seen.setdefault(member_id, time.monotonic() - started)
        time.sleep(poll)
    return seen
