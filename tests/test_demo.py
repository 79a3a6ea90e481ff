"""`companion up --demo`: demo logins that work and a few weeks of history, made once."""

from sqlalchemy import func, select

from companion import db
from companion.demo import DEMO_PASSWORD, MEMBERS, SCENARIOS, ensure_demo
from companion.medications.models import MedicationCheckin, MedicationPlan
from companion.tracking.models import Craving, DrinkLog
from tests.conftest import Api


def _counts():
    return [
        db.session.execute(select(func.count()).select_from(m)).scalar()
        for m in (DrinkLog, Craving, MedicationPlan, MedicationCheckin)
    ]


def test_demo_history_and_logins(app, client):
    with app.app_context(), db.unit_of_work():
        logins = ensure_demo(now=db.utcnow())
    with app.app_context():
        logs, cravings, plans, checkins = _counts()
    assert plans == len(MEMBERS) + len(SCENARIOS)
    assert logs >= 5 * 15 and cravings >= 5 * 10 and checkins >= 5 * 15
    with app.app_context(), db.unit_of_work():
        ensure_demo(now=db.utcnow())  # a second run changes nothing
    with app.app_context():
        assert _counts() == [logs, cravings, plans, checkins]
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
    """Issue 22: a newcomer sees what the product is for: an urgent flag of each kind the demo can
    raise, a warning, one acknowledged and one resolved with its note, breath readings, side effects,
    craving triggers in the member's words, and coach messages."""
    from companion.medications.models import SideEffectReport
    from companion.nudges.models import Message
    from companion.safety.models import Flag
    from companion.tracking.models import BacReading

    with app.app_context(), db.unit_of_work():
        ensure_demo(now=db.utcnow())
    with app.app_context():
        flags = {f.rule: f for f in db.session.execute(select(Flag)).scalars()}
        for scenario in SCENARIOS:
            assert scenario.rule in flags, (scenario.rule, sorted(flags))
        urgent = {rule for rule, f in flags.items() if f.tier == 3}
        assert len(urgent) >= 6, urgent
        assert flags["persistent_side_effect"].tier == 2
        assert flags["withdrawal_risk"].status == "acknowledged"
        assert flags["liver_signs"].status == "resolved" and "GP" in flags["liver_signs"].resolution_note
        assert db.session.execute(select(func.count()).select_from(BacReading)).scalar() >= 5
        severities = set(db.session.execute(select(SideEffectReport.severity)).scalars())
        assert {"mild", "moderate", "severe"} <= severities
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
    """The demo insurer's cohort is large enough that its report's cells hold numbers, not suppressions."""
    import csv
    import io
    from datetime import timedelta

    from companion.demo import COHORT_MEMBERS, DEMO_INSURER_CODE, ensure_cohort
    from companion.exports import services as exports
    from companion.runtime import libpq_url

    now = db.utcnow()
    with app.app_context(), db.unit_of_work():
        ensure_demo(now=now)
    assert ensure_cohort(libpq_url(database_url), now=now) == COHORT_MEMBERS
    assert ensure_cohort(libpq_url(database_url), now=now) == 0  # once
    last_month = (now.replace(day=1) - timedelta(days=1)).strftime("%Y-%m")
    first_month = (now.replace(day=1) - timedelta(days=75)).strftime("%Y-%m")
    with app.app_context(), db.unit_of_work():
        built = exports.export_for_insurer(DEMO_INSURER_CODE, first_month, last_month, "csv", [], now=now)
    rows = list(csv.DictReader(io.StringIO(built.content.decode())))
    [members] = [r for r in rows if r["measure"] == "members"]
    assert int(members["value"]) >= 11 * 4, members
    shown = {r["measure"] for r in rows if r["suppressed"] == "false" and r["value"]}
    assert {"engagement", "pda", "phdd", "weekly_drinks", "craving", "adherence"} <= shown, rows
