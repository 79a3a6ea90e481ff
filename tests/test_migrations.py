"""Alembic is the only schema: it must go up, come all the way down, and go up again, on PostgreSQL."""

from __future__ import annotations

from sqlalchemy import create_engine, inspect, pool

from companion import migrate, runtime
from companion.models import Base


def _tables(url: str) -> set[str]:
    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        return set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def test_upgrade_downgrade_upgrade(servers):
    from tests.services import database_name

    url = servers.database_url(database_name().replace("companion_test", "companion_migrations"))
    runtime.ensure_database(url, recreate=True)
    migrate.upgrade(url)
    assert _tables(url) == set(Base.metadata.tables)
    head = migrate.current(url)
    migrate.downgrade(url, "base")
    assert _tables(url) == set()
    assert migrate.current(url) is None
    migrate.upgrade(url)
    assert migrate.current(url) == head
    assert _tables(url) == set(Base.metadata.tables)
    runtime.drop_database(url)


def test_models_and_migrations_agree(database_url):
    """Autogenerate finds nothing to do: the migrations are the models, exactly."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    engine = create_engine(database_url, poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
    finally:
        engine.dispose()
