"""gunicorn's threaded worker, with connections shared between the workers by how busy each is.

gunicorn's gthread workers share one listening socket, and a kept-alive connection stays with the worker
that accepted it. A few long-lived connections (a proxy's, a load balancer's, the benchmark's) can so end
up mostly on one worker: measured at 72-84 % of capacity, splits of 10/6 to 14/2 of 16 connections left
one worker's queue growing for seconds while the other idled (p99 100 ms-1.4 s in open-loop rounds,
against 10-15 ms in most rounds with this worker). Two rules, as a load balancer would apply them:

* a worker accepts a new connection only while it has a thread free (requests in flight, running or
  queued for its threads, fewer than its threads): a worker that is behind leaves it to one that is not;
* a kept-alive connection is closed after `KEEPALIVE_REQUESTS` requests ("Connection: close", as nginx's
  `keepalive_requests` and Apache's `MaxKeepAliveRequests` do), so its client connects again, to a worker
  with a thread free.

`companion up` and docker-compose run it through `companion/gunicorn_conf.py` (`worker_class`).
"""

from __future__ import annotations

from typing import Any

from gunicorn.workers.gthread import ThreadWorker  # type: ignore[import-untyped]  # gunicorn ships no type hints

#: Requests a kept-alive connection serves before it is closed (nginx's default is 1,000, Apache's 100).
KEEPALIVE_REQUESTS = 100


class BalancedThreadWorker(ThreadWorker):  # type: ignore[misc]  # its base is untyped (Any)
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.in_flight = 0  # requests handed to the thread pool and not finished (main thread only)

    def enqueue_req(self, conn: Any) -> None:
        self.in_flight += 1
        if self.in_flight >= self.cfg.threads:
            super().set_accept_enabled(False)
        super().enqueue_req(conn)

    def finish_request(self, conn: Any, fs: Any) -> None:
        self.in_flight -= 1  # before the parent's, which may hand the connection to the pool again
        super().finish_request(conn, fs)

    def set_accept_enabled(self, enabled: bool) -> None:
        # The run loop enables accepting whenever the worker holds fewer connections than its limit.
        super().set_accept_enabled(enabled and self.in_flight < self.cfg.threads)

    def handle_request(self, req: Any, conn: Any) -> Any:
        if req.req_number >= KEEPALIVE_REQUESTS:
            req.must_close = True  # answered with "Connection: close"; the client connects again
        return super().handle_request(req, conn)
