"""Prometheus metrics: what the web tier and the workers count, and what a scrape reads from Redis and
PostgreSQL (heartbeats, queue depth, export jobs by state). docs/operations.md says what each means.

Processes: with PROMETHEUS_MULTIPROC_DIR set (gunicorn's workers, the Celery pool; `companion up` and
docker-compose.yml set it, one folder per service, emptied at start), every process writes its
counters to files there and a scrape adds them up (prometheus-client's multiprocess mode). Without
it (the Flask test client, a `--pool=solo` worker) the process's own registry is served.

Labels are routes (templates, never concrete paths), task names, rules, tiers, channels and error
codes: bounded sets, and nothing about a member.
"""

from __future__ import annotations

import collections
import hmac
import os
import re
import time
from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

#: Read by prometheus-client itself when it is imported; named here so the folder can be made first.
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
_multiproc_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
if _multiproc_dir:
    os.makedirs(_multiproc_dir, exist_ok=True)

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
#: Flag latency: from the entry's commit to the open flag. Scans run within seconds; the sweep within
#: the hour; the safety SLA counts in minutes.
_FLAG_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200)
_TASK_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 600)

HTTP_REQUESTS = Counter(
    "companion_http_requests_total", "HTTP requests answered, by route template and status.",
    ["method", "route", "status"],
)  # fmt: skip
HTTP_LATENCY = Histogram(
    "companion_http_request_duration_seconds", "Time to answer a request, by route template.",
    ["method", "route"], buckets=_LATENCY_BUCKETS,
)  # fmt: skip
WRITES_ACCEPTED = Counter(
    "companion_writes_accepted_total",
    "Write requests (POST, PUT, PATCH, DELETE) under /api answered 2xx, by route template.",
    ["route"],
)
_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: Each (method, route, status)'s series, looked up once: `labels()` takes a lock and builds its key on
#: every call (a percent of a member write's CPU). Bounded: route templates, never concrete paths.
_REQUEST_SERIES: dict[tuple[str, str, int], tuple[Any, Any, Any]] = {}


def request_answered(method: str, route: str, status: int, seconds: float) -> None:
    """Count an answered request (`route` its template): its status, its time and, for a write under
    /api answered 2xx, an accepted write."""
    series = _REQUEST_SERIES.get((method, route, status))
    if series is None:
        accepted = method in _WRITES and 200 <= status < 300 and route.startswith("/api/")
        series = _REQUEST_SERIES[(method, route, status)] = (
            HTTP_REQUESTS.labels(method, route, str(status)),
            HTTP_LATENCY.labels(method, route),
            WRITES_ACCEPTED.labels(route) if accepted else None,
        )
    count, latency, accepted_writes = series
    count.inc()
    latency.observe(seconds)
    if accepted_writes is not None:
        accepted_writes.inc()


SYNC_ITEMS = Counter(
    "companion_sync_items_total", "Offline-sync batch items by type and result (created, unchanged, ...).",
    ["type", "result"],
)  # fmt: skip
FLAGS_OPENED = Counter(
    "companion_flags_opened_total", "Safety flags opened, by rule and tier.", ["rule", "tier"]
)
FLAG_LATENCY = Histogram(
    "companion_flag_latency_seconds",
    "Seconds from the commit of the entry that made a flag to the flag being open.",
    ["rule", "tier"], buckets=_FLAG_BUCKETS,
)  # fmt: skip
NUDGES_PLANNED = Counter("companion_nudges_planned_total", "Nudge rows planned by the dispatcher.")
PUSHES = Counter(
    "companion_pushes_total",
    "Push attempts by channel (fcm, apns, log) and result (sent, retry, failed); `error` is the "
    "provider's code for a push that was not sent, empty when sent.",
    ["channel", "result", "error"],
)
TASKS = Counter(
    "companion_celery_tasks_total", "Celery tasks finished by name and state (SUCCESS, FAILURE, RETRY).",
    ["task", "state"],
)  # fmt: skip
TASK_DURATION = Histogram(
    "companion_celery_task_duration_seconds", "Run time of Celery tasks, by name.", ["task"],
    buckets=_TASK_BUCKETS,
)  # fmt: skip
EXPORT_BUILDS = Counter(
    "companion_export_builds_total", "Insurer export builds by outcome (done, failed, requeued, skipped).",
    ["outcome"],
)  # fmt: skip
EXPORT_DURATION = Histogram(
    "companion_export_build_duration_seconds", "Time to build an insurer export, by outcome.", ["outcome"],
    buckets=_TASK_BUCKETS,
)  # fmt: skip


def observe_flag_latency(seconds: float, rule: str, tier: str) -> None:
    """A flag opened `seconds` after the commit of the entry behind it (tier: info, warning, urgent)."""
    FLAG_LATENCY.labels(rule=rule, tier=tier).observe(max(0.0, seconds))


def flags_opened(opened: Iterable[tuple[str, str]]) -> None:
    """Count opened flags, given (rule, tier) pairs."""
    for rule, tier in opened:
        FLAGS_OPENED.labels(rule=rule, tier=tier).inc()


