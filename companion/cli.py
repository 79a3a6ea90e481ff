"""The `companion` command line (API.md "Command line")."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from companion import migrate
from companion.config import Config
from companion.domain.errors import DomainError
from companion.runtime import Services, port_open, resolve
from companion.supervisor import STOP_GRACE, Restarts, child_commands, metrics_folder, signal_group


def _services() -> tuple[Config, Services]:
    config = Config.from_env()
    services = resolve(
        database_url=config.database_url, redis_url=config.redis_url, instance_path=Path(config.instance_path)
    )
    return Config.from_env(database_url=services.database_url, redis_url=services.redis_url), services


@contextmanager
def _app_context() -> Iterator[Services]:
    from companion.app import create_app

    config, services = _services()
    app = create_app(config)
    with app.app_context():
        yield services


@click.group()
@click.version_option(package_name="companion", prog_name="companion")
def main() -> None:
    """Companion: the recovery program's API, dashboard, workers and tools."""


def describe_error(exc: DomainError) -> str:
    """The message and each field's reason, as the API's 422 gives them (`period.end: Must be ...`)."""
    reasons = [
        f"{name}: {' '.join(map(str, messages)) if isinstance(messages, list) else messages}"
        for name, messages in (exc.fields or {}).items()
    ]
    return " ".join([exc.message, *reasons])


def _fail_on_domain_error(fn):
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except DomainError as exc:
            raise click.ClickException(describe_error(exc)) from exc

    return wrapper


# --- database ---------------------------------------------------------------------------------------


@main.group()
def db() -> None:
    """Alembic migrations: the only way the schema is made."""


@db.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    """Upgrade to REVISION (default: head)."""
    config, _services_handle = _services()
    migrate.upgrade(config.database_url, revision)
    click.echo(f"database at {migrate.current(config.database_url)}")


@db.command("downgrade")
@click.argument("revision")
def db_downgrade(revision: str) -> None:
    """Downgrade to REVISION ('base' for an empty database, '-1' for one step)."""
    config, _services_handle = _services()
    migrate.downgrade(config.database_url, revision)
    click.echo(f"database at {migrate.current(config.database_url)}")


@db.command("current")
def db_current() -> None:
    """Print the database's revision."""
    config, _services_handle = _services()
    click.echo(migrate.current(config.database_url) or "base (empty)")


# --- health ---------------------------------------------------------------------------------------


@main.command("status")
@click.option("--json", "as_json", is_flag=True, help="The same JSON as /readyz.")
def status(as_json: bool) -> None:
    """What /readyz reports: PostgreSQL, Redis, the worker's and beat's heartbeats, the queue's depth.

    Exits 1 when something is down or stale, so scripts can test it.
    """
    import json

    from companion.health import readiness

    with _app_context():
        report = readiness()
    if as_json:
        click.echo(json.dumps(report.as_json(), indent=2))
    else:
        for name, state in report.checks.items():
            click.echo(f"{name:<11} {state}{_liveness_detail(report, name)}")
        depth = "unknown" if report.queue_depth is None else str(report.queue_depth)
        click.echo(f"{'queue':<11} {depth} waiting")
        click.echo("ready" if report.ready else f"NOT READY: {', '.join(report.failing)}")
    if not report.ready:
        sys.exit(1)


def _liveness_detail(report, name: str) -> str:
    liveness = {"worker": report.worker, "beat": report.beat}.get(name)
    if liveness is None or liveness.age_seconds is None:
        return ""
    alive = f", {liveness.alive} alive" if name == "worker" else ""
    return f" (last heartbeat {liveness.age_seconds:.0f} s ago{alive})"


# --- accounts ---------------------------------------------------------------------------------------


