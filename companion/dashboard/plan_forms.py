"""The member page's plan forms (issue 22): what each field shows, what a submitted form changes, and
each error beside the field it is about.

A form is flat text fields; a step is a row of fields named `steps-<row>-<name>` (STEP_FIELDS), so a
new per-step value (a `taper` flag) is one more entry there and in `_step_body`. What the forms send is
what the API takes (`PlanInputSchema`, `PlanPatchSchema`): the services apply the same rules to both.

Editing a plan already started: days before the member's today are history (the PATCH's rules). The
form shows the regimen in force today as "dose and times from today" and, as rows, only the steps
after today; a step from today is the regimen in force, and is sent back with changed steps so it is
kept (the PATCH replaces the steps from today on).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, time
from decimal import Decimal
from typing import Any

from companion.domain import plans

#: A step's fields as the form names them: (name, label, input type).
STEP_FIELDS: tuple[tuple[str, str, str], ...] = (
    ("from_date", "From", "date"),
    ("dose_mg", "Dose (mg)", "text"),
    ("times", "Times (HH:MM, comma separated)", "text"),
    ("taper", "Taper (a planned lowering)", "checkbox"),
)
#: Blank step rows a form offers for new steps.
BLANK_STEPS = 2
#: Step rows a submitted form may carry (MAX_STEPS in the schema caps what is stored).
MAX_STEP_ROWS = 60

Errors = dict[str, list[str]]


@dataclass
class PlanForm:
    """One form's state: the text of each field, errors by field ("dose_mg", "steps-1-times", "steps"
    for the steps as a whole, "form" for the rest), and the hidden values it was drawn from."""

    values: dict[str, str]
    steps: list[dict[str, str]]
    errors: Errors = field(default_factory=dict)
    hidden: dict[str, str] = field(default_factory=dict)


def hhmm(times: Any) -> str:
    return ", ".join(t.strftime("%H:%M") if hasattr(t, "strftime") else str(t) for t in times)


def _step_text(step: Mapping[str, Any]) -> dict[str, str]:
    return {
        "from_date": step["from_date"].isoformat(),
        "dose_mg": str(step["dose_mg"]),
        "times": hhmm(step["times"]),
        "taper": "1" if step.get("taper") else "",
    }


def _steps_key(rows: list[dict[str, str]]) -> str:
    """Rows as one comparable string: what the form showed, to tell whether the coach changed them."""
    return "|".join(
        ";".join(row.get(name, "").strip() for name, _, _ in STEP_FIELDS) for row in rows if _filled(row)
    )


def _filled(row: Mapping[str, str]) -> bool:
    return any(str(row.get(name, "")).strip() for name, _, _ in STEP_FIELDS)


def edit_form(plan: Mapping[str, Any], *, today: date) -> PlanForm:
    """The edit form of `plan` (as `plan_view` shows it) on the member's `today`."""
    started = plan["start_date"] < today
    steps = plan["steps"]
    in_force = next((s for s in reversed(steps) if s["from_date"] <= today), None) if started else None
    dose, times = (in_force["dose_mg"], in_force["times"]) if in_force else (plan["dose_mg"], plan["times"])
    rows = [_step_text(s) for s in steps if not started or s["from_date"] > today]
    today_step = next((s for s in steps if s["from_date"] == today), None) if started else None
    values = {
        "dose_mg": str(dose),
        "times": hhmm(times),
        "end_date": plan["end_date"].isoformat() if plan["end_date"] else "",
    }
    hidden = {f"was_{k}": v for k, v in values.items()}
    hidden["was_steps"] = _steps_key(rows)
    hidden["started"] = "1" if started else ""
    if today_step is not None:
        for name, text in _step_text(today_step).items():
            hidden[f"today_{name}"] = text
    return PlanForm(values, rows + [_blank() for _ in range(BLANK_STEPS)], hidden=hidden)


def new_form(*, today: date) -> PlanForm:
    """The empty "new plan" form; it starts on the member's today unless the coach picks a later day."""
    values = {"medication": "", "dose_mg": "", "times": "", "start_date": today.isoformat(), "end_date": ""}
    return PlanForm(values, [_blank() for _ in range(BLANK_STEPS + 1)])


def _blank() -> dict[str, str]:
    return {name: "" for name, _, _ in STEP_FIELDS}


def _times(text: str) -> list[str]:
    return [t.strip() for t in text.replace(";", ",").split(",") if t.strip()]


def _step_body(row: Mapping[str, str]) -> dict[str, Any]:
    """A step row as the API's step: text left for the schema to judge (and name)."""
    return {
        "from_date": row.get("from_date", "").strip() or None,
        "dose_mg": row.get("dose_mg", "").strip() or None,
        "times": _times(row.get("times", "")),
        "taper": bool(row.get("taper", "").strip()),
    }


def read_rows(form: Mapping[str, str]) -> list[dict[str, str]]:
    """The step rows of a submitted form, in row order (blank rows too, so errors land on their row)."""
    rows = []
    for i in range(MAX_STEP_ROWS):
        if not any(f"steps-{i}-{name}" in form for name, _, _ in STEP_FIELDS):
            break
        rows.append({name: form.get(f"steps-{i}-{name}", "") for name, _, _ in STEP_FIELDS})
    return rows


