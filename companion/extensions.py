"""Extension instances, unbound; `app.create_app` binds them. The API's (flask-smorest) is `api.api`."""

from __future__ import annotations

import re
from typing import Any

from flask import current_app
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager, current_user
from flask_wtf import CSRFProtect


def rate_limit_key() -> str:
    """Per account when signed in (carrier NAT puts many phones behind one address), else per address."""
    user = current_user._get_current_object()  # the proxy resolved once (every limited request asks)
    if user and user.is_authenticated:
        return account_rate_limit_key(user.id)
    return f"ip:{get_remote_address()}"


def account_rate_limit_key(user_id: Any) -> str:
    """A signed-in account's `rate_limit_key` (the member-write lane keeps it with a login)."""
    return f"user:{user_id}"


_AMOUNT = re.compile(r"(\d+)(\s*(?:/|per\b))")


def process_share(limit: str) -> str:
    """A limit as this process must count it. With Redis reachable every process shares one count; while
    it is not, each process counts alone in memory, so each takes its share (RATELIMIT_PROCESSES: the
    web processes counting in parallel) and the whole still holds."""
    if not limiter._storage_dead:  # flask-limiter's own flag: its storage failed and it fell back
        return limit
    processes = max(1, int(current_app.config["COMPANION_RATELIMIT_PROCESSES"]))
    return _AMOUNT.sub(lambda m: f"{max(1, int(m[1]) // processes)}{m[2]}", limit)


def configured_limit(name: str):
    """A limit read from the settings on each request (COMPANION_<NAME>), shared out while Redis is down."""

    def limit() -> str:
        return process_share(current_app.config[f"COMPANION_{name}"])

    limit.__name__ = name.lower()
    return limit


limiter = Limiter(key_func=rate_limit_key, default_limits=[configured_limit("RATELIMIT_DEFAULT")])
login_manager = LoginManager()
csrf = CSRFProtect()
