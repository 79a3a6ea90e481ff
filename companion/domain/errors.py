"""Errors a caller can fix. They carry data; the HTTP edge (companion/errors.py) picks the status."""

from __future__ import annotations


class DomainError(Exception):
    """A request the user can fix. Never raise this for a bug."""

    code = "invalid_payload"

    def __init__(self, message: str, *, fields: dict[str, list[str]] | None = None, **details: object):
        super().__init__(message)
        self.message = message
        self.fields = fields or {}
        self.details = details


class InvalidInput(DomainError):
    """Well-formed, but not acceptable (a future date, an unknown enrollment code...)."""

    code = "invalid_payload"


class NotFound(DomainError):
    """No such thing, or not yours to see: the two are never told apart."""

    code = "not_found"


class Conflict(DomainError):
    """Same id with another body, a stale update, an email already taken."""

    code = "conflict"


class Unauthenticated(DomainError):
    code = "unauthenticated"


class Forbidden(DomainError):
    code = "forbidden"


class TooLarge(DomainError):
    code = "payload_too_large"


class TooManyAttempts(DomainError):
    """Too many failed attempts: wait `retry_after` seconds (details) before the next one."""

    code = "rate_limited"
