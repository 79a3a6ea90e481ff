"""Delivery against the fake gateway: each provider error handled as DOMAIN.md says, retries by rows (not
countdowns), and never a second push for one delivery, whatever happened to the worker before."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from companion import db
from companion.accounts.models import Device
from companion.notifications.base import QUOTA_MIN_DELAY
from companion.nudges import delivery_tx as delivery
from companion.nudges.models import Delivery
from tests.fake_push import apns_error, fcm_error
from tests.nudges.conftest import add_device, deliveries_of, make_member, nudges_of

NOW = datetime(2026, 12, 2, 1, 0, tzinfo=UTC)  # 20:00 in New York: the default log time


def _device(app, token: str) -> Device:
    with app.app_context():
        device = db.session.query(Device).filter_by(push_token=token).one()
        db.session.expunge_all()
        return device


def test_every_phone_gets_one_push_over_its_own_provider(app, tick, gateway):
    member_id = make_member(app)
    android = add_device(app, member_id, "android")
    iphone = add_device(app, member_id, "ios")
    tick(NOW)
    [nudge] = nudges_of(app, member_id)
    assert {(r.provider, r.token) for r in gateway.requests()} == {("fcm", android), ("apns", iphone)}
    assert sorted((d.provider, d.status) for d in deliveries_of(app, nudge.id)) == [
        ("apns", "sent"),
        ("fcm", "sent"),
    ]
    assert (nudge.status, nudge.attempts, nudge.last_error) == ("sent", 1, None)


def test_a_member_without_a_phone_gets_the_inbox_only(app, tick, gateway):
    member_id = make_member(app)
    tick(NOW)
    [nudge] = nudges_of(app, member_id)
    assert (nudge.status, nudge.sent_at) == ("sent", NOW)
    assert gateway.requests() == [] and deliveries_of(app, nudge.id) == []


@pytest.mark.parametrize(
    ("platform", "reply"),
    [("android", fcm_error("UNREGISTERED")), ("ios", apns_error(410, "Unregistered")),
     ("ios", apns_error(400, "BadDeviceToken"))],
)  # fmt: skip
def test_a_dead_token_deactivates_the_device_and_is_never_retried(app, tick, gateway, platform, reply):
    member_id = make_member(app)
    token = add_device(app, member_id, platform)
    gateway.script(token, reply)
    tick(NOW)
    [nudge] = nudges_of(app, member_id)
    [push] = deliveries_of(app, nudge.id)
    assert (push.status, push.next_attempt_at) == ("failed", None)
    assert (nudge.status, nudge.next_attempt_at) == ("failed", None)  # no phone took it; it is in the inbox
    device = _device(app, token)
    assert device.active is False and device.deactivated_reason == push.error
    tick(NOW + timedelta(hours=1))
    assert len(gateway.requests()) == 1


def test_an_invalid_request_is_not_retried_and_other_phones_still_get_it(app, tick, gateway):
    member_id = make_member(app)
    bad = add_device(app, member_id, "android")
    good = add_device(app, member_id, "ios")
    gateway.script(bad, fcm_error("INVALID_ARGUMENT"))
    tick(NOW)
    tick(NOW + timedelta(minutes=30))
    [nudge] = nudges_of(app, member_id)
    assert (nudge.status, nudge.last_error) == ("sent", "400 INVALID_ARGUMENT")
    assert sorted(r.token for r in gateway.requests()) == sorted([bad, good])
    assert _device(app, bad).active is True  # a bad request is not a dead token


def test_unavailable_honours_retry_after_then_succeeds_once(app, tick, gateway):
    member_id = make_member(app)
    token = add_device(app, member_id)
    gateway.script(token, fcm_error("UNAVAILABLE", retry_after=120))
    tick(NOW)
    [nudge] = nudges_of(app, member_id)
    [push] = deliveries_of(app, nudge.id)
    assert (push.status, push.attempts) == ("retry", 1)
    assert push.next_attempt_at >= NOW + timedelta(seconds=120)
    assert (nudge.status, nudge.next_attempt_at, nudge.sent_at) == ("sending", push.next_attempt_at, NOW)
    assert tick(NOW + timedelta(seconds=119)).resent == 0  # not before Retry-After
    assert tick(push.next_attempt_at).resent == 1
    [nudge] = nudges_of(app, member_id)
    [push] = deliveries_of(app, nudge.id)
    assert (push.status, push.attempts, nudge.status, nudge.sent_at) == ("sent", 2, "sent", NOW)
    assert gateway.per_nudge() == {str(nudge.id): 2}  # one refused, one delivered


@pytest.mark.parametrize(
    ("platform", "reply"),
    [("android", fcm_error("QUOTA_EXCEEDED")), ("ios", apns_error(429, "TooManyRequests")),
     ("android", fcm_error("QUOTA_EXCEEDED", retry_after=5))],
)  # fmt: skip
def test_a_rate_limit_backs_off_at_least_a_minute(app, tick, gateway, platform, reply):
    member_id = make_member(app)
    token = add_device(app, member_id, platform)
    gateway.script(token, reply)
    tick(NOW)
    [push] = deliveries_of(app, nudges_of(app, member_id)[0].id)
    assert push.status == "retry"
    assert push.next_attempt_at >= NOW + timedelta(seconds=QUOTA_MIN_DELAY)


def test_transient_errors_back_off_exponentially_and_give_up(app, tick, gateway):
    member_id = make_member(app, log_time=datetime(2026, 1, 1, 9, 0).time())  # a long day ahead
    token = add_device(app, member_id)
    gateway.script(token, *[fcm_error("INTERNAL")] * delivery.MAX_PUSH_ATTEMPTS)
    start = datetime(2026, 12, 1, 14, 0, tzinfo=UTC)  # 09:00 in New York
    tick(start)
    waits = []
    for _ in range(delivery.MAX_PUSH_ATTEMPTS - 1):
        [nudge] = nudges_of(app, member_id)
        [push] = deliveries_of(app, nudge.id)
        waits.append((push.next_attempt_at - push.attempted_at).total_seconds())
        tick(push.next_attempt_at)
    [nudge] = nudges_of(app, member_id)
    [push] = deliveries_of(app, nudge.id)
    assert all(later > earlier for earlier, later in itertools.pairwise(waits)), waits
    assert (push.status, push.attempts) == ("failed", delivery.MAX_PUSH_ATTEMPTS)
    assert push.error.startswith("gave up after 5")
    assert (nudge.status, nudge.next_attempt_at) == ("failed", None)
    assert len(gateway.requests()) == delivery.MAX_PUSH_ATTEMPTS


def test_no_retry_after_the_nudge_expires(app, tick, gateway):
    member_id = make_member(app, log_time=datetime(2026, 1, 1, 23, 58).time())  # expires at midnight
    token = add_device(app, member_id)
    gateway.script(token, fcm_error("UNAVAILABLE", retry_after=600))
    tick(datetime(2026, 12, 2, 4, 58, tzinfo=UTC))
    [nudge] = nudges_of(app, member_id)
    [push] = deliveries_of(app, nudge.id)
    assert (push.status, nudge.status) == ("failed", "failed")
    assert push.error.startswith("expires before retry")


def test_a_push_recorded_as_leaving_by_a_dead_worker_is_never_sent_again(app, gateway, deliver):
    """The worker died after committing `sending` (the request may have left): no second push."""
    member_id = make_member(app)
    sent_before = add_device(app, member_id, "android")
    not_yet = add_device(app, member_id, "ios")
    from companion.nudges import dispatcher_tx

    lost: list = []
    with app.app_context():
        dispatcher_tx.dispatch_due(now=lambda: NOW, send=lost.extend)
    [nudge_id] = lost
    with app.app_context(), db.unit_of_work() as session:
        device_id = session.query(Device.id).filter_by(push_token=sent_before).scalar()
        session.add(Delivery(nudge_id=nudge_id, device_id=device_id, send_round=0, provider="fcm",
                             status="sending", attempts=0, attempted_at=NOW))  # fmt: skip
    report = deliver([nudge_id], NOW + timedelta(minutes=3))
    assert [r.token for r in gateway.requests()] == [not_yet]
    pushes = {d.device_id: d.status for d in deliveries_of(app, nudge_id)}
    assert pushes[device_id] == "unknown" and sorted(pushes.values()) == ["sent", "unknown"]
    assert report.pushes["unknown"] == 1
    assert nudges_of(app, member_id)[0].status == "sent"


def _one_nudge_handed_out(app) -> uuid.UUID:
    """A member with a phone and a log reminder due at NOW, claimed by a tick whose delivery task was
    lost: its id."""
    from companion.nudges import dispatcher_tx

    member_id = make_member(app)
    add_device(app, member_id)
    handed: list = []
    with app.app_context():
        dispatcher_tx.dispatch_due(now=lambda: NOW, send=handed.extend)
    [nudge_id] = handed
    return nudge_id


@contextmanager
def _delivered_elsewhere(app, nudge_id: uuid.UUID) -> Iterator[None]:
    """Another live worker holds the delivery lock of `nudge_id` meanwhile."""
    with app.extensions["engine"].connect() as other_worker:
        other_worker.execute(
            text(f"SELECT pg_advisory_lock({delivery.delivery_lock_key('CAST(:id AS uuid)')})"),
            {"id": str(nudge_id)},
        )
        yield
        other_worker.execute(text("SELECT pg_advisory_unlock_all()"))


def test_a_nudge_another_live_worker_is_delivering_is_left_alone(app, gateway, deliver):
    nudge_id = _one_nudge_handed_out(app)
    with _delivered_elsewhere(app, nudge_id):
        report = deliver([nudge_id], NOW)
        assert (report.locked_elsewhere, gateway.requests()) == (1, [])
    deliver([nudge_id], NOW)
    deliver([nudge_id], NOW)  # a redelivered task: nothing more to do
    assert gateway.per_nudge() == {str(nudge_id): 1}


#: Two ids whose 32-bit `hashtext` is the same (found among 300,000 random ones).
SAME_HASHTEXT = (
    uuid.UUID("4353dd8a-550d-42f8-b3cd-f503abe735dc"),
    uuid.UUID("d438d37b-e75b-452b-87ab-ec4b4230826f"),
)


def test_a_nudge_whose_id_hashes_like_one_being_delivered_is_not_held_back(app, gateway, deliver):
    """Each nudge has a lock of its own: another worker delivering a nudge whose id has the same 32-bit
    hash does not make this one wait for its lease."""
    nudge_id = _one_nudge_handed_out(app)
    busy, mine = SAME_HASHTEXT
    with app.app_context(), db.unit_of_work() as session:
        session.execute(text("UPDATE nudges SET id = :mine WHERE id = :id"), {"mine": mine, "id": nudge_id})
        assert session.execute(
            text("SELECT hashtext(CAST(:a AS text)) = hashtext(CAST(:b AS text))"),
            {"a": str(busy), "b": str(mine)},
        ).scalar_one()
    with _delivered_elsewhere(app, busy):
        report = deliver([mine], NOW)
    assert (report.locked_elsewhere, gateway.per_nudge()) == (0, {str(mine): 1})


def test_every_push_in_flight_has_its_sender_at_once():
    """A push recorded as leaving must leave at once (a worker killed later must not strand it): the
    APNs channel has a thread for every push a delivery task can have in flight (FCM's connections are
    not bounded)."""
    from companion.notifications import apns

    assert apns.SENDING_THREADS >= delivery.PUSH_CONCURRENCY * delivery.IN_FLIGHT_GROUPS
