"""Who is alive besides the web tier: the worker's and beat's heartbeats in Redis, and the queue's depth.

* Every worker writes its hostname's field in one hash every HEARTBEAT_INTERVAL (30) seconds, from its own
  timer (workers/heartbeat.py), and again whenever it runs `system.heartbeat`, which beat sends every
  minute (the path beat → broker → worker, end to end). A worker that stops cleanly removes its field;
  one that is killed goes stale.
* Beat writes its own key from its scheduler's tick (workers/beat.py), so a dead beat and a dead
  worker are told apart.

Readiness (`/readyz`, `companion status`) calls a heartbeat older than HEARTBEAT_STALE_SECONDS
(3 minutes) stale. Only ids of processes (hostnames) and times are stored: nothing about members.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis

WORKER_KEY = "companion:heartbeat:worker"
BEAT_KEY = "companion:heartbeat:beat"
#: Seconds between two heartbeats of the same process: well inside the 3-minute staleness.
HEARTBEAT_INTERVAL = 30


def interval(stale_after: float) -> float:
    """Heartbeat period for a staleness window: HEARTBEAT_INTERVAL, or a sixth of a shorter window
    (tests run with a few seconds), so one missed write never makes a live process look stale."""
    return max(0.5, min(HEARTBEAT_INTERVAL, stale_after / 6))


#: Kept in Redis this long after the last write, so a long-dead process's time can still be reported.
_KEEP_SECONDS = 24 * 3600
#: Celery's default queue on Redis is a list named after it; kombu adds one list per priority step.
QUEUE = "celery"
_PRIORITY_SEP = "\x06\x16"
_PRIORITY_STEPS = (3, 6, 9)


def write_worker(client: redis.Redis, hostname: str, now: float) -> None:
    with client.pipeline() as pipe:
        pipe.hset(WORKER_KEY, hostname, f"{now:.3f}")
        pipe.expire(WORKER_KEY, _KEEP_SECONDS)
        pipe.execute()


def remove_worker(client: redis.Redis, hostname: str) -> None:
    client.hdel(WORKER_KEY, hostname)


def write_beat(client: redis.Redis, now: float) -> None:
    client.set(BEAT_KEY, f"{now:.3f}", ex=_KEEP_SECONDS)


def remove_beat(client: redis.Redis) -> None:
    client.delete(BEAT_KEY)


@dataclass(frozen=True)
class Heartbeats:
    #: hostname -> the Unix time of its last heartbeat
    workers: dict[str, float]
    beat: float | None


def read(client: redis.Redis) -> Heartbeats:
    with client.pipeline(transaction=False) as pipe:
        pipe.hgetall(WORKER_KEY)
        pipe.get(BEAT_KEY)
        workers, beat = pipe.execute()
    return Heartbeats(
        workers={k.decode(): float(v) for k, v in workers.items()},
        beat=float(beat) if beat is not None else None,
    )


def queue_keys(queue: str = QUEUE) -> list[str]:
    return [queue, *(f"{queue}{_PRIORITY_SEP}{step}" for step in _PRIORITY_STEPS)]


def queue_depth(client: redis.Redis, queue: str = QUEUE) -> int:
    """Messages waiting in the broker (not those a worker holds unacknowledged)."""
    with client.pipeline(transaction=False) as pipe:
        for key in queue_keys(queue):
            pipe.llen(key)
        return sum(pipe.execute())


@dataclass(frozen=True)
class Liveness:
    """One process kind's verdict: ok, stale (seen, too long ago) or missing (never seen, or stopped)."""

    status: str
    last_seen: float | None
    age_seconds: float | None
    alive: int = 0  # workers only: how many wrote within the staleness window


def judge_worker(beats: Heartbeats, *, now: float, stale_after: float) -> Liveness:
    if not beats.workers:
        return Liveness("missing", None, None)
    newest = max(beats.workers.values())
    alive = sum(1 for at in beats.workers.values() if now - at <= stale_after)
    return Liveness("ok" if alive else "stale", newest, round(max(0.0, now - newest), 1), alive)


def judge_beat(beats: Heartbeats, *, now: float, stale_after: float) -> Liveness:
    if beats.beat is None:
        return Liveness("missing", None, None)
    age = max(0.0, now - beats.beat)
    return Liveness("ok" if age <= stale_after else "stale", beats.beat, round(age, 1))
