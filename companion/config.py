"""Settings, read once from the environment. Every setting is listed in `.env.example`."""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from flask import current_app


def _env(name: str, default: str) -> str:
    return os.environ.get(name, default)


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def _env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


#: Keys that were ever in this repository: anyone can sign a cookie with them.
PUBLISHED_KEYS = frozenset({"dev-only-insecure-key"})
SECRET_FILE = "secret_key"


def instance_secret_key(instance: Path) -> str:
    """The instance folder's secret key, made at random (mode 0600) the first time any process asks.
    Processes starting together (gunicorn workers, the worker, beat) agree: the file is linked into
    place atomically, and whoever loses the race reads the winner's key."""
    path = instance / SECRET_FILE
    if not path.exists():
        instance.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=instance, prefix=".secret-")  # mode 0600
        try:
            with os.fdopen(fd, "w") as out:
                out.write(secrets.token_urlsafe(48))
            with contextlib.suppress(FileExistsError):
                os.link(temporary, path)
        finally:
            os.unlink(temporary)
    return path.read_text().strip()


@dataclass(frozen=True)
class Config:
    """What the app, the workers and the command line need to know about their surroundings."""

    #: SQLAlchemy URL of the record. Empty: resolved by `companion.runtime` (local server or embedded).
    database_url: str = ""
    #: Redis: broker, rate-limit storage and locks. Empty: resolved like the database.
    redis_url: str = ""
    #: Signs the dashboard's session cookie and CSRF tokens. Empty outside production: the key kept in
    #: the instance folder (`secret_key`, mode 0600), made at random on first run. Production requires it.
    secret_key: str = ""
    #: "production" refuses to start without SECRET_KEY; anything else may use the instance folder's key.
    environment: str = "development"
    #: Dashboard sessions end after this long without a request, and this long after sign-in at most.
    dashboard_idle_seconds: int = 15 * 60
    dashboard_absolute_seconds: int = 12 * 3600
    #: Where embedded servers, the beat schedule and export files live.
    instance_path: str = field(default_factory=lambda: str(Path.cwd() / "instance"))
    #: Bearer access token lifetime, seconds.
    access_token_ttl: int = 3600
    #: Refresh token lifetime, seconds (30 days).
    refresh_token_ttl: int = 30 * 24 * 3600
    #: Flask-Limiter limits (limits syntax). Login and register are strict; writes are per account.
    ratelimit_login: str = "10 per minute"
    ratelimit_register: str = "5 per minute"
    ratelimit_default: str = "600 per minute"
    ratelimit_enabled: bool = True
    #: Web processes counting in parallel (gunicorn workers): while Redis is down each counts alone in
    #: memory and takes this share of every limit.
    ratelimit_processes: int = 2
    #: The member-write lane (companion/writelane.py): the common case of the three busiest writes
    #: through the driver. Off: every request takes the full path (the answers are the same).
    write_lane: bool = True
    #: Celery: seconds before Redis re-delivers an unacknowledged task (longest task x 2).
    celery_visibility_timeout: int = 1800
    #: JSON log level.
    log_level: str = "INFO"
    #: Cookies only over HTTPS. Off for local http development and tests.
    session_cookie_secure: bool = True
    #: Number of days before today a member may still log or backfill (API.md: 60).
    backfill_days: int = 60
    #: Trust one proxy's X-Forwarded-For (behind a load balancer).
    proxy_fix: bool = False
    #: Push to Android through FCM HTTP v1 when set (the Firebase project id); empty: the log channel.
    fcm_project_id: str = ""
    #: Service-account JSON for FCM: google-auth mints the OAuth bearer and refreshes it before its hour.
    fcm_credentials_file: str = ""
    #: A static OAuth 2.0 bearer for FCM (a trial only: it expires after an hour).
    fcm_access_token: str = ""
    fcm_base_url: str = "https://fcm.googleapis.com"
    #: Push to iOS through APNs when set (path of the .p8 signing key); empty: the log channel.
    apns_key_file: str = ""
    apns_key_id: str = ""
    apns_team_id: str = ""
    #: The app's bundle id.
    apns_topic: str = ""
    apns_base_url: str = "https://api.push.apple.com"
    #: Timeout of every push request, seconds.
    push_timeout_seconds: int = 10
    #: How often beat runs the nudge dispatcher, seconds.
    nudge_dispatch_seconds: int = 60
    #: A claimed nudge whose delivery task has not finished after this long is sent to a worker again.
    nudge_send_lease_seconds: int = 120
    #: Dispatchers that may work one tick at once (beat's and the helpers it asks for when a tick has
    #: more than one batch of work); each holds a worker slot while it runs.
    nudge_dispatchers: int = 2
    #: How often beat runs the safety pass over due `safety_watch` rows, seconds: a scan message lost
    #: (Redis down, a worker killed) costs at most about this long plus the grace below.
    safety_pass_seconds: int = 60
    #: A row due for less than this is left to its scan message (the debounce's trailing scan comes
    #: up to 15.5 s after the entry); after it, the pass scans the member itself.
    safety_pass_grace_seconds: int = 30
    #: Readiness calls a worker or beat heartbeat older than this stale (companion/heartbeats.py).
    heartbeat_stale_seconds: int = 180
    #: Bearer token a Prometheus scrape of /metrics must present; empty: /metrics is off (404).
    metrics_token: str = ""
    #: host:port the worker serves its own metrics on (Prometheus text, no token: keep it internal);
    #: empty: not served.
    worker_metrics_bind: str = ""

    @classmethod
    def from_env(cls, **overrides: Any) -> Config:
        values: dict[str, Any] = {
            "database_url": _env("DATABASE_URL", ""),
            "redis_url": _env("REDIS_URL", ""),
            "secret_key": _env("SECRET_KEY", cls.secret_key),
            "environment": _env("COMPANION_ENV", cls.environment),
            "dashboard_idle_seconds": _env_int("DASHBOARD_IDLE_SECONDS", cls.dashboard_idle_seconds),
            "dashboard_absolute_seconds": _env_int(
                "DASHBOARD_ABSOLUTE_SECONDS", cls.dashboard_absolute_seconds
            ),
            "instance_path": _env("COMPANION_INSTANCE_PATH", str(Path.cwd() / "instance")),
            "access_token_ttl": _env_int("ACCESS_TOKEN_TTL", cls.access_token_ttl),
            "refresh_token_ttl": _env_int("REFRESH_TOKEN_TTL", cls.refresh_token_ttl),
            "ratelimit_login": _env("RATELIMIT_LOGIN", cls.ratelimit_login),
            "ratelimit_register": _env("RATELIMIT_REGISTER", cls.ratelimit_register),
            "ratelimit_default": _env("RATELIMIT_DEFAULT", cls.ratelimit_default),
            "ratelimit_enabled": _env_bool("RATELIMIT_ENABLED", cls.ratelimit_enabled),
            "ratelimit_processes": _env_int("RATELIMIT_PROCESSES", cls.ratelimit_processes),
            "write_lane": _env_bool("WRITE_LANE", cls.write_lane),
            "celery_visibility_timeout": _env_int("CELERY_VISIBILITY_TIMEOUT", cls.celery_visibility_timeout),
            "log_level": _env("LOG_LEVEL", cls.log_level),
            "session_cookie_secure": _env_bool("SESSION_COOKIE_SECURE", cls.session_cookie_secure),
            "backfill_days": _env_int("BACKFILL_DAYS", cls.backfill_days),
            "proxy_fix": _env_bool("PROXY_FIX", cls.proxy_fix),
            "fcm_project_id": _env("FCM_PROJECT_ID", cls.fcm_project_id),
            "fcm_credentials_file": _env("FCM_CREDENTIALS_FILE", cls.fcm_credentials_file),
            "fcm_access_token": _env("FCM_ACCESS_TOKEN", cls.fcm_access_token),
            "fcm_base_url": _env("FCM_BASE_URL", cls.fcm_base_url),
            "apns_key_file": _env("APNS_KEY_FILE", cls.apns_key_file),
            "apns_key_id": _env("APNS_KEY_ID", cls.apns_key_id),
            "apns_team_id": _env("APNS_TEAM_ID", cls.apns_team_id),
            "apns_topic": _env("APNS_TOPIC", cls.apns_topic),
            "apns_base_url": _env("APNS_BASE_URL", cls.apns_base_url),
            "push_timeout_seconds": _env_int("PUSH_TIMEOUT_SECONDS", cls.push_timeout_seconds),
            "nudge_dispatch_seconds": _env_int("NUDGE_DISPATCH_SECONDS", cls.nudge_dispatch_seconds),
            "nudge_send_lease_seconds": _env_int("NUDGE_SEND_LEASE_SECONDS", cls.nudge_send_lease_seconds),
            "nudge_dispatchers": _env_int("NUDGE_DISPATCHERS", cls.nudge_dispatchers),
            "safety_pass_seconds": _env_int("SAFETY_PASS_SECONDS", cls.safety_pass_seconds),
            "safety_pass_grace_seconds": _env_int("SAFETY_PASS_GRACE_SECONDS", cls.safety_pass_grace_seconds),
            "heartbeat_stale_seconds": _env_int("HEARTBEAT_STALE_SECONDS", cls.heartbeat_stale_seconds),
            "metrics_token": _env("METRICS_TOKEN", cls.metrics_token),
            "worker_metrics_bind": _env("WORKER_METRICS_BIND", cls.worker_metrics_bind),
        }
        values.update(overrides)
        if not values["secret_key"] and values["environment"] != "production":
            values["secret_key"] = instance_secret_key(Path(values["instance_path"]))
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})

    def check_secret(self) -> None:
        """Refuse to run with no secret, or with a key that was ever published (the old default)."""
        if not self.secret_key:
            raise RuntimeError(
                "SECRET_KEY is not set. Production (COMPANION_ENV=production) requires it: a long random "
                "string, e.g. python -c 'import secrets; print(secrets.token_urlsafe(48))'."
            )
        if self.secret_key in PUBLISHED_KEYS:
            raise RuntimeError("SECRET_KEY is a key published in this repository; set a long random one.")

    def as_flask_config(self) -> dict[str, Any]:
        settings = {f"COMPANION_{k.upper()}": v for k, v in asdict(self).items()}
        settings.update(
            SECRET_KEY=self.secret_key,
            DATABASE_URL=self.database_url,
            REDIS_URL=self.redis_url,
            MAX_CONTENT_LENGTH=1024 * 1024,
            SESSION_COOKIE_HTTPONLY=True,
            SESSION_COOKIE_SAMESITE="Lax",
            SESSION_COOKIE_SECURE=self.session_cookie_secure,
            REMEMBER_COOKIE_HTTPONLY=True,
            REMEMBER_COOKIE_SECURE=self.session_cookie_secure,
            REMEMBER_COOKIE_SAMESITE="Lax",
            PERMANENT_SESSION_LIFETIME=self.dashboard_idle_seconds,
        )
        return settings


def backfill_days() -> int:
    """How many days before today a member may still log (API.md: 60; the BACKFILL_DAYS setting)."""
    return int(current_app.config["COMPANION_BACKFILL_DAYS"])
