"""Private servers for the fault tests: a PostgreSQL cluster of our own (initdb into a temporary folder,
its own port) that a test may stop and restart, and the API under gunicorn as production runs it.

Never the machine's shared PostgreSQL or Redis: every server here is ours alone, stopped by its own pid
or data folder. The private Redis and the Celery worker/beat come from tests/nudges/processes.py.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psycopg

from companion.supervisor import GUNICORN_HEAD_LIMITS, WEB_WORKER_CLASS
from tests.nudges.processes import ROOT, free_port


def _postgres_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if not found:
        raise RuntimeError("no PostgreSQL server binaries under /usr/lib/postgresql (apt install postgresql)")
    return Path(found[-1]).parent


class PrivatePostgres:
    """initdb + pg_ctl of our own. As root, the server runs as the `postgres` system user (initdb
    refuses root). fsync is off: these tests restart the server, they do not crash the machine."""

    def __init__(self, keep_log_in: Path) -> None:
        self.bin = _postgres_bin()
        # A folder of its own right under the temporary root, not under pytest's: pytest makes its
        # base folder owner-only again whenever a session starts, and the server user must reach ours.
        self.folder = Path(tempfile.mkdtemp(prefix="companion-pg-"))
        self.data = self.folder / "pgdata"
        self.port = free_port()
        self.log = self.folder / "postgres.log"
        self.keep_log_in = keep_log_in
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres:
            shutil.chown(self.folder, "postgres", "postgres")

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/companion"

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
        command = [str(self.bin / args[0]), *args[1:]]
        if self._as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, capture_output=True, timeout=120)
        if check and done.returncode != 0:
            log = self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""
            raise RuntimeError(f"{args[0]} failed: {done.stdout.decode()} {done.stderr.decode()}\n{log}")
        return done

    def init(self) -> None:
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.folder} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=60"
        )
        self._run(
            "pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.log), "-w", "-t", "60", "start"
        )

    def stop(self, mode: str = "fast", *, check: bool = True) -> None:
        """`fast` ends every session (what an operator's restart does); `immediate` is a crash."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop", check=check)

    def is_up(self) -> bool:
        try:
            with psycopg.connect(
                f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres", connect_timeout=1
            ):
                return True
        except psycopg.Error:
            return False

    def destroy(self) -> None:
        """Stop it and drop its folder; the server's log is copied into the test's folder."""
        if self.data.exists():
            self.stop("immediate", check=False)
        if self.log.exists():
            self.keep_log_in.mkdir(parents=True, exist_ok=True)
            shutil.copy(self.log, self.keep_log_in / "postgres.log")
        shutil.rmtree(self.folder, ignore_errors=True)


class ApiServer:
    """`gunicorn companion.wsgi:app` (companion/gunicorn_worker.py's workers), as the Dockerfile runs it,
    in its own group."""

    def __init__(self, folder: Path, env: dict[str, str], workers: int = 2) -> None:
        self.folder = folder
        self.env = env
        self.port = free_port()
        self.workers = workers
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> None:
        gunicorn = Path(sys.executable).with_name("gunicorn")
        with open(self.folder / "gunicorn.out", "ab") as out:
            self.process = subprocess.Popen(
                [str(gunicorn), "-w", str(self.workers), "-k", WEB_WORKER_CLASS, "--threads", "4",
                 "-b", f"127.0.0.1:{self.port}", "--timeout", "60", *GUNICORN_HEAD_LIMITS,
                 "companion.wsgi:app"],
                env=self.env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError, ValueError):
                # The web tier's own needs; the worker and beat start later in these tests.
                checks = httpx.get(f"{self.url}/readyz", timeout=2).json()["checks"]
                if checks["postgresql"] == checks["redis"] == "ok":
                    return
            if self.process.poll() is not None:
                break
            time.sleep(0.2)
        raise RuntimeError(f"gunicorn did not become ready:\n{self.output()}")

    def pids(self) -> set[int]:
        """The arbiter and its workers: the same set before and after a fault means nothing restarted."""
        import psutil

        assert self.process is not None
        parent = psutil.Process(self.process.pid)
        return {parent.pid, *(child.pid for child in parent.children())}

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)

    def output(self) -> str:
        path = self.folder / "gunicorn.out"
        return path.read_text(errors="replace")[-6000:] if path.exists() else ""
