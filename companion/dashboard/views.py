"""The coach dashboard's pages (issue 6): thin views over the coach services, rendered on the server.

Sign-in is a Flask-Login session cookie, for coaches and admins only; it never authenticates /api
(companion/auth/loaders.py). Forms carry a CSRF token (Flask-WTF's CSRFProtect guards every POST here).
A session idle for longer than PERMANENT_SESSION_LIFETIME (15 minutes) is ended on its next request.
Every page that shows a member's records writes the audit log, through the same services as the API.
"""

from __future__ import annotations

import time
import uuid
from datetime import date, timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

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
from sqlalchemy.exc import IntegrityError
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from companion.accounts import services as accounts
from companion.accounts import throttle
from companion.accounts.models import Role, User
from companion.accounts.passwords import verify_password
from companion.audit import services as audit
from companion.auth import sessions as staff_sessions
from companion.auth.access import PUBLIC, allow
from companion.auth.loaders import SESSION_ID
from companion.coaching import member_page as coaching_page
from companion.coaching import services as coaching
from companion.coaching import timeline as timelines
from companion.dashboard import charts, plan_forms
from companion.db import session as db_session
from companion.db import unit_of_work, utcnow
from companion.domain import drinking, localtime, triage
from companion.domain.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    TooManyAttempts,
    Unauthenticated,
)
from companion.domain.medications import MEDICATIONS
from companion.domain.safety import Tier
from companion.extensions import configured_limit, limiter
from companion.medications import schemas as medication_schemas
from companion.medications import services as medications
from companion.medications.models import MedicationPlan
from companion.nudges import services as nudges
from companion.nudges.models import Message
from companion.nudges.schemas import MAX_MESSAGE_LENGTH
from companion.safety import services as safety
from companion.safety.schemas import MAX_NOTE, SEVERITIES, STATUSES
from companion.validation import iana_zones

bp = Blueprint("dashboard", __name__, url_prefix="/dashboard", template_folder="templates")

STAFF = (Role.COACH, Role.ADMIN)
QUEUE_PAGE = 50
AUDIT_PAGE = 100
_SEEN = "dashboard_seen_at"
_ZONE = "dashboard_zone"


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


@bp.context_processor
def _escalation_banner() -> dict[str, Any]:
    """Every signed-in page says so when urgent flags are past their SLA and no admin exists to be
    told: escalation would otherwise go nowhere, silently."""
    if not current_user.is_authenticated:
        return {}
    return {"unescalated_overdue": safety.unescalated_overdue(now=utcnow())}


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


_login_limit = configured_limit("RATELIMIT_LOGIN")


@bp.route("/login", methods=["GET", "POST"])
@allow(PUBLIC)
@limiter.limit(_login_limit, methods=["POST"])
def login() -> Any:
    """Sign in with email and password; only coaches and admins may."""
    next_url = request.values.get("next")
    if request.method == "GET":
        if current_user.is_authenticated and current_user.role in STAFF:
            return redirect(_safe_next(next_url))
        return render_template("dashboard/login.html", next=next_url, email="")
    email = request.form.get("email", "").strip()[:254]
    password = request.form.get("password", "")[:1024]
    now, address = utcnow(), request.remote_addr
    with unit_of_work():  # the API's count (companion/accounts/throttle.py): one for both doors
        try:
            throttle.check(email, address, now=now)
        except TooManyAttempts as exc:
            flash(f"Too many failed sign-ins; try again in {exc.details['retry_after']} seconds.")
            page = render_template("dashboard/login.html", next=next_url, email=email)
            return page, 429, {"Retry-After": str(exc.details["retry_after"])}
        user = accounts.find_user_by_email(email) if email else None
        right = verify_password(user.password_hash if user else None, password) and user is not None
        if right:
            throttle.succeeded(email, address, now=now)
        else:
            throttle.failed(email, address, now=now)
    if not right or user is None:
        flash("The email or password is wrong.")
        return render_template("dashboard/login.html", next=next_url, email=email), 401
    if user.role not in STAFF or not user.is_active:
        flash("The dashboard is for coaches and admins.")
        return render_template("dashboard/login.html", next=next_url, email=email), 403
    zone = request.form.get("zone", "")
    session.clear()  # nothing from before sign-in carries over
    if zone in iana_zones():  # the browser's zone: times read in it unless the account sets one
        session[_ZONE] = zone
    with unit_of_work():
        row = staff_sessions.start(
            user.id, agent=request.headers.get("User-Agent"), address=request.remote_addr, now=utcnow()
        )
    login_user(user)
    session[SESSION_ID] = str(row.id)
    session.permanent = True  # the cookie expires with the idle timeout (PERMANENT_SESSION_LIFETIME)
    session[_SEEN] = time.time()
    return redirect(_safe_next(next_url))


