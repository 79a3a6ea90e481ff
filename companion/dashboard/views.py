"""The coach dashboard's pages (issue 6): thin views over the coach services, rendered on the server.

Sign-in is a Flask-Login session cookie, for coaches and admins only; it never authenticates /api
(companion/auth/loaders.py). Forms carry a CSRF token (Flask-WTF's CSRFProtect guards every POST here).
A session idle for longer than PERMANENT_SESSION_LIFETIME (15 minutes) is ended on its next request.
Every page that shows a member's records writes the audit log, through the same services as the API.
"""

from __future__ import annotations

import time
import uuid
from datetime import date
from typing import Any
from urllib.parse import urlencode

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user, login_user, logout_user
from flask_wtf.csrf import CSRFError
from marshmallow import ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from companion.accounts import services as accounts
from companion.accounts.models import Role, User
from companion.accounts.passwords import verify_password
from companion.audit.models import AuditEntry
from companion.auth.access import PUBLIC, allow
from companion.coaching import services as coaching
from companion.dashboard import charts
from companion.db import session as db_session
from companion.db import unit_of_work, utcnow
from companion.domain.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthenticated
from companion.extensions import email_key, limiter
from companion.medications import schemas as medication_schemas
from companion.medications import services as medications
from companion.nudges import services as nudges
from companion.nudges.models import Message
from companion.nudges.schemas import MAX_MESSAGE_LENGTH
from companion.safety import services as safety
from companion.safety.schemas import MAX_NOTE, SEVERITIES, STATUSES

bp = Blueprint("dashboard", __name__, url_prefix="/dashboard", template_folder="templates")

STAFF = (Role.COACH, Role.ADMIN)
QUEUE_PAGE = 50
AUDIT_PAGE = 100
_SEEN = "dashboard_seen_at"


# --- sign-in, idle timeout, errors ------------------------------------------------------------------


@bp.before_request
def _idle_timeout() -> Response | None:
    """End a session left idle too long; otherwise note this request as activity."""
    if not current_user.is_authenticated:
        return None
    now = time.time()
    seen = session.get(_SEEN)
    if seen is None or now - float(seen) > current_app.permanent_session_lifetime.total_seconds():
        logout_user()
        session.clear()
        flash("You were signed out after 15 minutes without activity.")
        return redirect(
            url_for("dashboard.login", next=request.full_path if request.method == "GET" else None)
        )
    session[_SEEN] = now
    return None


def _error_page(status: int, message: str) -> tuple[str, int]:
    return render_template("dashboard/error.html", status=status, message=message), status


@bp.errorhandler(Unauthenticated)
def _sign_in_first(_error: Exception) -> Response:
    return redirect(url_for("dashboard.login", next=request.full_path if request.method == "GET" else None))


@bp.errorhandler(Forbidden)
def _forbidden(_error: Exception) -> tuple[str, int]:
    return _error_page(403, "The dashboard is for coaches and admins.")


@bp.errorhandler(NotFound)
def _not_found(_error: Exception) -> tuple[str, int]:
    return _error_page(404, "Not found, or not on your caseload.")


@bp.errorhandler(CSRFError)
def _csrf(_error: CSRFError) -> tuple[str, int]:
    return _error_page(400, "This form has expired or did not come from the dashboard. Reload and try again.")


@bp.errorhandler(HTTPException)
def _http(error: HTTPException) -> tuple[str, int]:
    status = error.code or 500
    return _error_page(status, error.description if status < 500 else "Something went wrong on our side.")


def _safe_next(target: str | None) -> str:
    """Only a dashboard path: never an open redirect to another site."""
    if target and target.startswith("/dashboard/") and not target.startswith("//"):
        return target
    return url_for("dashboard.queue")


def _login_limit() -> str:
    return current_app.config["COMPANION_RATELIMIT_LOGIN"]


def _login_failure_limit() -> str:
    return current_app.config["COMPANION_RATELIMIT_LOGIN_FAILURES"]


def _login_email_key() -> str:
    return email_key("dashboard-login", request.form.get("email", ""))


