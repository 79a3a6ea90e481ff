"""Sign-in throttling kept in PostgreSQL (companion/domain/throttle.py has the rules): one count for the
API and the dashboard, and it holds while Redis is down. Emails and addresses are kept only hashed.

Services flush and never commit; the sign-in view owns the transaction, and commits a failure before
answering 401 so that it counts.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from sqlalchemy import DateTime, Integer, String, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Mapped, mapped_column

from companion.db import Base, session
from companion.domain import throttle as rules
from companion.domain.errors import TooManyAttempts


class SignInCounter(Base):
    __tablename__ = "sign_in_counters"

    #: "account:<sha256 of the email>" or "client:<sha256 of the email>:<sha256 of the address>".
    key: Mapped[str] = mapped_column(String(140), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_failure_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_success_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8", "replace")).hexdigest()[:64]


def normalize_email(email: str) -> str:
    """The email as sign-in finds the account: case and surrounding spaces never make another count."""
    return email.strip().lower()[:254]


def _keys(email: str, address: str | None) -> tuple[str, str]:
    account = _digest(normalize_email(email))
    return f"account:{account}", f"client:{account}:{_digest(address or '')}"


def check(email: str, address: str | None, *, now: datetime) -> None:
    """Raise TooManyAttempts (429, Retry-After) when this attempt must still wait. The account's row is
    locked until the transaction ends: attempts on one account are taken one at a time, so a burst sent
    in parallel cannot all slip through the same opening."""
    account_key, client_key = _keys(email, address)
    session.execute(insert(SignInCounter).values(key=account_key, failures=0).on_conflict_do_nothing())
    account = session.execute(
        select(SignInCounter).where(SignInCounter.key == account_key).with_for_update()
    ).scalar_one()
    client = session.get(SignInCounter, client_key)
    wait = 0
    if client is not None:
        wait = rules.wait_seconds(client.failures, client.last_failure_at, now)
    if client is None or not rules.is_known(client.last_success_at, now):
        wait = max(wait, rules.wait_seconds(account.failures, account.last_failure_at, now))
    if wait:
        raise TooManyAttempts("Too many failed sign-ins; try again later.", retry_after=wait)


def failed(email: str, address: str | None, *, now: datetime) -> None:
    for key in _keys(email, address):
        row = session.get(SignInCounter, key)
        if row is None:
            row = SignInCounter(key=key, failures=0)
            session.add(row)
        row.failures = rules.current_failures(row.failures or 0, row.last_failure_at, now) + 1
        row.last_failure_at = now
    session.flush()


def succeeded(email: str, address: str | None, *, now: datetime) -> None:
    """The right password: this address is known for this account from now on, and both counts restart."""
    for key in _keys(email, address):
        row = session.get(SignInCounter, key)
        if row is None:
            row = SignInCounter(key=key)
            session.add(row)
        row.failures = 0
        if key.startswith("client:"):
            row.last_success_at = now
    session.flush()