@bp.get("/zone.js")
@allow(PUBLIC)
def zone_script() -> tuple[str, int, dict[str, str]]:
    """Fills the sign-in form's zone with the browser's (a file, not inline: the CSP runs only ours)."""
    return (
        ZONE_SCRIPT,
        200,
        {"Content-Type": "text/javascript; charset=utf-8", "Cache-Control": "max-age=3600"},
    )


ZONE_SCRIPT = (
    'document.querySelectorAll("input[name=zone]").forEach(function (input) {'
    " input.value = Intl.DateTimeFormat().resolvedOptions().timeZone || ''; });\n"
)


@bp.route("/logout", methods=["POST"])
@allow(*STAFF)
def logout() -> Response:
    with unit_of_work():
        staff_sessions.end(session.get(SESSION_ID), reason="signed_out", now=utcnow())
    logout_user()
    session.clear()
    flash("Signed out.")
    return redirect(url_for("dashboard.login"))


@bp.route("/account", methods=["GET", "POST"])
@allow(*STAFF)
def account() -> Any:
    """The staff member's own settings: the zone the dashboard shows times in (blank: the browser's)."""
    if request.method == "GET":
        return render_template(
            "dashboard/account.html", zone=current_user.timezone or "", error=None, zones=_zones()
        )
    zone = request.form.get("timezone", "").strip()
    if zone and zone not in iana_zones():
        error = (
            f"timezone: {zone[:64]} is not an IANA time zone (for example Europe/London); nothing was saved."
        )
        return render_template("dashboard/account.html", zone=zone, error=error, zones=_zones()), 422
    with unit_of_work():
        user = db_session.get(User, current_user.id)
        before = user.timezone
        user.timezone = zone or None
        audit.record(
            "staff.timezone_changed", actor_id=user.id, now=utcnow(), before=before, after=user.timezone
        )
    flash(f"Times are now shown in {zone}." if zone else "Times are now shown in your browser's zone.")
    return redirect(url_for("dashboard.account"))


def _zones() -> list[str]:
    return sorted(iana_zones())


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


def _with_args(_drop: tuple[str, ...] = (), **changes: Any) -> str:
    """This page's URL with `changes` (None: left out) and without `_drop`; repeated arguments kept."""
    args = [(k, v) for k, v in request.args.items(multi=True) if k not in changes and k not in _drop]
    args += [(k, v) for k, v in changes.items() if v is not None]
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
    """The caseload, sorted by need (or a column), searched and filtered: each member's risk, flags,
    last entry, a 30-day drinking sparkline and drinking against their goal."""
    sort = _choice("sort", list(coaching.TRIAGE_SORTS)) or "need"
    direction = _choice("dir", ["asc", "desc"]) or ("asc" if sort in ("name", "last_entry") else "desc")
    quiet = _whole("quiet", 1, 3650)
    page_no = _whole("page", 1, 100_000) or 1
    medication = _choice("medication", list(MEDICATIONS))
    filters = coaching.TriageFilters(
        search=request.args.get("q", "").strip()[:100],
        has_flags=request.args.get("flags") == "1",
        quiet_days=quiet,
        medication=medication,
    )
    with unit_of_work():
        found = coaching.triage(
            current_user,
            sort=sort,
            descending=direction == "desc",
            filters=filters,
            offset=(page_no - 1) * QUEUE_PAGE,
            limit=QUEUE_PAGE,
            now=utcnow(),
        )
    return render_template(
        "dashboard/caseload.html",
        members=found["items"],
        sparkline=charts.sparkline,
        ago=lambda then, now: triage.duration(now - then),
        sort=sort,
        direction=direction,
        filters=filters,
        medications=list(MEDICATIONS),
        sort_url=_sort_url,
        now=utcnow(),
        prev_url=_with_args(page=page_no - 1 if page_no > 2 else None, _drop=("page",))
        if page_no > 1
        else None,
        next_url=_with_args(page=page_no + 1) if found["more"] else None,
    )


def _whole(name: str, low: int, high: int) -> int | None:
    """A whole-number query argument in [low, high], or a 400 naming it."""
    value = request.args.get(name, "").strip()
    if not value:
        return None
    if not value.isdigit() or not low <= int(value) <= high:
        abort(400, description=f"{name}: must be a whole number from {low} to {high}.")
    return int(value)


def _sort_url(column: str, current: str, direction: str) -> str:
    """A column header's link: sort by it, or flip the direction when it is already the sort."""
    flipped = "asc" if direction == "desc" else "desc"
    return _with_args(
        sort=column, dir=flipped if column == current else None, page=None, _drop=("dir", "page")
    )


