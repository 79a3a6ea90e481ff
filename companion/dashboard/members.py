"""The dashboard's caseload and member page: the triage table, a member's story and charts, their plans
and messages."""

from __future__ import annotations

import uuid
from typing import Any

from flask import (
    abort,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user
from marshmallow import ValidationError
from sqlalchemy.exc import IntegrityError
from werkzeug.wrappers import Response

from companion.auth.access import allow
from companion.coaching import member_page as coaching_page
from companion.coaching import services as coaching
from companion.coaching import timeline as timelines
from companion.dashboard import charts, plan_forms
from companion.dashboard.blueprint import (
    QUEUE_PAGE,
    STAFF,
    bp,
    choice,
    page_refused,
    whole,
    with_args,
)
from companion.db import session as db_session
from companion.db import unit_of_work, utcnow
from companion.domain import triage
from companion.domain.errors import (
    InvalidInput,
)
from companion.domain.medications import MEDICATIONS
from companion.medications import schemas as medication_schemas
from companion.medications import services as medications
from companion.medications.models import MedicationPlan
from companion.nudges import services as nudges
from companion.nudges.models import Message
from companion.nudges.schemas import MAX_MESSAGE_LENGTH
from companion.safety.schemas import MAX_NOTE

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


EDIT_FIELDS = ("dose_mg", "times", "end_date")


NEW_FIELDS = ("medication", "dose_mg", "times", "start_date", "end_date")


@bp.route("/members", methods=["GET"])
@allow(*STAFF)
def caseload() -> Any:
    """The caseload, sorted by need (or a column), searched and filtered: each member's risk, flags,
    last entry, a 30-day drinking sparkline and drinking against their goal."""
    sort = choice("sort", list(coaching.TRIAGE_SORTS)) or "need"
    direction = choice("dir", ["asc", "desc"]) or ("asc" if sort in ("name", "last_entry") else "desc")
    quiet = whole("quiet", 1, 3650)
    page_no = whole("page", 1, 100_000) or 1
    medication = choice("medication", list(MEDICATIONS))
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
        prev_url=with_args(page=page_no - 1 if page_no > 2 else None, _drop=("page",))
        if page_no > 1
        else None,
        next_url=with_args(page=page_no + 1) if found["more"] else None,
    )


def _sort_url(column: str, current: str, direction: str) -> str:
    """A column header's link: sort by it, or flip the direction when it is already the sort."""
    flipped = "asc" if direction == "desc" else "desc"
    return with_args(
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
    except InvalidInput as error:
        abort(
            400,
            description=page_refused(
                error, "That page of the story does not exist; start again from the newest."
            ),
        )
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
        older_url=with_args(cursor=story["next_cursor"]) + "#story" if story["next_cursor"] else None,
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
