"""A WSGI app for tests/ops/test_gunicorn_worker.py: answers with its process id, after 1 s on /slow."""

from __future__ import annotations

import os
import time
from typing import Any


def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    if environ["PATH_INFO"] == "/slow":
        time.sleep(1.0)
    body = str(os.getpid()).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
