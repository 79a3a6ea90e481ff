"""The coach dashboard's pages (issue 6): thin views over the coach services, rendered on the server.

Sign-in is a Flask-Login session cookie, for coaches and admins only; it never authenticates /api
(companion/auth/loaders.py). Forms carry a CSRF token (Flask-WTF's CSRFProtect guards every POST here).
A session idle for longer than PERMANENT_SESSION_LIFETIME (15 minutes) is ended on its next request.
Every page that shows a member's records writes the audit log, through the same services as the API.

Here: sign-in, the account page, the audit log. The flag queue is `dashboard.queue`; the caseload and the
member page, `dashboard.members`; the blueprint and what the pages share, `dashboard.blueprint`.
"""

from __future__ import annotations

import time
from datetime import date
from typing import Any

from flask import (
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
from companion.coaching import services as coaching
from companion.dashboard import members, queue  # noqa: F401  (importing them registers their routes on bp)
from companion.dashboard.blueprint import (
    SESSION_SEEN_AT,
    SESSION_ZONE,
    STAFF,
    bp,
    coach_zone,
    error_page,
    safe_next,
    whole,
    with_args,
)
from companion.db import session as db_session
from companion.db import unit_of_work, utcnow
from companion.domain import localtime
from companion.domain.errors import (
    Forbidden,
    NotFound,
    TooManyAttempts,
    Unauthenticated,
)
from companion.extensions import configured_limit, limiter
from companion.safety import escalation
from companion.validation import iana_zones

AUDIT_PAGE = 100


# --- sign-in, idle timeout, errors ------------------------------------------------------------------


@bp.before_request
def _idle_timeout() -> Response | None:
    """End a session left idle too long; otherwise note this request as activity."""
    if not current_user.is_authenticated:
        return None
    now = time.time()
    seen = session.get(SESSION_SEEN_AT)
    if seen is None or now - float(seen) > current_app.permanent_session_lifetime.total_seconds():
        logout_user()
        session.clear()
        flash("You were signed out after 15 minutes without activity.")
        return redirect(
            url_for("dashboard.login", next=request.full_path if request.method == "GET" else None)
        )
    session[SESSION_SEEN_AT] = now
    return None


@bp.context_processor
def _escalation_banner() -> dict[str, Any]:
    """Every signed-in page says so when urgent flags are past their SLA and no admin exists to be
    told: escalation would otherwise go nowhere, silently."""
    if not current_user.is_authenticated:
        return {}
    return {"unescalated_overdue": escalation.unescalated_overdue(now=utcnow())}


@bp.errorhandler(Unauthenticated)
def _sign_in_first(_error: Exception) -> Response:
    return redirect(url_for("dashboard.login", next=request.full_path if request.method == "GET" else None))


@bp.errorhandler(Forbidden)
def _forbidden(_error: Exception) -> tuple[str, int]:
    return error_page(403, "The dashboard is for coaches and admins.")


@bp.errorhandler(NotFound)
def _not_found(_error: Exception) -> tuple[str, int]:
    return error_page(404, "Not found, or not on your caseload.")


@bp.errorhandler(CSRFError)
def _csrf(_error: CSRFError) -> tuple[str, int]:
    return error_page(400, "This form has expired or did not come from the dashboard. Reload and try again.")


@bp.errorhandler(HTTPException)
def _http(error: HTTPException) -> tuple[str, int]:
    status = error.code or 500
    return error_page(status, error.description if status < 500 else "Something went wrong on our side.")


_login_limit = configured_limit("RATELIMIT_LOGIN")


@bp.route("/login", methods=["GET", "POST"])
@allow(PUBLIC)
@limiter.limit(_login_limit, methods=["POST"])
def login() -> Any:
    """Sign in with email and password; only coaches and admins may."""
    next_url = request.values.get("next")
    if request.method == "GET":
        if current_user.is_authenticated and current_user.role in STAFF:
            return redirect(safe_next(next_url))
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
        session[SESSION_ZONE] = zone
    with unit_of_work():
        row = staff_sessions.start(
            user.id, agent=request.headers.get("User-Agent"), address=request.remote_addr, now=utcnow()
        )
    login_user(user)
    session[SESSION_ID] = str(row.id)
    session.permanent = True  # the cookie expires with the idle timeout (PERMANENT_SESSION_LIFETIME)
    session[SESSION_SEEN_AT] = time.time()
    return redirect(safe_next(next_url))


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
            before=whole("before", 1, 2**62),
            limit=AUDIT_PAGE,
        )
        names = coaching.member_names(sorted({e.subject_member_id for e, _ in rows if e.subject_member_id}))
    return render_template(
        "dashboard/audit.html",
        rows=rows,
        names=names,
        args=request.args,
        actions=audit.ACTIONS,
        next_url=with_args(before=rows[-1][0].id) if more else None,
    )


def _day(name: str) -> date | None:
    value = request.args.get(name, "").strip()
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        abort(400, description=f"{name}: not a date (YYYY-MM-DD).")
