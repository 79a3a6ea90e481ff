"""Container healthchecks for the worker and beat: `python -m companion.probe worker|beat`.

Exit 0 when this container's process wrote its heartbeat (companion/heartbeats.py) within
HEARTBEAT_STALE_SECONDS, else 1 with the reason on stderr. Imports only redis: it runs every 30 s.
The worker is found by its Celery node name, `celery@<hostname>` unless `--node` says otherwise.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import time

import redis

from companion import heartbeats


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m companion.probe")
    parser.add_argument("process", choices=["worker", "beat"])
    parser.add_argument("--node", default=f"celery@{socket.gethostname()}", help="the worker's node name")
    args = parser.parse_args(argv)
    stale_after = int(os.environ.get("HEARTBEAT_STALE_SECONDS", "180"))
    url = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
        try:
            beats = heartbeats.read(client)
        finally:
            client.close()
    except redis.RedisError as exc:
        sys.stderr.write(f"redis unreachable: {type(exc).__name__}\n")
        return 1
    at = beats.workers.get(args.node) if args.process == "worker" else beats.beat
    if at is None:
        who = args.node if args.process == "worker" else "beat"
        sys.stderr.write(f"{who}: no heartbeat\n")
        return 1
    age = time.time() - at
    if age > stale_after:
        sys.stderr.write(f"{args.process}: last heartbeat {age:.0f} s ago\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
