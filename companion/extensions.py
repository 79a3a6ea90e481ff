"""Extension instances, unbound; `app.create_app` binds them."""

from __future__ import annotations

import hashlib

from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager, current_user
from flask_wtf import CSRFProtect

from companion.api import CompanionApi, json_body


def rate_limit_key() -> str:
    """Per account when signed in (carrier NAT puts many phones behind one address), else per address."""
    if current_user and current_user.is_authenticated:
        return f"user:{current_user.id}"
    return f"ip:{get_remote_address()}"


def email_key(prefix: str, email: str) -> str:
    """A rate-limit key for an email, hashed: the limiter logs its keys, and Redis keeps them."""
    digest = hashlib.sha256(email.strip().lower()[:254].encode()).hexdigest()[:32]
    return f"{prefix}:{digest}"


def login_email_key() -> str:
    """Failed sign-ins are counted per email as well as per address, so one address cannot spray."""
    body = json_body()
    email = body.get("email") if isinstance(body, dict) else None
    return email_key("login", str(email)) if email else f"ip:{get_remote_address()}"


api = CompanionApi()  # our error envelope in the OpenAPI document
limiter = Limiter(key_func=rate_limit_key)
login_manager = LoginManager()
csrf = CSRFProtect()