@bp.route("/members/<uuid:member_id>", methods=["GET"])
@allow(*STAFF)
def member(member_id: uuid.UUID) -> Any:
    """One member: summary, charts over 30 or 90 days, their story, medication plans, flags and messages."""
    return _member_page(member_id)


def _member_page(
    member_id: uuid.UUID, *, status: int = 200, forms: dict[str, plan_forms.PlanForm] | None = None
) -> Any:
    """The member page; `forms`: plan forms to show as submitted (a refused one, with its errors)."""
    days = request.args.get("days", type=int) or coaching_page.CHART_WINDOWS[0]
    if days not in coaching_page.CHART_WINDOWS:
        abort(400, description="days: must be 30 or 90.")
    kinds = tuple(request.args.getlist("kind"))
    unknown = sorted(set(kinds) - set(timelines.STORY_KINDS))
    if unknown:
        abort(
            400,
            description=f"kind: {', '.join(unknown)} is not one of {', '.join(timelines.STORY_KINDS)}.",
        )
    try:
        with unit_of_work():
            page = coaching_page.member_page(
                current_user,
                member_id,
                days=days,
                now=utcnow(),
                kinds=kinds,
                cursor=request.args.get("cursor"),
            )
    except InvalidInput:
        abort(400, description="That page of the story does not exist; start again from the newest.")
    story = page["story"]
    today = page["today"]
    shown = {str(p["id"]): plan_forms.edit_form(p, today=today) for p in page["plans"]}
    shown["new"] = plan_forms.new_form(today=today)
    shown.update(forms or {})
    return render_template(
        "dashboard/member.html",
        **page,
        forms=shown,
        step_fields=plan_forms.STEP_FIELDS,
        medication_codes=list(MEDICATIONS),
        new_plan_id=request.form.get("plan_id") if forms and "new" in forms else uuid.uuid4(),
        days=days,
        kinds=kinds,
        story_kinds=STORY_FILTERS,
        older_url=_with_args(cursor=story["next_cursor"]) + "#story" if story["next_cursor"] else None,
        windows=coaching_page.CHART_WINDOWS,
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
    ), status


#: The story's kinds as the filter names them (a flag's later events go with "flags").
STORY_FILTERS = {
    "drink_log": "drinks",
    "craving": "cravings",
    "checkin": "doses and side effects",
    "bac_reading": "breath readings",
    "symptom_report": "symptom reports",
    "flag": "flags",
    "flag_acknowledged": "flags acknowledged",
    "flag_closed": "flags resolved",
    "flag_cleared": "flags cleared",
    "message": "messages",
}


def _charts(s: coaching_page.Series) -> dict[str, Any]:
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
            [(severity, s.side_effects[severity]) for severity in coaching_page.SEVERITIES],
            unit="reports",
            css="side-effects",
        ),
    }


def _member_url(member_id: uuid.UUID, anchor: str) -> str:
    return url_for("dashboard.member", member_id=member_id) + anchor


@bp.route("/members/<uuid:member_id>/plans/<uuid:plan_id>", methods=["POST"])
@allow(*STAFF)
def edit_plan(member_id: uuid.UUID, plan_id: uuid.UUID) -> Any:
    """Change a plan's dose and times from today, its end date and its steps ahead (the API's PATCH,
    with its rules about the past). Refused: the page again, each error beside its field, as typed."""
    body, rows_sent = plan_forms.changes(request.form)
    try:
        data = medication_schemas.PlanPatchSchema().load(body)
        with unit_of_work():
            medications.update_plan(current_user, member_id, plan_id, data, now=utcnow())
    except ValidationError as error:
        return _plan_refused(member_id, str(plan_id), error.messages, rows_sent, EDIT_FIELDS)
    except InvalidInput as error:
        problems = {**(error.fields or {}), **plan_forms.regimen_problems(data, request.form)}
        return _plan_refused(member_id, str(plan_id), problems, rows_sent, EDIT_FIELDS)
    flash(
        "Saved: the plan is changed." if body else "Nothing to save: no field was changed.", f"plan-{plan_id}"
    )
    return redirect(_member_url(member_id, f"#plan-{plan_id}"))


EDIT_FIELDS = ("dose_mg", "times", "end_date")
NEW_FIELDS = ("medication", "dose_mg", "times", "start_date", "end_date")


