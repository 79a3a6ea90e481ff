"""`companion up --demo`: demo logins that work and a few weeks of history, made once."""

from sqlalchemy import func, select

from companion import db
from companion.demo import DEMO_PASSWORD, MEMBERS, ensure_demo
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
    assert plans == len(MEMBERS)
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
