"""Who may do what, as data: every route of the URL map, every actor, own and others' records.

Actors (tests/security/test_authorization_matrix.py builds them):
    anonymous      no token
    member         M, with records of their own
    other_member   N, with records of their own
    coach          C, M's current coach
    other_coach    D, N's current coach (not M's)
    ended_coach    E, M's coach until C took over
    admin
    analyst        an insurer analyst of plan A

The API is called with the actor's bearer token; the dashboard (/dashboard) with a session cookie of
theirs (a member's or an analyst's is one the sign-in page never gives: made by hand, it is refused).

Targets: a route whose path names a record is called twice, on M's record (`member`) and on N's
(`other`); an insurer export of plan A is `member`'s, one of plan B is `other`'s. Routes without a
record in the path have the one target `-`.

Each cell is the status that the call must answer. The rule of API.md and DESIGN.md: a role that may
never call a route gets 403 (401 before it when signed out); a record that is not yours to see is a
404, never a 403 that would reveal it exists.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping

ACTORS = (
    "anonymous",
    "member",
    "other_member",
    "coach",
    "other_coach",
    "ended_coach",
    "admin",
    "analyst",
)
MEMBERS = ("member", "other_member")
COACHES = ("coach", "other_coach", "ended_coach")
TARGETS = ("member", "other")
NONE = ("-",)

Cells = Mapping[tuple[str, str], int]


@dataclasses.dataclass(frozen=True)
class Route:
    method: str
    rule: str  # as werkzeug spells it in the URL map
    expect: Cells
    #: Names of fixtures the test resolves per cell: a path parameter to a record, or a body.
    params: Mapping[str, str] = dataclasses.field(default_factory=dict)
    body: str | None = None
    #: Calls that end the caller's sign-in: each cell gets a token of its own.
    ends_session: bool = False


def _table(targets: tuple[str, ...], status: Callable[[str, str], int]) -> dict[tuple[str, str], int]:
    return {(actor, target): status(actor, target) for actor in ACTORS for target in targets}


def everyone(ok: int) -> Cells:
    return _table(NONE, lambda actor, _: ok)


def signed_in(ok: int) -> Cells:
    return _table(NONE, lambda actor, _: 401 if actor == "anonymous" else ok)


def members(ok: int) -> Cells:
    """Member routes on the caller's own data (the path names no record, or a date of their own)."""
    return _table(NONE, lambda actor, _: 401 if actor == "anonymous" else ok if actor in MEMBERS else 403)


def members_owned(ok: int) -> Cells:
    """Member routes naming a record: yours is `ok`, anyone else's is 404."""

    def status(actor: str, target: str) -> int:
        if actor == "anonymous":
            return 401
        if actor not in MEMBERS:
            return 403
        own = (actor, target) in {("member", "member"), ("other_member", "other")}
        return ok if own else 404

    return _table(TARGETS, status)


def coaches(ok: int) -> Cells:
    """Coach routes on the caller's caseload as a whole (the queue)."""

    def status(actor: str, _: str) -> int:
        if actor == "anonymous":
            return 401
        return ok if actor in COACHES or actor == "admin" else 403

    return _table(NONE, status)


def caseload(ok: int) -> Cells:
    """Coach routes naming a member or their record: only a current coach (or an admin) reaches it."""

    def status(actor: str, target: str) -> int:
        if actor == "anonymous":
            return 401
        if actor == "admin":
            return ok
        if actor not in COACHES:
            return 403
        current = (actor, target) in {("coach", "member"), ("other_coach", "other")}
        return ok if current else 404

    return _table(TARGETS, status)


def analysts_own(ok: int) -> Cells:
    """Insurer routes naming an export: the analyst's plan's only."""

    def status(actor: str, target: str) -> int:
        if actor == "anonymous":
            return 401
        if actor != "analyst":
            return 403
        return ok if target == "member" else 404

    return _table(TARGETS, status)


def analysts(ok: int) -> Cells:
    return _table(NONE, lambda actor, _: 401 if actor == "anonymous" else ok if actor == "analyst" else 403)


