"""`GET /me/export` holds every record about the member (issue 21, finding 7): the flags raised about them
and the staff notes on them, every staff read of their record (also `GET /me/disclosures`), their
devices, and a consent ledger with each consent given or withdrawn, its time and text version."""

from __future__ import annotations

from datetime import UTC, datetime

from companion import db
from companion.accounts import services as accounts
from companion.safety.models import Flag


def make_flag(app, member_id) -> str:
    today = datetime.now(UTC).date()
    with app.app_context(), db.unit_of_work() as session:
        flag = Flag(member_id=member_id, rule="export_test", rule_version=1, tier=2, status="open",
                    evidence=["e1"], summary="Two heavy days.", first_seen=today,
                    last_seen=today)  # fmt: skip
        session.add(flag)
        session.flush()
        return str(flag.id)


def test_the_export_holds_flags_notes_reads_devices_and_the_consent_ledger(app, register, staff):
    member = register(consents={"outcome_sharing": True})
    other = register()
    member_id = member.body["member"]["id"]
    coach = staff("coach")
    with app.app_context(), db.unit_of_work():
        accounts.assign_coach(member.body["member"]["email"], coach.email, now=db.utcnow())
    assert member.post("/me/devices", {"platform": "ios", "push_token": "apns-export-1"}).status_code in (
        200,
        201,
    )
    for choice in (False, False, True):  # the second False changes nothing: no ledger row
        assert member.patch("/me", {"consents": {"outcome_sharing": choice}}).status_code == 200
    assert coach.get(f"/coach/members/{member_id}").status_code == 200
    flag_id = make_flag(app, member_id)
    r = coach.post(f"/coach/flags/{flag_id}/resolve", {"note": "Called; agreed to see the doctor."})
    assert r.status_code == 200, r.get_json()
    other_flag = make_flag(app, other.body["member"]["id"])

    export = member.get("/me/export").get_json()

    ledger = export["consent_ledger"]
    assert [(e["consent"], e["given"]) for e in ledger] == [
        ("outcome_sharing", True),
        ("outcome_sharing", False),
        ("outcome_sharing", True),
    ], ledger
    assert {e["text_version"] for e in ledger} == {accounts.CONSENT_TEXT_VERSIONS["outcome_sharing"]}
    assert ledger == sorted(ledger, key=lambda e: e["at"])

    flags = export["safety"]["flags"]
    assert [f["id"] for f in flags] == [flag_id]  # never another member's (other_flag)
    assert other_flag not in str(export)
    assert flags[0]["status"] == "resolved" and flags[0]["resolved_by"] == str(coach_id(app, coach.email))
    assert flags[0]["staff_note"] == "Called; agreed to see the doctor."

    reads = export["disclosures"]
    actions = [d["action"] for d in reads]
    assert "member.viewed" in actions, actions
    viewed = next(d for d in reads if d["action"] == "member.viewed")
    assert viewed["by"]["role"] == "coach" and viewed["by"]["id"] == str(coach_id(app, coach.email))

    assert [d["platform"] for d in export["devices"]] == ["ios"]
    assert "apns-export-1" not in str(export)  # the push token is a credential, not a record about them

    listed = member.get("/me/disclosures")
    assert listed.status_code == 200
    assert listed.get_json()["disclosures"] == reads
    assert other.get("/me/disclosures").get_json()["disclosures"] == []


def coach_id(app, email):
    with app.app_context():
        return accounts.find_user_by_email(email).id
