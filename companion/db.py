"""Engine, session and the unit-of-work boundary. Services flush; views and tasks commit."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from sqlalchemy import MetaData, create_engine
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


def make_engine(url: str) -> Engine:
    return create_engine(
        url,
        pool_pre_ping=True,  # survive a PostgreSQL restart without restarting the app
        pool_size=5,
        max_overflow=10,
        pool_timeout=10,
        connect_args={"connect_timeout": 5},
    )


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
