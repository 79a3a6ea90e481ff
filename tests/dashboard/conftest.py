"""Coach tests make many accounts: hash their passwords cheaply."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher

from companion.accounts import passwords


@pytest.fixture(autouse=True)
def _cheap_password_hashing(monkeypatch):
    monkeypatch.setattr(passwords, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