def count_sync_items(items: list[Any], results: list[dict[str, Any]], types: Iterable[str]) -> None:
    """One offline-sync batch's items by type (an item of a type not in `types` counts as `unknown`)
    and the status each answered: counted here first, one increment a (type, status) pair."""
    known = frozenset(types)
    counts = collections.Counter(
        (kind if (kind := item.get("type") if isinstance(item, dict) else None) in known else "unknown",
         str(result["status"]))
        for item, result in zip(items, results, strict=False)
    )  # fmt: skip
    for (kind, status), n in counts.items():
        SYNC_ITEMS.labels(type=kind, result=status).inc(n)


def count_pushes(by_channel: dict[tuple[str, str, str], int]) -> None:
    """Pushes of one delivery, given (channel, result, provider error) -> count."""
    for (channel, result, error), n in by_channel.items():
        PUSHES.labels(channel=channel, result=result, error=error_code(error)).inc(n)


_ERROR_CODE = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,39}")


def error_code(error: str | None) -> str:
    """A provider's error as a bounded label: its first word (UNREGISTERED, BadDeviceToken, ...)."""
    if not error:
        return ""
    found = _ERROR_CODE.search(error.split(":")[-1])
    return found.group(0) if found else "other"


# --- what a scrape reads ---------------------------------------------------------------------------


class SystemCollector(Collector):
    """Read at scrape time: heartbeats and queue depth from Redis, export jobs from PostgreSQL."""

    def __init__(self, redis_url: str, engine: Any) -> None:
        self.redis_url = redis_url
        self.engine = engine

    def collect(self) -> Iterator[GaugeMetricFamily]:
        import redis
        from sqlalchemy import text

        from companion import heartbeats

        up = GaugeMetricFamily("companion_dependency_up", "1 when the dependency answered this scrape.",
                               labels=["dependency"])  # fmt: skip
        try:
            client = redis.Redis.from_url(self.redis_url, socket_connect_timeout=0.5, socket_timeout=0.5)
            try:
                beats = heartbeats.read(client)
                depth = heartbeats.queue_depth(client)
            finally:
                client.close()
            up.add_metric(["redis"], 1)
        except Exception:
            up.add_metric(["redis"], 0)
        else:
            last = GaugeMetricFamily(
                "companion_heartbeat_timestamp_seconds",
                "Unix time of the last heartbeat of beat, and of the newest worker.",
                labels=["process"],
            )
            age = GaugeMetricFamily(
                "companion_heartbeat_age_seconds",
                "Seconds since the last heartbeat of beat, and of the newest worker.",
                labels=["process"],
            )
            now = time.time()
            newest = {"worker": max(beats.workers.values(), default=None), "beat": beats.beat}
            for process, at in newest.items():
                if at is not None:
                    last.add_metric([process], at)
                    age.add_metric([process], max(0.0, now - at))
            yield last
            yield age
            yield GaugeMetricFamily(
                "companion_workers_seen", "Workers with a heartbeat in Redis (stale or not).",
                value=len(beats.workers),
            )  # fmt: skip
            queue = GaugeMetricFamily(
                "companion_queue_depth", "Tasks waiting in the broker.", labels=["queue"]
            )
            queue.add_metric([heartbeats.QUEUE], depth)
            yield queue
        try:
            with self.engine.connect() as conn:
                rows = conn.execute(text("SELECT status, count(*) FROM export_jobs GROUP BY status")).all()
            up.add_metric(["postgresql"], 1)
        except Exception:
            up.add_metric(["postgresql"], 0)
        else:
            jobs = GaugeMetricFamily(
                "companion_export_jobs", "Insurer export jobs by state.", labels=["state"]
            )
            counts = dict.fromkeys(("queued", "running", "done", "failed"), 0)
            counts.update({str(status): int(n) for status, n in rows})
            for state, n in sorted(counts.items()):
                jobs.add_metric([state], n)
            yield jobs
        yield up


def counted_registry() -> CollectorRegistry:
    """Every process's counters: the multiprocess folder's, else this process's own registry."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return registry
    return REGISTRY


def exposition(*extra: Collector) -> tuple[bytes, str]:
    """The text format of every counter, and of `extra` collectors read now."""
    body = generate_latest(counted_registry())
    if extra:
        registry = CollectorRegistry(auto_describe=False)
        for collector in extra:
            registry.register(collector)
        body += generate_latest(registry)
    return body, CONTENT_TYPE_LATEST


def token_matches(presented: str | None, expected: str) -> bool:
    """The scrape's `Authorization: Bearer <METRICS_TOKEN>`, compared in constant time."""
    if not expected or not presented or not presented.startswith("Bearer "):
        return False
    return hmac.compare_digest(presented[len("Bearer ") :].encode(), expected.encode())


def mark_process_dead(pid: int) -> None:
    """A gunicorn worker or pool process is gone: drop its live-gauge files (counters are kept)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)
