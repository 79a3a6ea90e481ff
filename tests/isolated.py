"""Run a scenario against an app built in a separate interpreter, with its own settings.

Extensions are process-wide singletons (Flask-Limiter's storage, the scoped session), so a test that
needs, say, an unreachable Redis builds its app in a child process instead of disturbing the rest.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

PRELUDE = """
import json, sys
from companion.app import create_app
from companion.config import Config
app = create_app(Config.from_env(session_cookie_secure=False))
client = app.test_client()
out = {}
"""


def run_app_script(body: str, env: dict[str, str], timeout: float = 60) -> dict[str, Any]:
    """`body` uses `app`, `client` and fills the dict `out`, which comes back parsed."""
    script = PRELUDE + textwrap.dedent(body) + "\nprint('@@RESULT@@' + json.dumps(out, default=str))\n"
    result = subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    marker = [line for line in result.stdout.splitlines() if line.startswith("@@RESULT@@")]
    if result.returncode != 0 or not marker:
        raise AssertionError(
            f"child failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
    return json.loads(marker[-1][len("@@RESULT@@") :])
