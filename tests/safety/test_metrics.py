"""Flags opened, counted by rule and tier from what the scan task got back (companion/metrics.py)."""

from __future__ import annotations

from companion import metrics
from tests.ops.metrics_scrape import value
from tests.safety import helpers
from tests.safety.test_services import NOW, TODAY, person, team  # noqa: F401  (fixtures)


def scraped(name: str, **labels: str) -> float:
    return value(metrics.exposition()[0].decode(), name, **labels)


def test_the_scan_task_counts_the_flags_it_opened(app, person, redis):  # noqa: F811
    person.dose(TODAY, "08:00", ("nausea", "severe"))
    name, labels = "companion_flags_opened_total", {"rule": "severe_side_effect", "tier": "urgent"}
    before = scraped(name, **labels)
    with helpers.travel(NOW):
        helpers.scan(person.id, redis)
        opened = {(f.rule, f.tier) for f in helpers.flags_of(app, person.id)}
        helpers.scan(person.id, redis)  # again: nothing new opens, nothing more is counted
    assert ("severe_side_effect", 3) in opened, opened
    assert scraped(name, **labels) == before + 1


def test_observe_flag_latency_feeds_the_histogram():
    labels = {"rule": "severe_side_effect", "tier": "urgent"}
    count = scraped("companion_flag_latency_seconds_count", **labels)
    total = scraped("companion_flag_latency_seconds_sum", **labels)
    under_15 = scraped("companion_flag_latency_seconds_bucket", le="15.0", **labels)
    metrics.observe_flag_latency(12.5, "severe_side_effect", "urgent")
    assert scraped("companion_flag_latency_seconds_count", **labels) == count + 1
    assert scraped("companion_flag_latency_seconds_sum", **labels) == total + 12.5
    assert scraped("companion_flag_latency_seconds_bucket", le="15.0", **labels) == under_15 + 1
