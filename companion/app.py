"""Application factory for the Companion API, the coach dashboard and insurer exports."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from companion import api as api_plumbing
from companion import db, jobs, logs, openapi, ratelimit, writelane
from companion.accounts import views as accounts_views
from companion.auth import loaders
from companion.auth.access import enforce_access
from companion.broker import make_celery
from companion.coaching import views as coaching_views
from companion.config import Config
from companion.dashboard import views as dashboard_views
from companion.docs import bp as docs_bp
from companion.errors import register_error_handlers
from companion.exports import views as exports_views
from companion.extensions import csrf, limiter, login_manager
from companion.health import bp as health_bp
from companion.jsonprovider import CompanionJSONProvider
from companion.medications import views as medications_views
from companion.nudges import views as nudges_views
from companion.pacs import views as pacs_views
from companion.runtime import limiter_storage_url
from companion.safety import views as safety_views
from companion.symptoms import views as symptoms_views
from companion.tracking import sync
from companion.tracking import views as tracking_views

API_BLUEPRINTS = (
    accounts_views.blp,
    tracking_views.blp,
    medications_views.blp,
    symptoms_views.blp,
    pacs_views.blp,
    exports_views.blp,
    safety_views.blp,
    nudges_views.blp,
    coaching_views.blp,
)


class CompanionFlask(Flask):
    """Flask, remembering what `ensure_sync` found for each function. Flask asks it of every hook on
    every request (eighteen for a member write, each an `inspect` of the function's code flags), and a
    function does not turn into a coroutine function. Its docs name `ensure_sync` as the method to
    override."""

    _SYNC_KEPT = 4096  # the app's hooks and views; anything past it is asked each time, as before

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._sync: dict[Callable[..., Any], Callable[..., Any]] = {}

    def ensure_sync(self, func: Callable[..., Any]) -> Callable[..., Any]:
        try:
            return self._sync[func]
        except (KeyError, TypeError):  # not seen yet, or not hashable
            sync = super().ensure_sync(func)
        with contextlib.suppress(TypeError):
            if len(self._sync) < self._SYNC_KEPT:
                self._sync[func] = sync
        return sync


def create_app(config: Config | None = None) -> Flask:
    config = config or Config.from_env()
    if not config.database_url or not config.redis_url:
        raise RuntimeError(
            "DATABASE_URL and REDIS_URL must be resolved before the app is made (companion.runtime)."
        )
    config.check_secret()
    app = CompanionFlask(__name__, instance_path=config.instance_path)
    app.json = CompanionJSONProvider(app)
    app.config.from_mapping(config.as_flask_config())
    logs.configure_logging(config.log_level)
    register_extensions(app, config)
    register_request_hooks(app)
    register_blueprints(app)
    register_error_handlers(app)
    # The busiest writes' common case, answered before Flask's dispatch (anything else goes on to it).
    app.wsgi_app = writelane.WriteLane(app, app.wsgi_app)  # type: ignore[method-assign]  # WSGI middleware wraps wsgi_app, as Flask's docs do it
    if config.proxy_fix:  # outermost: the lane and Flask see the client's address and scheme
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1)  # type: ignore[method-assign]  # ProxyFix wraps wsgi_app, as Flask's docs do it
    return app


def register_extensions(app: Flask, config: Config) -> None:
    engine = db.make_engine(config.database_url)
    app.extensions["engine"] = engine
    db.bind(engine)
    app.teardown_appcontext(lambda _exc: db.session.remove())

    login_manager.init_app(app)
    loaders.init_app(app, login_manager)
    writelane.init_app(app)  # its token read comes before Flask-Limiter's hook, whose key is the account

    app.config.update(
        RATELIMIT_ENABLED=config.ratelimit_enabled,
        RATELIMIT_STORAGE_URI=limiter_storage_url(config.redis_url),
        RATELIMIT_STORAGE_OPTIONS={"socket_connect_timeout": 1, "socket_timeout": 1},
        RATELIMIT_STRATEGY="moving-window",
        RATELIMIT_HEADERS_ENABLED=True,
        # Redis down must never turn a request into a 500; fall back to per-process counters meanwhile.
        RATELIMIT_SWALLOW_ERRORS=True,
        RATELIMIT_IN_MEMORY_FALLBACK_ENABLED=True,
        RATELIMIT_KEY_PREFIX="companion-rl",
    )
    assert ratelimit.OneTripRedisStorage  # registers the storage scheme limiter_storage_url names
    # Registered before the limiter's own hook, so it runs after it (Flask runs them last-in first).
    app.after_request(api_plumbing.drop_stray_retry_after)
    limiter.init_app(app)
    ratelimit.init_app(app)  # the member-write lane counts its requests' limit itself

    csrf.init_app(app)
    openapi.configure_openapi(app)
    api_plumbing.api.init_app(
        app,
        spec_kwargs={
            "marshmallow_plugin": openapi.CompanionMarshmallowPlugin(),
            "extra_plugins": [openapi.StandardResponsesPlugin(app)],
        },
    )
    jobs.configure(make_celery(app))


def register_request_hooks(app: Flask) -> None:
    logs.init_app(app)
    # Order matters: the request head's size first, authenticate and authorise, then look at the body.
    app.before_request(api_plumbing.limit_request_head)
    app.before_request(enforce_access)
    app.before_request(api_plumbing.require_json_object)

    app.after_request(api_plumbing.add_security_headers)


def register_blueprints(app: Flask) -> None:
    for blp in API_BLUEPRINTS:
        api_plumbing.api.register_blueprint(blp)
        csrf.exempt(blp)  # bearer tokens, never cookies: nothing to forge
    sync.document(api_plumbing.api.spec, api_plumbing.api.ma_plugin.converter)
    app.register_blueprint(health_bp)
    limiter.exempt(health_bp)  # probes every second must never be refused (liveness is not a client)
    app.register_blueprint(docs_bp)
    app.register_blueprint(dashboard_views.bp)  # cookie sessions and CSRF-protected forms
