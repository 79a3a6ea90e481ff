"""Settings, read once from the environment. Every setting is listed in `.env.example`."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any


def _env(name: str, default: str) -> str:
    return os.environ.get(name, default)


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def _env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Config:
    """What the app, the workers and the command line need to know about their surroundings."""

    #: SQLAlchemy URL of the record. Empty: resolved by `companion.runtime` (local server or embedded).
    database_url: str = ""
    #: Redis: broker, rate-limit storage and locks. Empty: resolved like the database.
    redis_url: str = ""
    #: Signs the dashboard's session cookie and CSRF tokens. Must be set in production.
    secret_key: str = "dev-only-insecure-key"
    #: Where embedded servers, the beat schedule and export files live.
    instance_path: str = field(default_factory=lambda: str(Path.cwd() / "instance"))
    #: Bearer access token lifetime, seconds.
    access_token_ttl: int = 3600
    #: Refresh token lifetime, seconds (30 days).
    refresh_token_ttl: int = 30 * 24 * 3600
    #: Flask-Limiter limits (limits syntax). Login and register are strict; writes are per account.
    ratelimit_login: str = "10 per minute"
    ratelimit_login_failures: str = "5 per 15 minutes"
    ratelimit_register: str = "5 per minute"
    ratelimit_default: str = "600 per minute"
    ratelimit_enabled: bool = True
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

    @classmethod
    def from_env(cls, **overrides: Any) -> Config:
        values: dict[str, Any] = {
            "database_url": _env("DATABASE_URL", ""),
            "redis_url": _env("REDIS_URL", ""),
            "secret_key": _env("SECRET_KEY", cls.secret_key),
            "instance_path": _env("COMPANION_INSTANCE_PATH", str(Path.cwd() / "instance")),
            "access_token_ttl": _env_int("ACCESS_TOKEN_TTL", cls.access_token_ttl),
            "refresh_token_ttl": _env_int("REFRESH_TOKEN_TTL", cls.refresh_token_ttl),
            "ratelimit_login": _env("RATELIMIT_LOGIN", cls.ratelimit_login),
            "ratelimit_login_failures": _env("RATELIMIT_LOGIN_FAILURES", cls.ratelimit_login_failures),
            "ratelimit_register": _env("RATELIMIT_REGISTER", cls.ratelimit_register),
            "ratelimit_default": _env("RATELIMIT_DEFAULT", cls.ratelimit_default),
            "ratelimit_enabled": _env_bool("RATELIMIT_ENABLED", cls.ratelimit_enabled),
            "celery_visibility_timeout": _env_int("CELERY_VISIBILITY_TIMEOUT", cls.celery_visibility_timeout),
            "log_level": _env("LOG_LEVEL", cls.log_level),
            "session_cookie_secure": _env_bool("SESSION_COOKIE_SECURE", cls.session_cookie_secure),
            "backfill_days": _env_int("BACKFILL_DAYS", cls.backfill_days),
            "proxy_fix": _env_bool("PROXY_FIX", cls.proxy_fix),
        }
        values.update(overrides)
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})

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
            PERMANENT_SESSION_LIFETIME=15 * 60,
        )
        return settings
