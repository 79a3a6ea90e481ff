"""PostgreSQL and Redis for the tests: DATABASE_URL/REDIS_URL, else the local servers, else embedded ones.

Each pytest-xdist worker gets its own database (built by the Alembic migrations) and its own Redis
database number, so workers never see each other's rows, queues or rate-limit counters.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import redis

from companion import runtime

ROOT = Path(__file__).resolve().parent.parent
INSTANCE = ROOT / ".pytest-instance"


@dataclass
class TestServices:
    admin_database_url: str  # the server, any database
    redis_base_url: str
    handles: runtime.Services

    def database_url(self, name: str) -> str:
        return runtime.with_database(self.admin_database_url, name)

    def redis_url(self, db_number: int) -> str:
        base = self.redis_base_url
        if base.startswith("unix://"):
            return f"{base.split('?')[0]}?db={db_number}"
        head = base.rstrip("/")
        if head.count("/") >= 3:  # redis://host:port/N -> drop N
            head = head.rsplit("/", 1)[0]
        return f"{head}/{db_number}"


def worker_index() -> int:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    return int(worker[2:]) if worker.startswith("gw") else 0


def run_id() -> str:
    """Unique per pytest run (shared by its xdist workers), so two runs on one machine never collide."""
    return os.environ.get("PYTEST_XDIST_TESTRUNUID", "")[:8] or f"p{os.getpid()}"


def database_name() -> str:
    return f"companion_test_{run_id()}_{worker_index()}"


def redis_db_number() -> int:
    """Redis databases 1-15; a run's workers take consecutive ones from a run-dependent start."""
    start = sum(run_id().encode()) % 13
    return 1 + (start + worker_index()) % 15


#: Claims on Redis database numbers live in database 0, so concurrent runs on one machine (an
#: engineer's and CI's) never share a queue or flush each other's database.
_CLAIM = "companion:test:redis-db:{}"
_CLAIM_SECONDS = 6 * 3600


def claim_redis_db(services: TestServices) -> int:
    """A Redis database number no other live test process holds (the run-dependent one when free);
    when all 15 are claimed (crashed runs leave claims for hours), the run-dependent one."""
    owner = f"{run_id()}:{worker_index()}"
    preferred = redis_db_number()
    client = redis.Redis.from_url(services.redis_url(0))
    try:
        for offset in range(15):
            number = 1 + (preferred - 1 + offset) % 15
            key = _CLAIM.format(number)
            if client.set(key, owner, nx=True, ex=_CLAIM_SECONDS) or client.get(key) == owner.encode():
                return number
        return preferred
    finally:
        client.close()


def release_redis_db(services: TestServices, number: int) -> None:
    client = redis.Redis.from_url(services.redis_url(0))
    try:
        if client.get(_CLAIM.format(number)) == f"{run_id()}:{worker_index()}".encode():
            client.delete(_CLAIM.format(number))
    finally:
        client.close()


def start() -> TestServices:
    handles = runtime.resolve(
        database_url=os.environ.get("DATABASE_URL", ""),
        redis_url=os.environ.get("REDIS_URL", ""),
        instance_path=INSTANCE,
        database_name="postgres",
    )
    return TestServices(handles.database_url, handles.redis_url, handles)
