"""Engine, session and the unit-of-work boundary. Services flush; views and tasks commit."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import MetaData, create_engine, event
from sqlalchemy import exc as exc_module
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Session, scoped_session, sessionmaker

# Stable constraint names keep migrations reviewable and downgrades exact.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


session: scoped_session[Session] = scoped_session(sessionmaker(expire_on_commit=False))


#: A pooled connection idle longer than this is pinged before use (one round trip), so a PostgreSQL
#: restart is survived without a failed request; one used more recently is not (docs/performance.md,
#: "Member writes": the ping was one of a write's five round trips). Failing that, a request that meets
#: a dead connection answers 503 and SQLAlchemy discards the whole pool.
PING_AFTER_IDLE_SECONDS = 1.0
_CHECKED_IN_AT = "companion.checked_in_at"


def make_engine(url: str) -> Engine:
    engine = create_engine(
        url,
        pool_size=5,
        max_overflow=10,
        pool_timeout=10,
        connect_args={"connect_timeout": 5},
    )
    event.listen(engine, "checkout", _ping_if_idle)
    event.listen(engine, "checkin", _checked_in)
    return engine


def _ping_if_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
    """Survive a PostgreSQL restart: a connection idle for a while is tried first; a dead one is
    replaced (DisconnectionError makes the pool connect afresh, up to three times)."""
    idle_since = record.info.get(_CHECKED_IN_AT)
    if idle_since is not None and time.monotonic() - idle_since < PING_AFTER_IDLE_SECONDS:
        return
    autocommit = dbapi_connection.autocommit
    try:
        dbapi_connection.autocommit = True  # no transaction for the ping (as SQLAlchemy's own pre-ping)
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        dbapi_connection.autocommit = autocommit
    except Exception as exc:
        raise exc_module.DisconnectionError() from exc


def _checked_in(_dbapi_connection: Any, record: Any) -> None:
    record.info[_CHECKED_IN_AT] = time.monotonic()


def bind(engine: Engine) -> None:
    session.remove()
    session.configure(bind=engine)


def utcnow() -> datetime:
    """The one clock of the server side. Pass the function, not its result, as a column default."""
    return datetime.now(UTC)


@contextmanager
def unit_of_work() -> Iterator[Session]:
    """Commit on success, roll back on any error. Used by views, tasks and commands only."""
    s = session()
    try:
        yield s
        s.commit()
    except BaseException:
        s.rollback()
        raise
