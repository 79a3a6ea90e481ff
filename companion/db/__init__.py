"""Engine, session and the unit-of-work boundary. Services flush; views and tasks commit."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import MetaData, bindparam, create_engine, event, inspect, select
from sqlalchemy import exc as exc_module
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Session, make_transient_to_detached, scoped_session, sessionmaker

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
#: restart is survived without a failed request; one used more recently is not
#: (docs/performance/member-writes.md: the ping was one of a write's five round trips). Failing that, a
#: request that meets a dead connection answers 503 and SQLAlchemy discards the whole pool.
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


Model = TypeVar("Model", bound=Base)


def attach_as_loaded(model: type[Model], values: dict[str, Any]) -> Model:
    """An instance of `model` from a row read with Core (`values`: every column attribute, by key), in
    the session as if a query had loaded it: nothing to flush, no lazy load of a column. An instance
    of the same row already in the session wins, as it would for a query. Building it this way costs a
    fraction of the ORM's loading, which matters on paths run on every request (the bearer token)."""
    mapper = inspect(model)
    identity = mapper.identity_key_from_primary_key(
        [values[mapper.get_property_by_column(column).key] for column in mapper.primary_key]
    )
    present = session.identity_map.get(identity)
    if present is not None:
        return present  # type: ignore[no-any-return]  # the identity map is untyped
    instance = mapper.class_manager.new_instance()
    instance.__dict__.update(values)  # the instrumented attributes' storage: set without history
    make_transient_to_detached(instance)
    session.add(instance)
    return instance  # type: ignore[no-any-return]  # new_instance is untyped


def loaded_columns(model: type[Base]) -> list[Any]:
    """The columns of `model`'s attributes, in the order `attach_rows` reads them: select these (then
    `.where(...)`, built once) to read rows that are attached as loaded."""
    return [prop.columns[0] for prop in inspect(model).column_attrs]


def attach_rows(model: type[Model], rows: Iterable[Sequence[Any]]) -> list[Model]:
    """Rows of `loaded_columns(model)`, each attached with `attach_as_loaded`."""
    keys = [prop.key for prop in inspect(model).column_attrs]
    return [attach_as_loaded(model, dict(zip(keys, row, strict=True))) for row in rows]


_BY_KEY: dict[type[Any], Any] = {}


def by_key(model: type[Base]) -> Any:
    """The select of `loaded_columns(model)` by its one-column primary key (`:key`), built once."""
    if model not in _BY_KEY:
        (pk,) = inspect(model).primary_key
        _BY_KEY[model] = select(*loaded_columns(model)).where(pk == bindparam("key"))
    return _BY_KEY[model]


def get_row(model: type[Model], key: Any) -> Model | None:
    """`session.get(model, key)` for a model with a one-column primary key, at a third of its CPU: the row
    is read with a statement built once and attached with `attach_as_loaded`. For the per-request
    reads of the write path (a check-in's plan); elsewhere `session.get` is the plainer choice."""
    mapper = inspect(model)
    present = session.identity_map.get(mapper.identity_key_from_primary_key([key]))
    if present is not None:
        return present  # type: ignore[no-any-return]  # the identity map is untyped
    found = attach_rows(model, session.connection().execute(by_key(model), {"key": key}))
    return found[0] if found else None


def new_detached(model: type[Model], values: dict[str, Any]) -> Model:
    """An instance of `model` holding `values` (attribute key -> value) in no session: what the
    member-write lane (`companion.writelane`) builds from a row the driver read. Only the attributes
    given are set; nothing is loaded later (no session), so give every column the caller reads."""
    instance = inspect(model).class_manager.new_instance()
    instance.__dict__.update(values)
    return instance  # type: ignore[no-any-return]  # new_instance is untyped


def row_values(model: type[Base], row: Sequence[Any]) -> dict[str, Any]:
    """A row of `loaded_columns(model)` by attribute key."""
    return dict(zip([prop.key for prop in inspect(model).column_attrs], row, strict=True))


@dataclass(frozen=True)
class DriverStatement:
    """A Core statement as the driver runs it (`driver_statement`)."""

    sql: str
    #: The statement's parameters as the driver takes them.
    params: Callable[[dict[str, Any]], dict[str, Any]]
    #: A row as the driver returns it (a tuple) -> its values as SQLAlchemy would give them.
    row: Callable[[Sequence[Any]], tuple[Any, ...]]


_DRIVER: dict[tuple[int, str], tuple[Any, DriverStatement]] = {}


def driver_statement(statement: Any, dialect: Any) -> DriverStatement:
    """A Core statement as the driver runs it, compiled once: its SQL text for `dialect`, its parameters
    through each bound value's own type (an enum to its name, bytes as binary) and its rows through each
    selected column's type (a name to its enum...). For the few statements run without SQLAlchemy's
    execution layer (the member-write lane), which the same statement objects keep in step with the rest
    of the code; a text() statement's rows are the driver's, as they would be through SQLAlchemy."""
    key = (id(statement), dialect.name)
    cached = _DRIVER.get(key)
    if cached is None or cached[0] is not statement:
        compiled = statement.compile(dialect=dialect)
        escaped = compiled.escaped_bind_names or {}
        # (name in the SQL, key in the parameters, whether it must be given, its value in the statement,
        # the type's processor)
        binds = [
            (escaped.get(name, name), bind.key, bind.required, bind.value, bind.type.bind_processor(dialect))
            for bind, name in compiled.bind_names.items()
        ]
        columns = getattr(statement, "selected_columns", ())  # a text() statement has none
        processors = [c.type.result_processor(dialect, None) for c in columns]

        def params(values: dict[str, Any]) -> dict[str, Any]:
            out = {}
            for sql_name, key, required, fixed, processor in binds:
                value = values[key] if required else values.get(key, fixed)  # KeyError: a value is missing
                out[sql_name] = processor(value) if processor is not None else value
            return out

        def row(values: Sequence[Any]) -> tuple[Any, ...]:
            if not processors:
                return tuple(values)
            return tuple(p(v) if p is not None else v for p, v in zip(processors, values, strict=True))

        cached = _DRIVER[key] = (statement, DriverStatement(compiled.string, params, row))
    return cached[1]


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
