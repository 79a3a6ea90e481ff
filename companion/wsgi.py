"""WSGI entry point for gunicorn: `gunicorn companion.wsgi:app`."""

import gc
from pathlib import Path

from companion.app import create_app
from companion.config import Config
from companion.runtime import resolve

_config = Config.from_env()
_services = resolve(
    database_url=_config.database_url, redis_url=_config.redis_url, instance_path=Path(_config.instance_path)
)
app = create_app(Config.from_env(database_url=_services.database_url, redis_url=_services.redis_url))

# Everything built so far (the app, its routes, schemas, statements, SQLAlchemy's metadata) lives as long
# as the process: out of the collector's sight, a full collection walks only what requests make (a
# 500-item sync batch made the old generation's pauses its slowest batches).
gc.freeze()
# A young collection after 20,000 net allocations instead of 700: a request's objects are freed by their
# reference counts, and the collector, run every request or two, found little; 3 % of a member write's
# CPU in an A/B run (docs/performance/member-writes.md). Older generations keep their defaults.
gc.set_threshold(20_000, 10, 10)
