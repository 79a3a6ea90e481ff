"""Pushes counted by channel, result and the provider's error code (companion/metrics.py), from what a
delivery reports; the same report the `nudges.deliver` task hands to the metrics."""

from __future__ import annotations

from datetime import UTC, datetime

from companion import metrics
from companion.nudges import dispatcher_tx
from tests.fake_push import fcm_error
from tests.nudges.conftest import add_device, make_member, nudges_of
from tests.ops.metrics_scrape import value

NOW = datetime(2026, 12, 2, 1, 0, tzinfo=UTC)  # 20:00 in New York: the default log time


def scraped(**labels: str) -> float:
    return value(metrics.exposition()[0].decode(), "companion_pushes_total", **labels)


def test_pushes_by_channel_result_and_error(app, gateway, deliver):
    member_id = make_member(app)
    dead = add_device(app, member_id, "android")
    add_device(app, member_id, "ios")
    gateway.script(dead, fcm_error("UNREGISTERED"))
    failed = {"channel": "fcm", "result": "failed", "error": "UNREGISTERED"}
    sent = {"channel": "apns", "result": "sent", "error": ""}
    before = scraped(**failed), scraped(**sent)

    claimed: list = []
    with app.app_context():
        dispatcher_tx.dispatch_due(now=lambda: NOW, send=claimed.extend)
    [nudge] = nudges_of(app, member_id)
    assert claimed == [nudge.id]
    report = deliver(claimed, NOW)
    metrics.count_pushes(report.by_channel)

    assert (scraped(**failed), scraped(**sent)) == (before[0] + 1, before[1] + 1)
    assert dict(report.by_channel) == {("fcm", "failed", "404 UNREGISTERED"): 1, ("apns", "sent", ""): 1}


def test_error_codes_are_bounded_labels():
    assert metrics.error_code("404 UNREGISTERED") == "UNREGISTERED"
    assert metrics.error_code("gave up after 5: 503 UNAVAILABLE") == "UNAVAILABLE"
    assert metrics.error_code("410 Unregistered") == "Unregistered"
    assert metrics.error_code(None) == "" and metrics.error_code("") == ""
