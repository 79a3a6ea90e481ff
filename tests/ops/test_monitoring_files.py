"""docs/monitoring: the alert rules and the Grafana dashboard parse, and every metric they query is
one Companion exports (a renamed metric must not silently blind an alert)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml
from prometheus_client import REGISTRY

from companion import metrics

ROOT = Path(__file__).resolve().parent.parent.parent
MONITORING = ROOT / "docs" / "monitoring"
_SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}


def exported_names(app) -> set[str]:
    families = list(REGISTRY.collect())
    families += list(metrics.SystemCollector(app.config["REDIS_URL"], app.extensions["engine"]).collect())
    names = set()
    for family in families:
        if family.name.startswith("companion_"):
            names.update(family.name + suffix for suffix in _SUFFIXES.get(family.type, ("",)))
    return names


def queried(expr: str) -> set[str]:
    return set(re.findall(r"\bcompanion_[a-z_]+", expr))


def test_alert_rules_query_only_exported_metrics(app, redis):
    from companion import heartbeats

    heartbeats.write_worker(redis, "celery@a", 0)  # so the heartbeat gauges have a sample
    heartbeats.write_beat(redis, 0)
    rules = yaml.safe_load((MONITORING / "alerts.yml").read_text())
    alerts = [rule for group in rules["groups"] for rule in group["rules"]]
    names = {rule["alert"] for rule in alerts}
    assert {"CompanionWorkerStale", "CompanionBeatStale", "CompanionFlagLatencyHigh",
            "CompanionPushFailures"} <= names  # fmt: skip
    exported = exported_names(app)
    for rule in alerts:
        assert rule["annotations"]["summary"] and rule["labels"]["severity"] in {"page", "ticket"}
        unknown = queried(rule["expr"]) - exported
        assert not unknown, f"{rule['alert']} queries {unknown}"


def test_the_grafana_dashboard_queries_only_exported_metrics(app, redis):
    from companion import heartbeats

    heartbeats.write_worker(redis, "celery@a", 0)
    heartbeats.write_beat(redis, 0)
    dashboard = json.loads((MONITORING / "grafana-dashboard.json").read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    assert len(exprs) >= 10
    exported = exported_names(app)
    used = set().union(*(queried(e) for e in exprs))
    assert not used - exported, used - exported
    assert {"companion_flag_latency_seconds_bucket", "companion_queue_depth",
            "companion_heartbeat_age_seconds", "companion_pushes_total"} <= used  # fmt: skip