@bp.route("/login", methods=["GET", "POST"])
@allow(PUBLIC)
@limiter.limit(_login_limit, methods=["POST"])
@limiter.limit(
    _login_failure_limit,
    methods=["POST"],
    key_func=_login_email_key,
    deduct_when=lambda r: r.status_code == 401,
)
def login() -> Any:
    """Sign in with email and password; only coaches and admins may."""
    next_url = request.values.get("next")
    if request.method == "GET":
        if current_user.is_authenticated and current_user.role in STAFF:
            return redirect(_safe_next(next_url))
        return render_template("dashboard/login.html", next=next_url, email="")
    email = request.form.get("email", "").strip()[:254]
    password = request.form.get("password", "")[:1024]
    user = accounts.find_user_by_email(email) if email else None
    if not verify_password(user.password_hash if user else None, password) or user is None:
        flash("The email or password is wrong.")
        return render_template("dashboard/login.html", next=next_url, email=email), 401
    if user.role not in STAFF or not user.is_active:
        flash("The dashboard is for coaches and admins.")
        return render_template("dashboard/login.html", next=next_url, email=email), 403
    session.clear()  # nothing from before sign-in carries over
    login_user(user)
    session.permanent = True  # the cookie expires with the idle timeout (PERMANENT_SESSION_LIFETIME)
    session[_SEEN] = time.time()
    return redirect(_safe_next(next_url))


@bp.route("/logout", methods=["POST"])
@allow(*STAFF)
def logout() -> Response:
    logout_user()
    session.clear()
    flash("Signed out.")
    return redirect(url_for("dashboard.login"))


# --- the flag queue ---------------------------------------------------------------------------------


@bp.route("/", methods=["GET"])
@allow(*STAFF)
def home() -> Response:
    return redirect(url_for("dashboard.queue"))


def _choice(name: str, allowed: list[str]) -> str | None:
    value = request.args.get(name) or None
    if value is not None and value not in allowed:
        abort(400, description=f"{name}: must be one of {', '.join(allowed)}.")
    return value


@bp.route("/flags", methods=["GET"])
@allow(*STAFF)
def queue() -> Any:
    """Flags to handle: urgent first, then oldest; filter by tier and status."""
    tier = _choice("tier", SEVERITIES)
    status = _choice("status", STATUSES)
    try:
        with unit_of_work():
            page = safety.list_flags(
                current_user,
                status=status,
                severity=tier,
                cursor=request.args.get("cursor"),
                limit=QUEUE_PAGE,
                now=utcnow(),
            )
            names = coaching.member_names(sorted({f["member_id"] for f in page["items"]}))
    except InvalidInput:
        abort(400, description="That page of the queue does not exist; start again from the first.")
    return render_template(
        "dashboard/queue.html",
        flags=page["items"],
        names=names,
        tier=tier,
        status=status,
        next_url=_with_args(cursor=page["next_cursor"]) if page["next_cursor"] else None,
        severities=SEVERITIES,
        statuses=STATUSES,
        max_note=MAX_NOTE,
        now=utcnow(),
    )


def _with_args(**changes: Any) -> str:
    args = {k: v for k, v in request.args.items() if k not in changes}
    args.update({k: v for k, v in changes.items() if v is not None})
    return f"{request.path}?{urlencode(args)}" if args else request.path


@bp.route("/flags/<uuid:flag_id>/acknowledge", methods=["POST"])
@allow(*STAFF)
def acknowledge(flag_id: uuid.UUID) -> Response:
    try:
        with unit_of_work():
            safety.acknowledge(current_user, flag_id, now=utcnow())
        flash("Flag acknowledged.")
    except Conflict:
        flash("That flag is already resolved.")
    return redirect(_safe_next(request.form.get("back")) + f"#flag-{flag_id}")


