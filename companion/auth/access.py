"""Who may call what. Every route declares it; a route that declares nothing is refused (deny by default).

    @allow(Role.MEMBER)          members only
    @allow(PUBLIC)               anyone, signed in or not (register, token, health checks)

Object-level access (a coach sees only their caseload) is checked in the services; what is not
yours is a 404 there.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Flask, current_app, request
from flask_login import current_user

from companion.accounts.models import Role
from companion.domain.errors import Forbidden, Unauthenticated

log = logging.getLogger(__name__)

PUBLIC = "public"
#: Endpoints registered by libraries, which cannot carry a decorator: the OpenAPI document and static files.
PUBLIC_ENDPOINTS = frozenset({"api-docs.openapi_json", "static"})
ACCESS_ATTR = "_companion_access"

F = TypeVar("F", bound=Callable[..., Any])


def allow(*roles: Role | str) -> Callable[[F], F]:
    def mark(fn: F) -> F:
        setattr(fn, ACCESS_ATTR, frozenset(roles))
        return fn

    return mark


def declared_access(app: Flask, endpoint: str, method: str) -> frozenset[str] | None:
    """The roles a route declares for a method, or None when it declares nothing."""
    if endpoint in PUBLIC_ENDPOINTS:
        return frozenset({PUBLIC})
    view = app.view_functions.get(endpoint)
    if view is None:
        return None
    declared = getattr(view, ACCESS_ATTR, None)
    if declared is not None:
        return declared
    view_class = getattr(view, "view_class", None)
    if view_class is not None:
        handler = getattr(view_class, method.lower(), None)
        if handler is None and method == "HEAD":
            handler = getattr(view_class, "get", None)
        return getattr(handler, ACCESS_ATTR, None)
    return None


def enforce_access() -> None:
    """before_request: authenticate and authorise, before any body is parsed."""
    if request.endpoint is None or request.routing_exception is not None:
        return  # routing answers 404/405 itself
    if request.method == "OPTIONS":
        return
    roles = declared_access(current_app, request.endpoint, request.method)
    if roles is None:
        log.error("route declares no access; refused", extra={"endpoint": request.endpoint})
        raise Forbidden("You may not do this.")
    if PUBLIC in roles:
        return
    if not current_user.is_authenticated:
        raise Unauthenticated("Authentication is required.")
    if current_user.role not in roles:
        raise Forbidden("Your role may not do this.")
