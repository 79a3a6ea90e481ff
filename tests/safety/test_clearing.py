"""Flags that stop being true (issue 26, DOMAIN.md "Safety rules"): a rescan that no longer finds an
open flag's finding clears it, with the reason and the entries that showed it; a flag citing a
reported symptom never clears by itself; a finding that only aged out of its window stays open."""

from __future__ import annotations

import uuid

from companion import db
from companion.accounts.models import User
from companion.safety import queue
from tests.safety import helpers

# Fixtures of the sibling module, shared (pytest finds them through these names).
from tests.safety.test_services import DAY, NOW, TODAY, Person, at, person, scan, team  # noqa: F401


def open_flags(app, member_id) -> list:
    return [f for f in helpers.flags_of(app, member_id) if f.status in ("open", "acknowledged")]


def test_a_member_active_again_clears_disengagement(app, client, team):  # noqa: F811
    quiet = Person(app, client, coach_email=team["coach"][1], admin_email="-", plan=False)
    for ago in range(20, 6, -1):
        quiet.log(TODAY - ago * DAY)
    scan(app, quiet.id)
    [flag] = helpers.flags_of(app, quiet.id)
    assert (flag.rule, flag.status) == ("disengagement", "open")

    quiet.log(TODAY)  # back
    result = scan(app, quiet.id)
    assert result.cleared == 1
    [cleared] = helpers.flags_of(app, quiet.id)
    assert (cleared.id, cleared.status, cleared.cleared_at) == (flag.id, "cleared", NOW)
    assert cleared.cleared_reason.startswith("Active again")
    assert cleared.cleared_evidence == [f"drink_log:{TODAY}"]
    assert cleared.evidence == flag.evidence  # what it said is kept

    # Out of the queue, still listed under "cleared"; nothing to acknowledge or resolve.
    coach = helpers.api_for(app, client, team["coach"][0])
    assert [f["id"] for f in coach.get("/coach/flags").get_json()["items"]] == []
    [listed] = coach.get("/coach/flags?status=cleared").get_json()["items"]
    assert (listed["id"], listed["status"]) == (str(flag.id), "cleared")
    assert listed["cleared_reason"] == cleared.cleared_reason
    assert listed["cleared_evidence"] == [f"drink_log:{TODAY}"]
    for action, body in (("acknowledge", None), ("resolve", {"note": "ok"})):
        r = coach.post(f"/coach/flags/{flag.id}/{action}", body)
        assert r.status_code == 409 and r.get_json()["error"]["current"]["status"] == "cleared"

    # Quiet again later: a new flag opens beside the cleared one.
    assert scan(app, quiet.id, NOW + 6 * DAY).opened == 1
    assert sorted(f.status for f in helpers.flags_of(app, quiet.id)) == ["cleared", "open"]


def test_doses_backfilled_in_order_one_request_each_leave_no_urgent_or_warning_flag(app, client, team):  # noqa: F811
    member = Person(app, client, coach_email=team["coach"][1], admin_email="-", medication="baclofen")
    member.take_all(range(10, 6, -1))
    # Six days later the member enters those days' doses, oldest first, each day one request,
    # each request followed by the scan it asks for.
    for ago in range(6, -1, -1):
        day = TODAY - ago * DAY
        for hhmm in ("08:00", "20:00"):
            if at(day, hhmm) > NOW:
                continue
            body = {
                "id": str(uuid.uuid4()),
                "plan_id": member.plan_id,
                "scheduled_for": at(day, hhmm).isoformat(),
                "status": "taken",
                "taken_at": at(day, hhmm).isoformat(),
            }
            with helpers.travel(NOW):
                assert member.api().post("/medication-checkins", body).status_code == 201
        scan(app, member.id)
        if ago == 6:  # the first day's entry alone shows the five days after it missed
            assert [f.rule for f in open_flags(app, member.id)] == ["withdrawal_risk"]
    assert [f for f in open_flags(app, member.id) if f.tier >= 2] == []
    [flag] = helpers.flags_of(app, member.id)
    assert (flag.rule, flag.status) == ("withdrawal_risk", "cleared")
    assert flag.cleared_reason.startswith("The doses it cites were entered as taken")
    assert flag.cleared_evidence and all(e.startswith("checkin:") for e in flag.cleared_evidence)


def test_a_flag_citing_a_reported_symptom_never_clears_by_itself(app, client, team):  # noqa: F811
    member = Person(app, client, coach_email=team["coach"][1], admin_email="-", medication="baclofen")
    member.take_all(range(10, 2, -1))
    member.dose(TODAY - 2 * DAY, "08:00", status="skipped")
    member.dose(TODAY, "08:00", ("hallucinations", "moderate"))  # a withdrawal sign after a missed dose
    scan(app, member.id)
    [flag] = open_flags(app, member.id)
    assert flag.rule == "withdrawal_risk" and "hallucinations" in flag.symptoms
    # The skipped dose turns out taken (a second check-in of the slot is refused, so the member's
    # report stands): even with every dose now taken, only a coach closes a reported symptom's flag.
    member.dose(TODAY - 2 * DAY, "20:00")
    member.dose(TODAY - DAY, "08:00")
    member.dose(TODAY - DAY, "20:00")
    for now in (NOW, NOW + DAY):
        assert scan(app, member.id, now).cleared == 0
    assert [f.status for f in helpers.flags_of(app, member.id)] == ["open"]


def test_a_drink_log_corrected_to_none_clears_disulfiram_with_drinking_but_age_does_not(app, client, team):  # noqa: F811
    member = Person(app, client, coach_email=team["coach"][1], admin_email="-", medication="disulfiram")
    member.log(TODAY - 3 * DAY, "2")
    member.log(TODAY - 2 * DAY, "0")
    scan(app, member.id)
    [flag] = open_flags(app, member.id)
    assert flag.rule == "disulfiram_with_drinking"
    # Weeks later the drink is out of every window: not found any more, but it happened; it stays.
    later = NOW + 20 * DAY
    assert scan(app, member.id, later).cleared == 0
    [same] = [f for f in helpers.flags_of(app, member.id) if f.rule == "disulfiram_with_drinking"]
    assert (same.id, same.status) == (flag.id, "open")

    other = Person(app, client, coach_email=team["coach"][1], admin_email="-", medication="disulfiram")
    other.log(TODAY - 3 * DAY, "2")
    scan(app, other.id, NOW - DAY)
    [flag] = open_flags(app, other.id)
    other.log(TODAY - 3 * DAY, "0")  # the member corrects a mistaken entry the next day
    result = scan(app, other.id)
    assert result.cleared == 1
    [cleared] = helpers.flags_of(app, other.id)
    assert (cleared.id, cleared.status) == (flag.id, "cleared")
    assert f"drink_log:{TODAY - 3 * DAY}" in cleared.cleared_evidence


def test_an_acknowledged_flag_is_the_coachs_and_does_not_clear(app, client, team):  # noqa: F811
    quiet = Person(app, client, coach_email=team["coach"][1], admin_email="-", plan=False)
    for ago in range(20, 6, -1):
        quiet.log(TODAY - ago * DAY)
    scan(app, quiet.id)
    [flag] = helpers.flags_of(app, quiet.id)
    with app.app_context(), db.unit_of_work() as session:
        queue.acknowledge(session.get(User, team["coach"][0]), flag.id, now=NOW)
    quiet.log(TODAY)
    assert scan(app, quiet.id).cleared == 0
    assert [f.status for f in helpers.flags_of(app, quiet.id)] == ["acknowledged"]
