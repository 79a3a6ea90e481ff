"""Safety tests make many accounts: hash their passwords cheaply (no test here signs in by password)."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher

from companion.accounts import passwords


@pytest.fixture(autouse=True)
def _cheap_password_hashing(monkeypatch):
    monkeypatch.setattr(passwords, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


@pytest.fixture(autouse=True)
def _our_celery_app_is_current(app):
    """Tasks are shared tasks: called directly, they bind to the current Celery app, and a test elsewhere
    in this process may have made a bare one current (`Celery(...)` sets itself current)."""
    app.extensions["celery"].set_current()
