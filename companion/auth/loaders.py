"""Flask-Login: bearer tokens on /api, session cookies on the dashboard, never the other way round.

A cookie never authenticates /api (that would open the JSON API to CSRF), and a bearer request never
gets a session cookie (STACK.md 3.2).
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from flask import Flask, Request, current_app, g, request
from flask import session as flask_session
from flask.sessions import SecureCookieSessionInterface
from flask_login import LoginManager
from sqlalchemy.exc import DBAPIError

from companion.accounts import tokens
from companion.accounts.models import User
from companion.auth import sessions as staff_sessions
from companion.db import session, unit_of_work, utcnow

API_PREFIX = "/api/"


def is_api_request(req: Request) -> bool:
    return req.path.startswith(API_PREFIX) or req.path == "/api"


class NoCookieForApiSessionInterface(SecureCookieSessionInterface):
    """The JSON API is stateless: it never reads or writes the session cookie."""

    def open_session(self, app, request):
        if is_api_request(request):
            return self.session_class()
        return super().open_session(app, request)

    def save_session(self, app, session, response):
        if is_api_request(request):
            return
        super().save_session(app, session, response)

    def get_cookie_secure(self, app):
        """`Secure` whenever the request came over TLS (directly, or through a proxy with PROXY_FIX), even
        where SESSION_COOKIE_SECURE is off for plain-http development."""
        return bool(app.config["SESSION_COOKIE_SECURE"]) or request.is_secure


#: The key of the server-side session id in the dashboard's cookie (companion/auth/sessions.py).
SESSION_ID = "sid"


def load_session_user(user_id: str) -> User | None:
    """Dashboard sessions: `<uuid>:<epoch>` (a password change ends every older session) and a session id
    whose row is open, not idle or expired, and was made for this browser and address. A cookie without
    one, even signed with the right key, opens nothing."""
    if is_api_request(request):
        return None
    raw_id, _, epoch = user_id.partition(":")
    try:
        user = session.get(User, uuid.UUID(raw_id))
    except ValueError:
        return None
    if user is None or not user.is_active or str(user.session_epoch) != epoch:
        return None
    config = current_app.config
    with unit_of_work():
        alive = staff_sessions.check(
            flask_session.get(SESSION_ID),
            user.id,
            agent=request.headers.get("User-Agent"),
            address=request.remote_addr,
            now=utcnow(),
            idle=timedelta(seconds=config["COMPANION_DASHBOARD_IDLE_SECONDS"]),
            absolute=timedelta(seconds=config["COMPANION_DASHBOARD_ABSOLUTE_SECONDS"]),
        )
    return user if alive else None


def load_bearer_user(req: Request) -> User | None:
    if not is_api_request(req):
        return None
    header = req.headers.get("Authorization", "")
    scheme, _, raw = header.partition(" ")
    if scheme.lower() != "bearer" or not raw.strip():
        return None
    try:
        found = tokens.authenticate_access(raw.strip())
    except DBAPIError:
        # The database is unreachable. Flask-Limiter calls this from its key function and swallows the
        # error; without a rollback the request's session would keep the broken transaction and the
        # view's next read would fail with PendingRollbackError (a 500). Rolled back, it fails with the
        # database's own error: a 503 asking the phone to retry.
        session.rollback()
        raise
    if found is None:
        return None
    token, user = found
    g.auth_token = token
    return user


def init_app(app: Flask, login_manager: LoginManager) -> None:
    app.session_interface = NoCookieForApiSessionInterface()
    login_manager.user_loader(load_session_user)
    login_manager.request_loader(load_bearer_user)
    # Flask-Login's "strong" protection only marks a permanent session not fresh; the server-side row
    # (companion/auth/sessions.py) refuses a cookie from another browser or address instead.
    login_manager.session_protection = None
