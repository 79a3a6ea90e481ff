"""`companion up --demo`: demo logins that work and a few weeks of history, made once."""

from sqlalchemy import func, select

from companion import db
from companion.demo import DEMO_PASSWORD, MEMBERS, SCENARIOS, ensure_demo
from companion.medications.models import MedicationCheckin, MedicationPlan
from companion.pacs.models import PacsReport
from companion.symptoms.models import SymptomReport
from companion.tracking.models import Craving, DrinkLog
from tests.conftest import Api


def _counts():
    return [
        db.session.execute(select(func.count()).select_from(m)).scalar()
        for m in (DrinkLog, Craving, MedicationPlan, MedicationCheckin, SymptomReport, PacsReport)
    ]


def test_demo_history_and_logins(app, client):
    with app.app_context(), db.unit_of_work():
        logins = ensure_demo(now=db.utcnow())
    with app.app_context():
        counts = _counts()
    logs, cravings, plans, checkins, symptom_reports, pacs = counts
    assert plans == len(MEMBERS) + len(SCENARIOS)
    assert logs >= 5 * 15 and cravings >= 5 * 10 and checkins >= 5 * 15
    assert symptom_reports >= len([sc for sc in SCENARIOS if sc.symptom]) and pacs >= len(MEMBERS) * 2
    with app.app_context(), db.unit_of_work():
        ensure_demo(now=db.utcnow())  # a second run changes nothing
    with app.app_context():
        assert _counts() == counts
    token = (
        Api(client).post("/auth/token", {"email": logins.members[0], "password": DEMO_PASSWORD}).get_json()
    )
    member = Api(client, token["access_token"])
    summary = member.get("/me/summary").get_json()
    assert summary["last_30_days"]["days_logged"] >= 12
    assert summary["adherence"]["scheduled"] > 0
    coach = Api(client).post("/auth/token", {"email": logins.coach, "password": DEMO_PASSWORD})
    assert coach.status_code == 200 and coach.get_json()["role"] == "coach"


def test_the_demo_tells_the_story(app, client):
    """Issues 19 and 22: a newcomer sees what the product is for: an urgent flag of every urgent rule, a
    warning, one acknowledged, one resolved with its note, one cleared by a rescan, breath readings,
    side effects, symptom reports, PACS, craving triggers in the member's words, and coach messages."""
    from companion.accounts.models import User
    from companion.domain.safety import RULES, Tier
    from companion.medications.models import SideEffectReport
    from companion.nudges.models import Message
    from companion.safety.models import Flag
    from companion.tracking.models import BacReading

    with app.app_context(), db.unit_of_work():
        ensure_demo(now=db.utcnow())
    with app.app_context():
        flags = {
            (email, f.rule): f
            for f, email in db.session.execute(select(Flag, User.email).join(User, User.id == Flag.member_id))
        }
        for sc in SCENARIOS:  # each scenario's member has its flag, in the status the coach left it
            flag = flags.get((sc.email, sc.rule))
            assert flag is not None and flag.status == sc.status, (sc, sorted(flags))
        assert len(flags) == len(SCENARIOS), sorted(flags)  # and nothing else: one flag a member
        urgent = {rule for rule, r in RULES.items() if r.tier == Tier.URGENT}
        assert urgent <= {f.rule for f in flags.values() if f.tier == 3}, urgent
        by_rule = {f.rule: f for f in flags.values()}
        assert by_rule["persistent_side_effect"].tier == 2
        assert "GP" in by_rule["liver_signs"].resolution_note
        cleared = by_rule["disengagement"]
        assert cleared.cleared_at is not None and cleared.cleared_reason and cleared.cleared_evidence
        assert db.session.execute(select(func.count()).select_from(BacReading)).scalar() >= 5
        severities = set(db.session.execute(select(SideEffectReport.severity)).scalars())
        assert {"mild", "moderate", "severe"} <= severities
        reported = {
            (email, code)
            for codes, email in db.session.execute(
                select(SymptomReport.codes, User.email).join(User, User.id == SymptomReport.member_id)
            )
            for code in codes
        }
        assert {(sc.email, sc.symptom[0]) for sc in SCENARIOS if sc.symptom} <= reported, reported
        weeks = db.session.execute(
            select(User.email, func.count())
            .join(PacsReport, PacsReport.member_id == User.id)
            .group_by(User.email)
        ).all()
        assert {email for email, n in weeks if n >= 2} >= {m[0] for m in MEMBERS}, weeks
        assert db.session.execute(select(func.count()).select_from(Message)).scalar() >= 2
        triggers = db.session.execute(
            select(Craving.triggers).where(func.cardinality(Craving.triggers) > 0)
        ).first()
        assert triggers is not None
    with app.app_context(), db.unit_of_work():
        ensure_demo(now=db.utcnow())  # a second run adds nothing
    with app.app_context():
        assert db.session.execute(select(func.count()).select_from(Flag)).scalar() == len(flags)


def test_the_demo_insurer_report_shows_numbers(app, database_url):
    """The demo insurer's cohort is large enough that its report's cells hold numbers, not suppressions:
    the report FIRST_LOOKS suggests (the last three months that are over), built again without the
    release ledger hiding anything (the same months, the same counts)."""
    import csv
    import io
    from datetime import timedelta

    from companion.demo import COHORT_MEMBERS, DEMO_INSURER_CODE, ensure_cohort
    from companion.exports import build_tx
    from companion.runtime import libpq_url

    now = db.utcnow()
    with app.app_context(), db.unit_of_work():
        ensure_demo(now=now)
    assert ensure_cohort(libpq_url(database_url), now=now) == COHORT_MEMBERS
    assert ensure_cohort(libpq_url(database_url), now=now) == 0  # once
    last_month = (now.replace(day=1) - timedelta(days=1)).strftime("%Y-%m")
    first_month = (now.replace(day=1) - timedelta(days=75)).strftime("%Y-%m")
    reports = []
    for _ in range(2):
        with app.app_context(), db.unit_of_work():
            built = build_tx.export_for_insurer(
                DEMO_INSURER_CODE, first_month, last_month, "csv", [], now=now
            )
        reports.append(list(csv.DictReader(io.StringIO(built.content.decode()))))
    rows = reports[0]
    [members] = [r for r in rows if r["measure"] == "members"]
    assert int(members["value"]) >= 11 * 4, members
    shown = {
        r["measure"] for r in rows if r["suppressed"] == "false" and r["value"] and not r["status_reason"]
    }
    wanted = {"engagement", "pda", "phdd", "weekly_drinks_change", "craving_change", "adherence"}
    assert wanted <= shown, [(r["measure"], r["value"], r["status_reason"]) for r in rows]
    assert reports[1] == rows  # a repeat differs from the ledger's earlier release by nothing