@main.command("create-insurer")
@click.option("--name", required=True, help="The plan's name.")
@click.option("--code", required=True, help="The enrollment code members type at registration.")
@_fail_on_domain_error
def create_insurer(name: str, code: str) -> None:
    """Create an insurer plan and print its enrollment code."""
    from companion.accounts import services
    from companion.db import unit_of_work, utcnow

    with _app_context(), unit_of_work():
        insurer = services.create_insurer(name, code, now=utcnow())
        click.echo(f"insurer {insurer.name!r} created; enrollment code: {insurer.code}")


@main.command("create-staff")
@click.option("--role", required=True, type=click.Choice(["coach", "admin", "insurer_analyst"]))
@click.option("--email", required=True)
@click.option(
    "--password",
    default=None,
    help="At least 10 characters. Left out: asked for (hidden, twice). On the command line it stays "
    "in the shell's history and is visible to `ps`: prefer the prompt or --password-stdin.",
)
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of stdin.")
@click.option("--insurer", "insurer_code", default=None, help="The insurer's code (insurer analysts only).")
@click.option("--name", "display_name", default=None, help="The name members and colleagues see.")
@_fail_on_domain_error
def create_staff(
    role: str,
    email: str,
    password: str | None,
    password_stdin: bool,
    insurer_code: str | None,
    display_name: str | None,
) -> None:
    """Create a staff account (staff never self-register)."""
    from companion.accounts import services
    from companion.accounts.models import Role
    from companion.db import unit_of_work, utcnow

    if password_stdin:
        if password is not None:
            raise click.UsageError("give --password or --password-stdin, not both")
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise click.UsageError("--password-stdin: stdin held no password")
    elif password is None:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)

    with _app_context(), unit_of_work():
        user = services.create_staff(
            Role(role), email, password, insurer_code=insurer_code, display_name=display_name, now=utcnow()
        )
        click.echo(f"{role} {user.email} created")


@main.command("set-password")
@click.option("--email", required=True)
@click.option("--password", required=True, help="At least 10 characters.")
@_fail_on_domain_error
def set_password(email: str, password: str) -> None:
    """Give an account a new password; every sign-in made with the old one ends (tokens and dashboard)."""
    from companion.accounts import services
    from companion.db import unit_of_work, utcnow

    with _app_context(), unit_of_work():
        user = services.set_password(email, password, now=utcnow())
        click.echo(f"password of {user.email} changed; its sign-ins have ended")


@main.command("assign-coach")
@click.option("--member", "member_email", required=True)
@click.option("--coach", "coach_email", required=True)
@_fail_on_domain_error
def assign_coach(member_email: str, coach_email: str) -> None:
    """Put a member on a coach's caseload (ending any previous assignment)."""
    from companion.accounts import services
    from companion.db import unit_of_work, utcnow

    with _app_context(), unit_of_work():
        services.assign_coach(member_email, coach_email, now=utcnow())
        click.echo(f"{member_email} is on {coach_email}'s caseload")


# --- insurer reports ------------------------------------------------------------------------------


@main.command("export")
@click.option("--insurer", "insurer_code", required=True, help="The insurer's code.")
@click.option("--from", "start", required=True, metavar="YYYY-MM", help="The first month.")
@click.option("--to", "end", required=True, metavar="YYYY-MM", help="The last month (one that is over).")
@click.option("--format", "fmt", required=True, type=click.Choice(["csv", "json", "fhir"]))
@click.option(
    "--breakdown",
    "breakdowns",
    multiple=True,
    type=click.Choice(["medication", "program_month", "goal_type"]),
    help="A breakdown beside the total; repeat for several.",
)
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None, help="Write here, not stdout.")
@_fail_on_domain_error
def export(
    insurer_code: str, start: str, end: str, fmt: str, breakdowns: tuple[str, ...], output: str | None
) -> None:
    """The insurer report, built here without the API or a worker: the same file, and audited.

    The progress bar goes to stderr, so the report can go to stdout.
    """
    from companion.db import unit_of_work, utcnow
    from companion.exports import build_tx

    with (
        _app_context(),
        unit_of_work(),
        click.progressbar(length=100, label="members", file=sys.stderr, show_percent=True) as bar,
    ):
        shown = [0]

        def progress(done: int, total: int) -> None:
            percent = done * 100 // total if total else 100
            bar.update(percent - shown[0])
            shown[0] = percent

        built = build_tx.export_for_insurer(
            insurer_code, start, end, fmt, breakdowns, now=utcnow(), progress=progress
        )
        bar.update(100 - shown[0])
    if output is None:
        sys.stdout.buffer.write(built.content)
        sys.stdout.buffer.flush()
    else:
        Path(output).write_bytes(built.content)
        click.echo(f"{built.row_count} rows written to {output}", err=True)