@bp.route("/flags/<uuid:flag_id>/resolve", methods=["POST"])
@allow(*STAFF)
def resolve(flag_id: uuid.UUID) -> Response:
    note = request.form.get("note", "").strip()
    if not 1 <= len(note) <= MAX_NOTE:
        flash(f"note: say what was done (1 to {MAX_NOTE} characters); the flag is still open.")
    else:
        try:
            with unit_of_work():
                safety.resolve(current_user, flag_id, note, now=utcnow())
            flash("Flag resolved.")
        except Conflict:
            flash("That flag was already resolved.")
    return redirect(_safe_next(request.form.get("back")) + f"#flag-{flag_id}")


# --- the caseload and the member page ----------------------------------------------------------------


@bp.route("/members", methods=["GET"])
@allow(*STAFF)
def caseload() -> Any:
    """Each member's risk, last activity and a 30-day drinking sparkline."""
    try:
        with unit_of_work():
            page = coaching.caseload(
                current_user, cursor=request.args.get("cursor"), limit=QUEUE_PAGE, now=utcnow()
            )
    except InvalidInput:
        abort(400, description="That page of the caseload does not exist; start again from the first.")
    return render_template(
        "dashboard/caseload.html",
        members=page["items"],
        sparkline=charts.sparkline,
        next_url=_with_args(cursor=page["next_cursor"]) if page["next_cursor"] else None,
    )


@bp.route("/members/<uuid:member_id>", methods=["GET"])
@allow(*STAFF)
def member(member_id: uuid.UUID) -> Any:
    """One member: summary, charts over 30 or 90 days, medication plans, flags and messages."""
    days = request.args.get("days", type=int) or coaching.CHART_WINDOWS[0]
    if days not in coaching.CHART_WINDOWS:
        abort(400, description="days: must be 30 or 90.")
    with unit_of_work():
        page = coaching.member_page(current_user, member_id, days=days, now=utcnow())
    return render_template(
        "dashboard/member.html",
        **page,
        days=days,
        windows=coaching.CHART_WINDOWS,
        charts={
            **_charts(page["series"]),
            "pacs": charts.dots(
                "Penn Alcohol Craving Scale per week (0-30; 15 or more is high)",
                page["pacs"]["weeks"],
                page["pacs"]["totals"],
                unit="/ 30",
                y_max=30,
                css="pacs",
            ),
        },
        message_id=uuid.uuid4(),
        max_message=MAX_MESSAGE_LENGTH,
        max_note=MAX_NOTE,
    )


def _charts(s: coaching.Series) -> dict[str, Any]:
    rates = [round(100 * t / n) if n else None for t, n in zip(s.doses_taken, s.doses_scheduled, strict=True)]
    return {
        "drinks": charts.bars(
            "Standard drinks per day against the heavy-day threshold",
            s.days,
            s.drinks,
            unit="drinks",
            highlight=s.heavy,
            threshold=s.heavy_threshold,
            threshold_label=f"heavy ≥ {s.heavy_threshold}",
            css="drinks",
        ),
        "cravings": charts.dots(
            "Craving rating per day (mean, 0-10)",
            s.days,
            s.craving_mean,
            unit="/ 10",
            y_max=10,
            css="cravings",
        ),
        "adherence": charts.bars(
            "Doses taken, % of scheduled", s.days, rates, unit="% taken", y_max=100, css="adherence"
        ),
        "breath": charts.dots(
            "Breath alcohol per day (highest, g/dL)",
            s.days,
            s.breath_max,
            unit="g/dL",
            y_max=max([0.1, *(float(v) for v in s.breath_max if v is not None)]),
            line=False,
            fmt="{:.3f}",
            css="breath",
        ),
        "side_effects": charts.stacked(
            "Side effects reported per day, by severity",
            s.days,
            [(severity, s.side_effects[severity]) for severity in coaching.SEVERITIES],
            unit="reports",
            css="side-effects",
        ),
    }


def _member_url(member_id: uuid.UUID, anchor: str) -> str:
    return url_for("dashboard.member", member_id=member_id) + anchor


def _field_messages(fields: dict[str, Any]) -> str:
    return "; ".join(f"{name}: {' '.join(map(str, msgs))}" for name, msgs in sorted(fields.items()))


