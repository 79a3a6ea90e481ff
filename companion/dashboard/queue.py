"""The dashboard's flag queue: flags to handle, urgent first; acknowledge and resolve."""

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
from werkzeug.wrappers import Response

from companion.auth.access import allow
from companion.coaching import services as coaching
from companion.dashboard.blueprint import (
    QUEUE_PAGE,
    STAFF,
    bp,
    choice,
    page_refused,
    safe_next,
    with_args,
)
from companion.db import unit_of_work, utcnow
from companion.domain.errors import (
    Conflict,
    InvalidInput,
)
from companion.safety import queue as safety_queue
from companion.safety.schemas import MAX_NOTE, SEVERITIES, STATUSES


@bp.route("/", methods=["GET"])
@allow(*STAFF)
def home() -> Response:
    return redirect(url_for("dashboard.queue"))


@bp.route("/flags", methods=["GET"])
@allow(*STAFF)
def queue() -> Any:
    """Flags to handle: urgent first, then oldest; filter by tier and status."""
    tier = choice("tier", SEVERITIES)
    status = choice("status", STATUSES)
    try:
        with unit_of_work():
            page = safety_queue.list_flags(
                current_user,
                status=status,
                severity=tier,
                cursor=request.args.get("cursor"),
                limit=QUEUE_PAGE,
                now=utcnow(),
            )
            names = coaching.member_names(sorted({f["member_id"] for f in page["items"]}))
    except InvalidInput as error:
        abort(
            400,
            description=page_refused(
                error, "That page of the queue does not exist; start again from the first."
            ),
        )
    return render_template(
        "dashboard/queue.html",
        flags=page["items"],
        names=names,
        tier=tier,
        status=status,
        next_url=with_args(cursor=page["next_cursor"]) if page["next_cursor"] else None,
        severities=SEVERITIES,
        statuses=STATUSES,
        max_note=MAX_NOTE,
        now=utcnow(),
    )


@bp.route("/flags/<uuid:flag_id>/acknowledge", methods=["POST"])
@allow(*STAFF)
def acknowledge(flag_id: uuid.UUID) -> Response:
    try:
        with unit_of_work():
            safety_queue.acknowledge(current_user, flag_id, now=utcnow())
        flash("Flag acknowledged.")
    except Conflict:
        flash("That flag is already resolved.")
    return redirect(safe_next(request.form.get("back")) + f"#flag-{flag_id}")


@bp.route("/flags/<uuid:flag_id>/resolve", methods=["POST"])
@allow(*STAFF)
def resolve(flag_id: uuid.UUID) -> Response:
    note = request.form.get("note", "").strip()
    if not 1 <= len(note) <= MAX_NOTE:
        flash(f"note: say what was done (1 to {MAX_NOTE} characters); the flag is still open.")
    else:
        try:
            with unit_of_work():
                safety_queue.resolve(current_user, flag_id, note, now=utcnow())
            flash("Flag resolved.")
        except Conflict:
            flash("That flag was already resolved.")
    return redirect(safe_next(request.form.get("back")) + f"#flag-{flag_id}")
