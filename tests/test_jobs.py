"""Tasks leave only after the transaction that asked for them commits, through the real Redis broker."""

from __future__ import annotations

import json

from sqlalchemy import text

from companion import db, jobs


def _queued(redis) -> list[dict]:
    return [json.loads(raw) for raw in redis.lrange("celery", 0, -1)]


def test_sent_after_commit_by_name_with_ids_only(app, redis):
    with app.app_context(), db.unit_of_work() as session:
        session.execute(text("SELECT 1"))
        jobs.enqueue_after_commit(jobs.PING, token="after-commit")
        assert _queued(redis) == []  # nothing leaves before the commit
    messages = _queued(redis)
    assert len(messages) == 1
    assert messages[0]["headers"]["task"] == jobs.PING
    assert messages[0]["content-type"] == "application/json"


def test_dropped_on_rollback(app, redis):
    try:
        with app.app_context(), db.unit_of_work():
            jobs.enqueue_after_commit(jobs.PING, token="rolled-back")
            raise RuntimeError("the request failed")
    except RuntimeError:
        pass
    with app.app_context(), db.unit_of_work():
        pass  # a later commit must not send what the rolled-back one asked for
    assert _queued(redis) == []


def test_savepoints_neither_send_nor_drop(app, redis):
    """SQLAlchemy fires after_commit/after_rollback for savepoints too (a sync batch runs each item in
    one): only the outer transaction's commit sends, and only its rollback drops."""
    with app.app_context(), db.unit_of_work() as session:
        with session.begin_nested():
            jobs.enqueue_after_commit(jobs.PING, token="in-a-savepoint")
        assert _queued(redis) == []  # released, not committed
        try:
            with session.begin_nested():
                raise RuntimeError("one item failed")
        except RuntimeError:
            pass
    assert [m["headers"]["task"] for m in _queued(redis)] == [jobs.PING]


def test_broker_down_never_raises_and_backs_off(monkeypatch):
    """A real Celery client pointed at a port where no Redis listens."""
    import socket
    import time

    from celery import Celery

    from companion.broker import celery_settings

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    down = Celery("broker-down", set_as_current=False)
    down.conf.update(celery_settings(f"redis://127.0.0.1:{port}/0", 60))
    monkeypatch.setattr(jobs, "_celery", down)
    monkeypatch.setattr(jobs, "_broker_down_until", 0.0)
    assert jobs.send_now(jobs.PING, token="x") is False
    assert jobs._broker_down_until > time.monotonic()  # later sends skip the broker for a while
    assert jobs._local.held is None  # the failed producer is dropped: the next try starts afresh
    assert jobs.send_now(jobs.PING, token="y") is False


def test_a_thread_keeps_its_producer_between_sends(app, redis):
    """Sends reuse one producer per thread (no pool checkout and channel revival per send)."""
    with app.app_context():
        assert jobs.send_now(jobs.PING, token="first") is True
        held = jobs._local.held
        assert jobs.send_now(jobs.PING, token="second") is True
        assert jobs._local.held is held
    assert [m["headers"]["task"] for m in _queued(redis)] == [jobs.PING, jobs.PING]