# --- a synthetic population -------------------------------------------------------------------------


@main.command("simulate")
@click.option("--members", required=True, type=click.IntRange(1, 10_000_000), help="How many members.")
@click.option("--days", default=90, show_default=True, type=click.IntRange(1, 3650), help="Days of history.")
@click.option("--seed", default=1, show_default=True, type=int, help="The same seed gives the same people.")
def simulate(members: int, days: int, seed: int) -> None:
    """Write a realistic synthetic population straight to the database (COPY), its history ending now.

    Members and coaches sign in with the password `simulated-member`.
    """
    from companion import simulate as simulation
    from companion.db import utcnow
    from companion.runtime import libpq_url

    config, _services_handle = _services()
    migrate.upgrade(config.database_url)
    with click.progressbar(length=days + 1, label="days", file=sys.stderr) as bar:
        try:
            done = simulation.simulate(
                libpq_url(config.database_url),
                members=members,
                days=days,
                seed=seed,
                now=utcnow(),
                progress=bar.update,
            )
        except ValueError as exc:
            raise click.ClickException(str(exc)) from exc
    click.echo(
        f"{done.members:,} members, {done.first_day} to {done.last_day}, insurer {done.insurer_code}, "
        f"in {done.seconds:.1f} s (password: {simulation.SIMULATED_PASSWORD}):"
    )
    for table, n in done.rows.items():
        click.echo(f"  {table:<20} {n:>12,}")


# --- running everything -----------------------------------------------------------------------------


def _print_demo(logins, port: int) -> None:
    click.echo("")
    click.echo(f"Demo logins (password for all: {logins.password})")
    click.echo(f"  coach:    {logins.coach}   dashboard http://127.0.0.1:{port}/dashboard/login")
    click.echo(f"  admin:    {logins.admin}")
    click.echo(f"  analyst:  {logins.analyst}")
    click.echo(f"  members:  {', '.join(logins.members)}")
    click.echo("")
    from companion.demo import FIRST_LOOKS

    click.echo("What to look at first:")
    for n, line in enumerate(FIRST_LOOKS, start=1):
        click.echo(f"  {n}. {line}")
    click.echo("")

    # fmt: on


def _warn_without_admin() -> None:
    """Urgent flags past their SLA escalate to the admins: with none, say so before anything runs."""
    from companion.safety.escalation import admin_exists

    with _app_context():
        if not admin_exists():
            click.echo(
                "WARNING: no admin account exists, so an urgent flag not acknowledged within its SLA "
                "escalates to no one (every coach's dashboard will say so). Create one: "
                "companion create-staff --role admin --email E --password P",
                err=True,
            )


