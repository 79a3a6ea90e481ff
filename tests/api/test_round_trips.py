"""Member writes read nothing they do not need (docs/performance.md, "Member writes"): the member comes
with the access token, and a new record comes back from its INSERT."""

from __future__ import annotations

import uuid
from contextlib import contextmanager

from sqlalchemy import event

from companion import db


@contextmanager
def _statements(app):  # type: ignore[no-untyped-def]
    seen: list[str] = []

    def record(conn, cursor, statement, params, context, executemany):  # type: ignore[no-untyped-def]
        seen.append(" ".join(statement.split()))

    engine = app.extensions["engine"]
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def _reads(statements: list[str], table: str) -> list[str]:
    return [s for s in statements if s.startswith("SELECT") and f"FROM {table}" in s]


def test_new_records_are_not_read_back(app, register):
    member = register()
    today = member.get("/me/summary").get_json()["as_of"]
    with _statements(app) as seen:
        logged = member.put(f"/drink-logs/{today}", {"standard_drinks": "2"})
        craving = member.post(
            "/cravings",
            {"id": str(uuid.uuid4()), "recorded_at": db.utcnow().isoformat(), "intensity": 4},
        )
    assert logged.status_code == 201 and logged.get_json()["grams_ethanol"] == 28
    assert craving.status_code == 201 and craving.get_json()["intensity"] == 4
    token_reads = _reads(seen, "auth_tokens")
    assert len(token_reads) == 2 and all("JOIN members" in s for s in token_reads)
    assert not _reads(seen, "members") and not _reads(seen, "drink_logs") and not _reads(seen, "cravings")

    # An edit still reads the stored day (to compare and lock it), and answers what is stored.
    with _statements(app) as seen:
        edited = member.put(f"/drink-logs/{today}", {"standard_drinks": "3"})
    assert edited.status_code == 200 and edited.get_json()["grams_ethanol"] == 42
    assert len(_reads(seen, "drink_logs")) == 1
