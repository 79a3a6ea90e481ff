"""Flask-Login: bearer tokens on /api, session cookies on the dashboard, never the other way round.

A cookie never authenticates /api (that would open the JSON API to CSRF), and a bearer request never
gets a session cookie (STACK.md 3.2).
"""

from __future__ import annotations

import uuid

from flask import Flask, Request, g, request
from flask.sessions import SecureCookieSessionInterface
from flask_login import LoginManager

from companion.accounts import tokens
from companion.accounts.models import User
from companion.db import session

API_PREFIX = "/api/"


def is_api_request(req: Request) -> bool:
    return req.path.startswith(API_PREFIX) or req.path == "/api"


class NoCookieForApiSessionInterface(SecureCookieSessionInterface):
    """The JSON API is stateless: it never reads or writes the session cookie."""

    def open_session(self, app, request):  # type: ignore[override]
        if is_api_request(request):
            return self.session_class()
        return super().open_session(app, request)

    def save_session(self, app, session, response):  # type: ignore[override]
        if is_api_request(request):
            return
        super().save_session(app, session, response)


def load_session_user(user_id: str) -> User | None:
    """Dashboard sessions: `<uuid>:<epoch>`, so a password change ends every older session."""
    if is_api_request(request):
        return None
    raw_id, _, epoch = user_id.partition(":")
    try:
        user = session.get(User, uuid.UUID(raw_id))
    except ValueError:
        return None
    if user is None or not user.is_active or str(user.session_epoch) != epoch:
        return None
    return user


def load_bearer_user(req: Request) -> User | None:
    if not is_api_request(req):
        return None
    header = req.headers.get("Authorization", "")
    scheme, _, raw = header.partition(" ")
    if scheme.lower() != "bearer" or not raw.strip():
        return None
    found = tokens.authenticate_access(raw.strip())
    if found is None:
        return None
    token, user = found
    g.auth_token = token
    return user


def init_app(app: Flask, login_manager: LoginManager) -> None:
    app.session_interface = NoCookieForApiSessionInterface()
    login_manager.user_loader(load_session_user)
    login_manager.request_loader(load_bearer_user)
    login_manager.session_protection = "strong"