@main.command("up")
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--demo", is_flag=True, help="Add demo accounts and data, and print how to log in.")
@click.option("--web-workers", default=2, show_default=True, type=int)
def up(port: int, host: str, demo: bool, web_workers: int) -> None:
    """Migrate, then run the API and dashboard, a Celery worker and beat together; a child that exits
    is started again (with back-off). Ctrl-C stops all."""
    if port_open("127.0.0.1" if host in ("0.0.0.0", "") else host, port):
        raise click.ClickException(f"port {port} is in use; pick another with --port")
    signals = 0
    children: dict[str, subprocess.Popen[bytes]] = {}

    def on_signal(signum: int, _frame: object) -> None:
        # First Ctrl-C: stop everything in order. A second one: kill the children now.
        nonlocal signals
        signals += 1
        if not children:
            if signals == 1:  # still starting: unwind; the finally below lets go of the servers
                raise KeyboardInterrupt
            return  # already unwinding: let the servers stop cleanly
        if signals > 1:
            click.echo("second interrupt: killing the children", err=True)
            for child in children.values():
                signal_group(child, signal.SIGKILL)

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    exit_code = 0
    services: Services | None = None
    try:
        config, services = _services()
        click.echo(f"services: {services.describe()}")
        # Resolved once, here: the children (and anything else this process starts) use these servers.
        os.environ["DATABASE_URL"] = config.database_url
        os.environ["REDIS_URL"] = config.redis_url
        migrate.upgrade(config.database_url)
        if demo:
            from companion.db import unit_of_work, utcnow
            from companion.demo import ensure_cohort, ensure_demo
            from companion.runtime import libpq_url

            with _app_context(), unit_of_work():
                logins = ensure_demo(now=utcnow())
            ensure_cohort(libpq_url(config.database_url), now=utcnow())
            _print_demo(logins, port)
        _warn_without_admin()

        instance = Path(config.instance_path)
        instance.mkdir(parents=True, exist_ok=True)
        env = {**os.environ}
        env.setdefault("SESSION_COOKIE_SECURE", "false")  # local http; production sets it true
        env.setdefault("RATELIMIT_PROCESSES", str(web_workers))  # each one's share while Redis is down
        commands = child_commands(sys.executable, host, port, web_workers, instance)
        restarts = {name: Restarts() for name in commands}
        child_envs = {
            name: {**env, "PROMETHEUS_MULTIPROC_DIR": metrics_folder(instance, name)} for name in commands
        }
        for name, command in commands.items():
            # Own sessions: a terminal's Ctrl-C reaches only us, and we stop the children in order.
            children[name] = subprocess.Popen(command, env=child_envs[name], start_new_session=True)
            restarts[name].started(time.monotonic())
        click.echo(
            f"companion is up: API http://{host}:{port}/api/v1  docs http://{host}:{port}/api/docs  "
            f"ready http://{host}:{port}/readyz  (Ctrl-C stops everything)"
        )
        while not signals:
            now = time.monotonic()
            for name, child in children.items():
                if child.poll() is None or restarts[name].due_at is not None:
                    continue
                # A child that exits is started again, waiting longer after each quick exit: a
                # worker that died with its Redis comes back when Redis does, and the API, the
                # other children and what they hold stay up meanwhile.
                signal_group(child, signal.SIGKILL)  # what it left behind (a pool process)
                delay = restarts[name].exited(now)
                click.echo(f"{name} exited with {child.returncode}; restarting it in {delay:.0f}s", err=True)
            for name, restart in restarts.items():
                if restart.due_at is not None and now >= restart.due_at and not signals:
                    command, child_env = commands[name], child_envs[name]
                    children[name] = subprocess.Popen(command, env=child_env, start_new_session=True)
                    restart.started(now)
                    click.echo(f"{name} restarted", err=True)
            time.sleep(0.2)
    except KeyboardInterrupt:
        exit_code = 130
    finally:
        if children:
            click.echo("stopping web, worker and beat ...")
            for child in children.values():
                signal_group(child, signal.SIGTERM)
            deadline = time.monotonic() + STOP_GRACE
            for name, child in children.items():
                try:
                    child.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    click.echo(f"{name} did not stop in {STOP_GRACE}s; killing it", err=True)
                # Whatever is left in the group (a stuck pool process, an orphaned gunicorn worker).
                signal_group(child, signal.SIGKILL)
                child.wait()
        if services is not None:
            services.close()  # stops the embedded PostgreSQL and Redis this run started
        click.echo("stopped")
    sys.exit(exit_code)


if __name__ == "__main__":
    main()