def submitted(form: Mapping[str, str], names: tuple[str, ...]) -> PlanForm:
    """The form as the coach filled it in: shown again, as typed, when it is refused."""
    values = {name: form.get(name, "") for name in names}
    hidden = {k: form[k] for k in form if k.startswith(("was_", "today_")) or k in ("started", "plan_id")}
    return PlanForm(values, read_rows(form), hidden=hidden)


def new_plan_body(form: Mapping[str, str]) -> tuple[dict[str, Any], list[int]]:
    """The API body of a "new plan" form, and which row each step sent came from."""
    rows = read_rows(form)
    sent = [i for i, row in enumerate(rows) if _filled(row)]
    body: dict[str, Any] = {
        "medication": form.get("medication", "").strip(),
        "dose_mg": form.get("dose_mg", "").strip() or None,
        "times": _times(form.get("times", "")),
        "end_date": form.get("end_date", "").strip() or None,
        "steps": [_step_body(rows[i]) for i in sent],
    }
    if form.get("start_date", "").strip():
        body["start_date"] = form["start_date"].strip()
    return body, sent


def changes(form: Mapping[str, str]) -> tuple[dict[str, Any], list[int]]:
    """The PATCH body of an edit form (only what the coach changed), and the row of each step sent."""
    body: dict[str, Any] = {}
    for name in ("dose_mg", "end_date"):
        if form.get(name, "").strip() != form.get(f"was_{name}", "").strip():
            body[name] = form.get(name, "").strip() or None
    if _times(form.get("times", "")) != _times(form.get("was_times", "")):
        body["times"] = _times(form.get("times", ""))
    rows = read_rows(form)
    steps_changed = _steps_key(rows) != form.get("was_steps", "")
    sent = [i for i, row in enumerate(rows) if _filled(row)]
    regimen_changed = "dose_mg" in body or "times" in body
    if steps_changed or (regimen_changed and form.get("started")):
        # Started plans: the PATCH replaces the steps from today on, so the steps ahead are always sent
        # with a change of today's regimen, and today's own step with a change of the steps alone.
        steps = [_step_body(rows[i]) for i in sent]
        if form.get("started") and not regimen_changed and form.get("today_from_date"):
            today = {name: form.get(f"today_{name}", "") for name, _, _ in STEP_FIELDS}
            steps.insert(0, _step_body(today))
            sent.insert(0, -1)
        body["steps"] = steps
    return body, sent


def regimen_problems(data: Mapping[str, Any], current: Mapping[str, str]) -> Errors:
    """The domain's problems with the dose and times a form changed (loaded by the schema), by field: on
    a plan already started they become a step from today, whose problems the domain words as a step's,
    and the coach typed them in the dose and times fields. `current`: the form's other regimen values."""
    if "dose_mg" not in data and "times" not in data:
        return {}
    dose = data.get("dose_mg", Decimal(current.get("was_dose_mg") or 1))
    times = tuple(sorted(data["times"])) if "times" in data else (time(9),)
    plan = plans.Plan(uuid.uuid4(), "", dose, times, date.min)
    problems = plans.plan_problems(plan)
    return {name: problems[name] for name in ("dose_mg", "times") if name in problems and name in data}


def _flatten(messages: Any, prefix: str = "") -> list[tuple[str, str]]:
    if isinstance(messages, Mapping):
        return [
            pair
            for key, value in messages.items()
            for pair in _flatten(value, f"{prefix}.{key}" if prefix else str(key))
        ]
    if isinstance(messages, list | tuple) and all(isinstance(m, str) for m in messages):
        return [(prefix, m) for m in messages]
    if isinstance(messages, list | tuple):
        return [pair for i, m in enumerate(messages) for pair in _flatten(m, f"{prefix}.{i}")]
    return [(prefix, str(messages))]


def errors_by_field(messages: Mapping[str, Any], rows_sent: list[int], typed: PlanForm) -> Errors:
    """API-style errors ({"times": {0: [..]}, "steps": {1: {"dose_mg": [..]}}, "steps": ["Step 2: .."]})
    as the form's fields name them: "times", "steps-<row>-dose_mg", "steps", or "form"."""
    out: Errors = {}
    for path, message in _flatten(messages):
        parts = path.split(".")
        name = parts[0]
        if name == "times" and len(parts) > 1 and parts[1].isdigit():
            typed_times = _times(typed.values.get("times", ""))
            index = int(parts[1])
            shown = typed_times[index] if index < len(typed_times) else ""
            out.setdefault("times", []).append(f"“{shown}”: {message}")
        elif name == "steps" and len(parts) > 2 and parts[1].isdigit():
            index = int(parts[1])
            row = rows_sent[index] if index < len(rows_sent) else -1
            if row < 0:
                out.setdefault("steps", []).append(f"Today's step: {parts[2]}: {message}")
            else:
                column = parts[2]
                if column == "times" and len(parts) > 3:
                    message = f"time {int(parts[3]) + 1}: {message}"
                out.setdefault(f"steps-{row}-{column}", []).append(message)
        elif name in typed.values or name == "steps":
            out.setdefault(name, []).append(message)
        else:
            out.setdefault("form", []).append(f"{name}: {message}")
    return out
