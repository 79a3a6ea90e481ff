"""`GET /me/summary` against numbers worked out by hand: a member on a baclofen taper, with a recall
day and the 2026-11-01 fall-back in New York inside the window, every record entered through the API."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import pytest
import time_machine

from companion import db
from companion.accounts import services as accounts
from tests.conftest import PASSWORD, Api

NY = ZoneInfo("America/New_York")


def local(day: str, hhmm: str) -> str:
    """An instant for a New York wall time, with its offset (EDT or EST as the day has it)."""
    moment = datetime.combine(date.fromisoformat(day), time.fromisoformat(hhmm), tzinfo=NY)
    return moment.isoformat()


def sign_in(client, email: str) -> Api:
    r = Api(client).post("/auth/token", {"email": email, "password": PASSWORD})
    assert r.status_code == 200, r.get_json()
    return Api(client, r.get_json()["access_token"])


def test_summary_equals_the_hand_computed_example(app, client, staff, register):
    # Sunday 2026-10-25 12:00 in New York: the member enrols, a coach starts a baclofen plan from
    # Tuesday with a taper step on Saturday 10-31, and the member recalls a drinking day from 10-20.
    with time_machine.travel(datetime(2026, 10, 25, 16, 0, tzinfo=UTC), tick=False):
        member = register(
            timezone="America/New_York",
            sex="female",
            country="US",
            goal={"type": "moderate", "weekly_limit": 7},
        )
        email = member.body["member"]["email"]
        coach = staff("coach")
        with app.app_context(), db.unit_of_work():
            accounts.assign_coach(email, coach.email, now=db.utcnow())
        plan = coach.post(
            f"/coach/members/{member.body['member']['id']}/medication-plans",
            {
                "medication": "baclofen",
                "dose_mg": 10,
                "times": ["08:00", "20:00"],
                "start_date": "2026-10-27",
                "end_date": "2026-11-10",
                "steps": [{"from_date": "2026-10-31", "dose_mg": 5, "times": ["20:00"]}],
            },
        )
        assert plan.status_code == 201, plan.get_json()
        plan_id = plan.get_json()["id"]
        recalled = member.put("/drink-logs/2026-10-20", {"standard_drinks": 3})
        assert recalled.get_json()["source"] == "recall"

    # Monday 2026-11-02 21:00 EST (02:00Z on the 3rd): the rest of the fortnight, entered now.
    with time_machine.travel(datetime(2026, 11, 3, 2, 0, tzinfo=UTC), tick=False):
        member = sign_in(client, email)
        logs = {
            "2026-11-02": 0,
            "2026-11-01": 2,
            "2026-10-31": 0,
            "2026-10-30": 5,
            "2026-10-28": 1,
            "2026-10-27": 0,
        }
        for day, drinks in logs.items():
            assert member.put(f"/drink-logs/{day}", {"standard_drinks": drinks}).status_code == 201
        assert member.get("/drink-logs/2026-10-28").get_json()["source"] == "recall"
        assert member.get("/drink-logs/2026-11-01").get_json()["source"] == "realtime"
        for day, hhmm, intensity in [
            ("2026-10-25", "09:00", 3),
            ("2026-10-26", "18:00", 5),  # the week before: mean 4.0
            ("2026-10-28", "12:00", 6),
            ("2026-11-01", "23:30", 8),
            ("2026-11-02", "10:00", 4),  # this week: 6.0
        ]:
            r = member.post(
                "/cravings",
                {"id": str(uuid.uuid4()), "recorded_at": local(day, hhmm), "intensity": intensity},
            )
            assert r.status_code == 201 and r.get_json()["date"] == day  # 23:30 EST is already the 2nd in UTC
        # Doses: two a day 10-27..10-30, then one (20:00) from the taper step on. All taken but the
        # skipped 10-28 20:00 and the 10-31 20:00 that has no check-in; 11-01 20:00 is on the EST side.
        slots = [
            (d, t)
            for d in ("2026-10-27", "2026-10-28", "2026-10-29", "2026-10-30")
            for t in ("08:00", "20:00")
        ]
        slots += [("2026-10-31", "20:00"), ("2026-11-01", "20:00"), ("2026-11-02", "20:00")]
        for day, hhmm in slots:
            if (day, hhmm) == ("2026-10-31", "20:00"):
                continue
            status = "skipped" if (day, hhmm) == ("2026-10-28", "20:00") else "taken"
            body = {
                "id": str(uuid.uuid4()),
                "plan_id": plan_id,
                "scheduled_for": local(day, hhmm),
                "status": status,
            }
            if status == "taken":
                body["taken_at"] = local(day, hhmm)
            r = member.post("/medication-checkins", body)
            assert r.status_code == 201, (day, hhmm, r.get_json())
        assert local("2026-11-01", "20:00").endswith("-05:00") and local("2026-10-31", "20:00").endswith(
            "-04:00"
        )

        summary = member.get("/me/summary")
        assert summary.status_code == 200
        assert summary.get_json() == {
            "as_of": "2026-11-02",
            # Today is dry but yesterday was not: one alcohol-free day. Within goal needs the 7 days
            # ending today under 7 drinks: 0+2+0+5+(missing)+1+0 = 8 drinks (112 g): not within goal.
            "streak": {"alcohol_free_days": 1, "within_goal_days": 0},
            # 10-27..11-02: 6 days logged (10-29 missing); 112 g / 14 g = 8.0 US drinks against 7;
            # 10-30 (70 g >= 56 g) is heavy; 8 US drinks is NIAAA heavy weekly use for a woman.
            "week": {
                "days_logged": 6,
                "standard_drinks": 8.0,
                "weekly_limit": 7.0,
                "heavy_days": 1,
                "over_niaaa_weekly": True,
            },
            # 10-04..11-02: 7 days logged (with the recalled 10-20), 3 dry, 1 heavy; drinking days
            # 11-01, 10-30, 10-28, 10-20 hold 28+70+14+42 = 154 g = 11 drinks over 4 days = 2.75 -> 2.8.
            "last_30_days": {
                "days_logged": 7,
                "alcohol_free_days": 3,
                "heavy_days": 1,
                "drinks_per_drinking_day": 2.8,
            },
            # This week (10-27..11-02): 6, 8, 4 -> 6.0; the week before (10-20..10-26): 3, 5 -> 4.0; rising.
            "cravings": {"avg_7d": 6.0, "avg_prev_7d": 4.0, "trend": "rising"},
            # Scheduled by the plan in force each day: 4 x 2 + 3 x 1 = 11; taken 11 - skipped - missing = 9.
            "adherence": {"taken": 9, "scheduled": 11, "rate_7d": 0.82},
        }


@pytest.mark.parametrize(("sex", "drinks", "over"), [
    ("male", "14.9", False), ("male", "15", True), ("female", "7.9", False), ("female", "8", True),
    ("unspecified", "8", True),
])  # fmt: skip
def test_a_week_with_nothing_logged_is_unknown_and_niaaa_follows_sex(register, sex, drinks, over):
    # Issue 19: missing days are missing; NIAAA weekly risk is 15 US drinks for men, 8 otherwise.
    with time_machine.travel(datetime(2026, 11, 2, 17, 0, tzinfo=UTC), tick=False):
        member = register(timezone="America/New_York", sex=sex, country="US")
        week = member.get("/me/summary").get_json()["week"]
        assert week == {
            "days_logged": 0, "standard_drinks": None, "weekly_limit": None, "heavy_days": None,
            "over_niaaa_weekly": None,
        }  # fmt: skip
        assert member.put("/drink-logs/2026-11-01", {"standard_drinks": drinks}).status_code == 201
        week = member.get("/me/summary").get_json()["week"]
        assert (week["days_logged"], week["over_niaaa_weekly"]) == (1, over)
