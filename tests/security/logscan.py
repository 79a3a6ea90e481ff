"""What must never be in a log line: the personal and health data that tests write through the API.

Used on the log of the whole test session (tests/conftest.py `_suite_log`) and on the output of the
real processes of the fault tests (gunicorn, Celery worker and beat)."""

from __future__ import annotations

import re

from tests.conftest import PASSWORD

#: An email address (every test account has one), a bearer token, a password the tests use.
PATTERNS = {
    "email address": re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+\.[A-Za-z0-9.-]*[A-Za-z]"),
    "bearer token": re.compile(r"Bearer [A-Za-z0-9_\-]{20,}"),
    "password": re.compile(re.escape(PASSWORD)),
}


def findings(text: str, *, also: tuple[str, ...] = ()) -> list[str]:
    """Each offending line with what it holds (at most 20), `also` being exact strings to look for."""
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        kinds = [name for name, pattern in PATTERNS.items() if pattern.search(line)]
        kinds += [f"{value!r}" for value in also if value and value in line]
        if kinds:
            found.append(f"line {number} ({', '.join(kinds)}): {line[:300]}")
        if len(found) >= 20:
            break
    return found
