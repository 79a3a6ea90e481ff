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