@bp.route("/members/<uuid:member_id>/plans", methods=["POST"])
@allow(*STAFF)
def create_plan(member_id: uuid.UUID) -> Any:
    """Start a plan (the API's POST); the form's own id makes a resubmitted form store it once."""
    try:
        plan_id = uuid.UUID(request.form.get("plan_id", ""))
    except ValueError:
        abort(400, description="plan_id: reload the page and save again.")
    body, rows_sent = plan_forms.new_plan_body(request.form)
    try:
        data = medication_schemas.PlanInputSchema().load(body)
        with unit_of_work():
            coaching.member(current_user, member_id)  # 404 before revealing anything
            stored = db_session.get(MedicationPlan, plan_id)
            if stored is None:
                medications.create_plan(current_user, member_id, data, now=utcnow(), plan_id=plan_id)
            elif stored.member_id != member_id:
                abort(400, description="plan_id: reload the page and save again.")
    except ValidationError as error:
        return _plan_refused(member_id, "new", error.messages, rows_sent, NEW_FIELDS)
    except InvalidInput as error:
        return _plan_refused(member_id, "new", error.fields or {}, rows_sent, NEW_FIELDS)
    except IntegrityError:  # the same form submitted twice at once: the first one stored it
        pass
    flash(f"Saved: a new {body['medication']} plan.", f"plan-{plan_id}")
    return redirect(_member_url(member_id, f"#plan-{plan_id}"))


def _plan_refused(
    member_id: uuid.UUID, key: str, messages: Any, rows_sent: list[int], names: tuple[str, ...]
) -> Any:
    typed = plan_forms.submitted(request.form, names)
    typed.errors = plan_forms.errors_by_field(messages, rows_sent, typed)
    return _member_page(member_id, status=422, forms={key: typed})


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
        flash(f"body: write 1 to {MAX_MESSAGE_LENGTH} characters; nothing was sent.", "messages-error")
        return redirect(_member_url(member_id, "#messages"))
    try:
        with unit_of_work():
            coaching.member(current_user, member_id)  # 404 before revealing anything
            sent = db_session.get(Message, message_id)
            if sent is None:
                nudges.send_coach_message(current_user, member_id, body, now=utcnow(), message_id=message_id)
            elif sent.member_id != member_id:
                abort(400, description="message_id: reload the page and send again.")
        flash("Message sent.", "messages-success")
    except IntegrityError:  # the same form submitted twice at once: the first one sent it
        flash("Message sent.", "messages-success")
    return redirect(_member_url(member_id, "#messages"))


# --- the audit log and sessions ---------------------------------------------------------------------


@bp.route("/sessions/end-all", methods=["POST"])
@allow(Role.ADMIN)
def end_all_sessions() -> Response:
    """An admin ends every other dashboard sign-in (a cookie may have leaked): each must sign in again."""
    with unit_of_work():
        ended = staff_sessions.end_all(reason="ended_by_admin", now=utcnow(), keep=session.get(SESSION_ID))
        audit.record("sessions.end_all", actor_id=current_user.id, now=utcnow(), ended=ended)
    flash(f"Ended {ended} other dashboard session{'s' if ended != 1 else ''}.")
    return redirect(url_for("dashboard.audit_log"))


@bp.route("/audit", methods=["GET"])
@allow(Role.ADMIN)
def audit_log() -> Any:
    """Who read or changed what, newest first; filter by staff, member (name, email or id), action and
    days (in the admin's zone)."""
    zone = coach_zone()
    start, end = _day("from"), _day("to")
    if start and end and start > end:
        abort(400, description="from: must not be after to.")
    with unit_of_work():
        rows, more = audit.search(
            staff=request.args.get("staff", "").strip()[:254],
            member=request.args.get("member", "").strip()[:254],
            action=request.args.get("action", "").strip()[:64],
            start=localtime.day_bounds_utc(start, zone)[0] if start else None,
            end=localtime.day_bounds_utc(end, zone)[1] if end else None,
            before=_whole("before", 1, 2**62),
            limit=AUDIT_PAGE,
        )
        names = coaching.member_names(sorted({e.subject_member_id for e, _ in rows if e.subject_member_id}))
    return render_template(
        "dashboard/audit.html",
        rows=rows,
        names=names,
        args=request.args,
        actions=audit.ACTIONS,
        next_url=_with_args(before=rows[-1][0].id) if more else None,
    )


def _day(name: str) -> date | None:
    value = request.args.get(name, "").strip()
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        abort(400, description=f"{name}: not a date (YYYY-MM-DD).")


def coach_zone() -> str:
    """The zone the signed-in staff member reads times in: their account's setting, else the browser's
    zone sent at sign-in, else UTC."""
    zone = getattr(current_user, "timezone", None) or session.get(_ZONE)
    return zone if zone in iana_zones() else "UTC"


def flag_times(flag: dict[str, Any]) -> dict[str, str | None]:
    """A flag's age, and the time left before it escalates (or how long it is overdue), as text."""
    now = utcnow()
    left = triage.escalates_in(
        tier=int(Tier[flag["severity"].upper()]),
        status=flag["status"],
        created_at=flag["created_at"],
        escalated_at=flag["escalated_at"],
        sla=safety.SETTINGS.urgent_sla,
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