@bp.route("/members/<uuid:member_id>/plans/<uuid:plan_id>", methods=["POST"])
@allow(*STAFF)
def edit_plan(member_id: uuid.UUID, plan_id: uuid.UUID) -> Response:
    """Change a plan's dose, times or end date (the API's PATCH, with its rules about the past)."""
    form = request.form
    changes: dict[str, Any] = {}
    for name in ("dose_mg", "end_date"):
        if name in form and form[name].strip() != form.get(f"was_{name}", "").strip():
            changes[name] = form[name].strip() or None
    if "times" in form:
        times = [t.strip() for t in form["times"].replace(";", ",").split(",") if t.strip()]
        was = [t.strip() for t in form.get("was_times", "").split(",") if t.strip()]
        if times != was:
            changes["times"] = times
    try:
        data = medication_schemas.PlanPatchSchema().load(changes)
        with unit_of_work():
            medications.update_plan(current_user, member_id, plan_id, data, now=utcnow())
        flash("Medication plan saved." if changes else "Nothing changed.")
    except ValidationError as error:
        flash("Not saved. " + _field_messages(error.messages))  # type: ignore[arg-type]
    except InvalidInput as error:
        flash("Not saved. " + _field_messages(error.fields or {}))
    return redirect(_member_url(member_id, "#plans"))


@bp.route("/members/<uuid:member_id>/messages", methods=["POST"])
@allow(*STAFF)
def send_message(member_id: uuid.UUID) -> Response:
    """Send a message; the form's own id makes a resubmitted form send it once."""
    body = request.form.get("body", "").strip()
    try:
        message_id = uuid.UUID(request.form.get("message_id", ""))
    except ValueError:
        abort(400, description="message_id: reload the page and send again.")
    if not 1 <= len(body) <= MAX_MESSAGE_LENGTH:
        flash(f"body: write 1 to {MAX_MESSAGE_LENGTH} characters; nothing was sent.")
        return redirect(_member_url(member_id, "#messages"))
    try:
        with unit_of_work():
            coaching.member(current_user, member_id)  # 404 before revealing anything
            sent = db_session.get(Message, message_id)
            if sent is None:
                nudges.send_coach_message(current_user, member_id, body, now=utcnow(), message_id=message_id)
            elif sent.member_id != member_id:
                abort(400, description="message_id: reload the page and send again.")
        flash("Message sent.")
    except IntegrityError:  # the same form submitted twice at once: the first one sent it
        flash("Message sent.")
    return redirect(_member_url(member_id, "#messages"))


# --- the audit log ----------------------------------------------------------------------------------


@bp.route("/audit", methods=["GET"])
@allow(Role.ADMIN)
def audit_log() -> Any:
    """Who read or changed what, newest first; filter by member."""
    query = select(AuditEntry, User.email).outerjoin(User, User.id == AuditEntry.actor_id)
    member_arg = request.args.get("member")
    if member_arg:
        try:
            query = query.where(AuditEntry.subject_member_id == uuid.UUID(member_arg))
        except ValueError:
            abort(400, description="member: not a member id.")
    before = request.args.get("before", type=int)
    if before:
        query = query.where(AuditEntry.id < before)
    rows = db_session.execute(query.order_by(AuditEntry.id.desc()).limit(AUDIT_PAGE + 1)).all()
    more = len(rows) > AUDIT_PAGE
    rows = rows[:AUDIT_PAGE]
    names = coaching.member_names(sorted({e.subject_member_id for e, _ in rows if e.subject_member_id}))
    return render_template(
        "dashboard/audit.html",
        rows=rows,
        names=names,
        member=member_arg,
        next_url=_with_args(before=rows[-1][0].id) if more else None,
    )


@bp.app_template_filter("when")
def _when(value: Any) -> str:
    """An instant as UTC to the minute; a date as is."""
    if value is None:
        return "—"
    if isinstance(value, date) and not hasattr(value, "hour"):
        return value.isoformat()
    return value.strftime("%Y-%m-%d %H:%M UTC")


@bp.app_template_filter("hhmm")
def _hhmm(times: Any) -> str:
    """Dose times as the form takes them back: "08:00, 20:00"."""
    return ", ".join(t.strftime("%H:%M") for t in times)