def dashboard_pages(ok: int) -> Cells:
    """Dashboard pages of coaches and admins. Signed out: a redirect to the sign-in page (302)."""
    return _table(
        NONE, lambda actor, _: 302 if actor == "anonymous" else ok if actor in (*COACHES, "admin") else 403
    )


def dashboard_caseload(ok: int) -> Cells:
    """Dashboard pages and forms naming a member or their record: as the API's caseload rule."""
    api = caseload(ok)
    return {cell: 302 if cell[0] == "anonymous" else status for cell, status in api.items()}


def dashboard_admins(ok: int) -> Cells:
    return _table(NONE, lambda actor, _: 302 if actor == "anonymous" else ok if actor == "admin" else 403)


V1 = "/api/v1"
MEMBER_ID = {"member_id": "member_id"}

ROUTES: tuple[Route, ...] = (
    # Public: documents, health, sign-up and sign-in (a bad body is still refused, but never for who you are).
    Route("GET", "/api/openapi.json", everyone(200)),
    Route("GET", "/api/docs", everyone(200)),
    Route("GET", "/api/docs/init.js", everyone(200)),
    Route("GET", "/api/docs/assets/<path:filename>", everyone(200), params={"filename": "asset"}),
    Route("GET", "/static/<path:filename>", everyone(404), params={"filename": "missing_static"}),
    Route("GET", "/healthz", everyone(200)),
    Route("GET", "/readyz", everyone(503)),  # open to all; no worker or beat runs beside this test
    Route("GET", "/metrics", everyone(404)),  # off without METRICS_TOKEN; a user's token never opens it
    Route("POST", f"{V1}/auth/register", everyone(201), body="registration"),
    Route("POST", f"{V1}/auth/token", everyone(401), body="wrong_password"),
    Route("POST", f"{V1}/auth/refresh", everyone(401), body="unknown_refresh"),
    # The member's own account and records.
    Route("GET", f"{V1}/me", members(200)),
    Route("PATCH", f"{V1}/me", members(200), body="patch_me"),
    Route("GET", f"{V1}/me/export", members(200)),
    Route("GET", f"{V1}/me/disclosures", members(200)),
    Route("GET", f"{V1}/me/summary", members(200)),
    Route("GET", f"{V1}/me/devices", members(200)),
    Route("POST", f"{V1}/me/devices", members(201), body="device"),
    Route("DELETE", f"{V1}/me/devices/<uuid:device_id>", members_owned(204), params={"device_id": "device"}),
    Route("GET", f"{V1}/me/messages", members(200)),
    Route("POST", f"{V1}/me/messages/<uuid:nudge_id>/read", members_owned(204),
          params={"nudge_id": "message"}),
    Route("POST", f"{V1}/me/messages/<uuid:nudge_id>/snooze", members_owned(202),
          params={"nudge_id": "message"}, body="snooze"),
    Route("GET", f"{V1}/drink-logs", members(200)),
    Route("PUT", f"{V1}/drink-logs/<day>", members(201), params={"day": "empty_day"}, body="drink_log"),
    Route("GET", f"{V1}/drink-logs/<day>", members(200), params={"day": "logged_day"}),
    Route("DELETE", f"{V1}/drink-logs/<day>", members(204), params={"day": "logged_day"}),
    Route("GET", f"{V1}/cravings", members(200)),
    Route("POST", f"{V1}/cravings", members(201), body="craving"),
    Route("GET", f"{V1}/bac-readings", members(200)),
    Route("POST", f"{V1}/bac-readings", members(201), body="bac_reading"),
    Route("GET", f"{V1}/sync", members(200)),
    Route("POST", f"{V1}/sync", members(200), body="sync"),
    Route("GET", f"{V1}/medications", signed_in(200)),
    Route("GET", f"{V1}/symptoms", signed_in(200)),
    Route("GET", f"{V1}/symptom-reports", members(200)),
    Route("POST", f"{V1}/symptom-reports", members(201), body="symptom_report"),
    Route("GET", f"{V1}/pacs", members(200)),
    Route("POST", f"{V1}/pacs", members(201), body="pacs"),
    Route("GET", f"{V1}/medication-plans", members(200)),
    Route("GET", f"{V1}/medication-checkins", members(200)),
    # A check-in names a plan in its body: one of the caller's plans, or a 404.
    Route("POST", f"{V1}/medication-checkins", members_owned(201), body="checkin"),
    # Coaches: the caseload.
    Route("GET", f"{V1}/coach/flags", coaches(200)),
    Route("POST", f"{V1}/coach/flags/<uuid:flag_id>/acknowledge", caseload(200), params={"flag_id": "flag"}),
    Route("POST", f"{V1}/coach/flags/<uuid:flag_id>/resolve", caseload(200), params={"flag_id": "flag"},
          body="resolve"),
    Route("POST", f"{V1}/coach/members/<uuid:member_id>/messages", caseload(201), params=MEMBER_ID,
          body="message"),
    Route("POST", f"{V1}/coach/members/<uuid:member_id>/medication-plans", caseload(201), params=MEMBER_ID,
          body="plan"),
    Route("PATCH", f"{V1}/coach/members/<uuid:member_id>/medication-plans/<uuid:plan_id>", caseload(200),
          params={**MEMBER_ID, "plan_id": "plan"}, body="plan_change"),
    Route("GET", f"{V1}/coach/members", coaches(200)),
    Route("GET", f"{V1}/coach/members/<uuid:member_id>", caseload(200), params=MEMBER_ID),
    Route("GET", f"{V1}/coach/members/<uuid:member_id>/timeline", caseload(200), params=MEMBER_ID),
    # The coach dashboard (HTML, a session cookie; a member's or analyst's session is refused).
    Route("GET", "/dashboard/login", _table(NONE, lambda a, _: 302 if a in (*COACHES, "admin") else 200)),
    Route("POST", "/dashboard/login", everyone(401), body="dashboard_wrong_password"),
    Route("GET", "/dashboard/", dashboard_pages(302)),
    Route("GET", "/dashboard/flags", dashboard_pages(200)),
    Route("POST", "/dashboard/flags/<uuid:flag_id>/acknowledge", dashboard_caseload(302),
          params={"flag_id": "flag"}),
    Route("POST", "/dashboard/flags/<uuid:flag_id>/resolve", dashboard_caseload(302),
          params={"flag_id": "flag"}, body="resolve"),
    Route("GET", "/dashboard/members", dashboard_pages(200)),
    Route("GET", "/dashboard/members/<uuid:member_id>", dashboard_caseload(200), params=MEMBER_ID),
    Route("POST", "/dashboard/members/<uuid:member_id>/plans/<uuid:plan_id>", dashboard_caseload(302),
          params={**MEMBER_ID, "plan_id": "plan"}, body="plan_change"),
    Route("POST", "/dashboard/members/<uuid:member_id>/plans", dashboard_caseload(302), params=MEMBER_ID,
          body="dashboard_plan"),
    Route("POST", "/dashboard/members/<uuid:member_id>/messages", dashboard_caseload(302), params=MEMBER_ID,
          body="dashboard_message"),
    Route("GET", "/dashboard/account", dashboard_pages(200)),
    Route("POST", "/dashboard/account", dashboard_pages(302), body="dashboard_zone"),
    Route("GET", "/dashboard/zone.js", everyone(200)),
    Route("GET", "/dashboard/audit", dashboard_admins(200)),
    Route("POST", "/dashboard/sessions/end-all", dashboard_admins(302)),
    Route("POST", "/dashboard/logout", dashboard_pages(302), ends_session=True),
    # Insurer analysts: their own plan's exports.
    Route("POST", f"{V1}/insurer/exports", analysts(202), body="export"),
    Route("GET", f"{V1}/insurer/exports/<uuid:export_id>", analysts_own(200), params={"export_id": "export"}),
    Route("GET", f"{V1}/insurer/exports/<uuid:export_id>/file", analysts_own(409),
          params={"export_id": "export"}),
    Route("GET", f"{V1}/insurer/measures", analysts(200)),
    # Last: they end the caller's sign-in, or the member's account.
    Route("POST", f"{V1}/auth/logout", signed_in(204), ends_session=True),
    Route("DELETE", f"{V1}/me", members(202), body="password", ends_session=True),
)  # fmt: skip
