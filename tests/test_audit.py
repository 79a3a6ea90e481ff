"""The audit log is append-only, in the database itself: rows go in, nothing changes or leaves."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, select, update
from sqlalchemy.exc import DBAPIError

from companion import db
from companion.audit import services as audit
from companion.audit.models import AuditEntry


def test_rows_are_appended_and_never_changed(app):
    with app.app_context(), db.unit_of_work():
        entry = audit.record("export.requested", actor_id=None, now=db.utcnow(), via="test")
        entry_id = entry.id
    for statement in (
        update(AuditEntry).where(AuditEntry.id == entry_id).values(action="rewritten"),
        delete(AuditEntry).where(AuditEntry.id == entry_id),
    ):
        with app.app_context(), pytest.raises(DBAPIError, match="append-only"), db.unit_of_work() as s:
            s.execute(statement)
    with app.app_context():
        row = db.session.execute(select(AuditEntry)).scalar_one()
        assert (row.action, row.detail) == ("export.requested", {"via": "test"})
