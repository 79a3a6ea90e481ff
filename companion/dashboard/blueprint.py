"""The dashboard's blueprint, and what its pages share: who may sign in, the staff member's zone, page
arguments and URLs, the error page, the template helpers and filters."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from flask import (
    Blueprint,
    abort,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user

from companion.accounts.models import Role
from companion.db import utcnow
from companion.domain import drinking, triage
from companion.domain.errors import InvalidInput
from companion.domain.safety import Tier
from companion.safety.loading import SETTINGS as SAFETY_SETTINGS
from companion.validation import iana_zones

bp = Blueprint("dashboard", __name__, url_prefix="/dashboard", template_folder="templates")

STAFF = (Role.COACH, Role.ADMIN)
QUEUE_PAGE = 50
SESSION_SEEN_AT = "dashboard_seen_at"
SESSION_ZONE = "dashboard_zone"


def error_page(status: int, message: str) -> tuple[str, int]:
    return render_template("dashboard/error.html", status=status, message=message), status


def safe_next(target: str | None) -> str:
    """Only a dashboard path: never an open redirect to another site."""
    if target and target.startswith("/dashboard/") and not target.startswith("//"):
        return target
    return url_for("dashboard.queue")


def choice(name: str, allowed: list[str]) -> str | None:
    value = request.args.get(name) or None
    if value is not None and value not in allowed:
        abort(400, description=f"{name}: must be one of {', '.join(allowed)}.")
    return value


def with_args(_drop: tuple[str, ...] = (), **changes: Any) -> str:
    """This page's URL with `changes` (None: left out) and without `_drop`; repeated arguments kept."""
    args = [(k, v) for k, v in request.args.items(multi=True) if k not in changes and k not in _drop]
    args += [(k, v) for k, v in changes.items() if v is not None]
    return f"{request.path}?{urlencode(args)}" if args else request.path


def page_refused(error: InvalidInput, advice: str) -> str:
    """A list page's 400: what was wrong with its `cursor` (made up, or from a list with other filters)."""
    problems = error.fields.get("cursor")
    return f"cursor: {problems[0]} {advice}" if problems else advice


def coach_zone() -> str:
    """The zone the signed-in staff member reads times in: their account's setting, else the browser's
    zone sent at sign-in, else UTC."""
    zone = getattr(current_user, "timezone", None) or session.get(SESSION_ZONE)
    return zone if zone in iana_zones() else "UTC"


def flag_times(flag: dict[str, Any]) -> dict[str, str | None]:
    """A flag's age, and the time left before it escalates (or how long it is overdue), as text."""
    now = utcnow()
    left = triage.escalates_in(
        tier=int(Tier[flag["severity"].upper()]),
        status=flag["status"],
        created_at=flag["created_at"],
        escalated_at=flag["escalated_at"],
        sla=SAFETY_SETTINGS.urgent_sla,
        now=now,
    )
    if left is None:
        escalation = None
    elif left > timedelta(0):
        escalation = f"escalates in {triage.duration(left)}"
    else:
        escalation = f"escalation due {triage.duration(left)} ago"
    return {"age": triage.duration(now - flag["created_at"]), "escalation": escalation}


@bp.app_context_processor
def _helpers() -> dict[str, Any]:
    return {"coach_zone": coach_zone, "unit_name": drinking.unit_name, "flag_times": flag_times}


@bp.app_template_filter("when")
def _when(value: Any, zone: str | None = None) -> str:
    """An instant to the minute in `zone` (the coach's by default), the zone named; a date as is."""
    if value is None:
        return "—"
    if isinstance(value, date) and not hasattr(value, "hour"):
        return value.isoformat()
    return value.astimezone(ZoneInfo(zone or coach_zone())).strftime("%Y-%m-%d %H:%M %Z")


@bp.app_template_filter("clock")
def _clock(value: Any, zone: str) -> str:
    """An instant's wall-clock time in `zone`, the zone named: "20:05 EST"."""
    return value.astimezone(ZoneInfo(zone)).strftime("%H:%M %Z")


@bp.app_template_filter("hhmm")
def _hhmm(times: Any) -> str:
    """Dose times as the form takes them back: "08:00, 20:00"."""
    return ", ".join(t.strftime("%H:%M") for t in times)


def whole(name: str, low: int, high: int) -> int | None:
    """A whole-number query argument in [low, high], or a 400 naming it."""
    value = request.args.get(name, "").strip()
    if not value:
        return None
    if not value.isdigit() or not low <= int(value) <= high:
        abort(400, description=f"{name}: must be a whole number from {low} to {high}.")
    return int(value)
