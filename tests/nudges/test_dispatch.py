"""The dispatcher against the real database: set-based planning, claiming and the delivery policies."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta

import time_machine
from sqlalchemy import event, text

from companion import db
from companion.medications.models import MedicationCheckin
from companion.nudges import dispatch, planning
from companion.nudges.models import NudgePlanning
from companion.sync_seq import stamp
from tests.nudges.conftest import LEASE, add_device, add_drink_log, add_plan, make_member, nudges_of

#: 20:00 in New York (EST) on Tuesday 2026-12-01.
DAY = date(2026, 12, 1)
LOG_TIME = datetime(2026, 12, 2, 1, 0, tzinfo=UTC)


def at(hhmm: str, day: date = DAY) -> datetime:
    """A New York (EST, UTC-5) wall time as a UTC instant."""
    hours, minutes = map(int, hhmm.split(":"))
    return datetime(day.year, day.month, day.day, hours, minutes, tzinfo=UTC) + timedelta(hours=5)


def _count_statements(app):
    engine = app.extensions["engine"]
    seen: list[str] = []

    def record(conn, cursor, statement, *args):
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    return seen, lambda: event.remove(engine, "before_cursor_execute", record)


def _plan_all(app, now: datetime) -> planning.Planned:
    with app.app_context(), db.unit_of_work():
        planning.track_new_members(now)
    with app.app_context(), db.unit_of_work():
        return planning.plan_batch(now)


def test_planning_is_set_based_a_few_queries_for_any_number_of_members(app):
    def statements_for(members: int) -> tuple[int, int]:
        ids = [make_member(app, log_time=time(20, 0)) for _ in range(members)]
        for member_id in ids[::2]:
            add_plan(app, member_id, ["20:00", "20:30"], start=DAY)
            # Made the evening it is about, not at the real clock (the columns' default): a log made
            # REENGAGEMENT_AFTER_DAYS (3) or more days before DAY plans a re-engagement, so the rows
            # planned depended on the day the test ran (it passed up to 2026-11-28 only).
            eve = DAY - timedelta(days=1)
            add_drink_log(app, member_id, eve, made_at=at("21:00", eve))
        seen, stop = _count_statements(app)
        try:
            planned = _plan_all(app, at("19:30"))
        finally:
            stop()
        with app.app_context(), db.unit_of_work() as session:
            session.execute(text("TRUNCATE members, users CASCADE"))
        assert planned.members == members
        return len(seen), planned.inserted

    few, few_rows = statements_for(2)
    many, many_rows = statements_for(40)
    assert few == many <= 15, (few, many)
    # A log reminder each, and every other member's 20:00 dose. Not the 20:30 dose: the window planned at
    # 19:30 is [19:30, 20:30) (end = minute(now) + PLAN_AHEAD, exclusive), so 20:30 is the next window's.
    # The old expectation (two doses) held only because the drink log, stamped with the real clock, was
    # then at least REENGAGEMENT_AFTER_DAYS before DAY: its re-engagement row stood in for a second dose.
    assert (few_rows, many_rows) == (2 * 1 + 1 * 1, 40 + 20 * 1)


def test_planning_again_never_makes_a_second_row(app):
    member_id = make_member(app)
    _plan_all(app, at("19:30"))
    first = {n.dedupe_key: n.id for n in nudges_of(app, member_id)}
    assert list(first) == ["log_reminder:2026-12-01"]
    # The window planned again from earlier (a crash before the watermark moved) and overlapping.
    with app.app_context(), db.unit_of_work() as session:
        session.execute(NudgePlanning.__table__.update().values(planned_until=at("18:00")))
    _plan_all(app, at("19:40"))
    assert {n.dedupe_key: n.id for n in nudges_of(app, member_id)} == first


def test_a_log_reminder_goes_once_at_the_log_time(app, tick, gateway):
    member_id = make_member(app)
    token = add_device(app, member_id)
    assert tick(at("19:30")).claimed == 0
    assert tick(at("19:59")).claimed == 0
    report = tick(at("20:00"))
    assert (report.claimed, gateway.per_nudge_and_token()) == (1, {(str(nudges_of(app)[0].id), token): 1})
    assert tick(at("20:01")).claimed == tick(at("21:30")).claimed == 0
    [nudge] = nudges_of(app, member_id)
    assert (nudge.status, nudge.sent_at, nudge.kind) == ("sent", at("20:00"), "log_reminder")
    assert len(gateway.requests()) == 1


def test_a_day_already_logged_gets_no_log_reminder(app, tick, gateway):
    member_id = make_member(app)
    add_device(app, member_id)
    tick(at("19:30"))  # planned before the member logs
    add_drink_log(app, member_id, DAY)
    tick(at("20:00"))
    [nudge] = nudges_of(app, member_id)
    assert (nudge.status, nudge.skip_reason) == ("skipped", "done")
    assert gateway.requests() == []


def test_quiet_hours_hold_the_nudge_until_they_end(app, tick, gateway):
    member_id = make_member(app, quiet_start=time(19, 0), quiet_end=time(21, 0))
    add_device(app, member_id)
    assert tick(at("20:00")).held == 1
    [nudge] = nudges_of(app, member_id)
    assert (nudge.status, nudge.due_at) == ("pending", at("21:00"))
    assert tick(at("20:30")).claimed == 0
    assert tick(at("21:00")).claimed == 1
    assert len(gateway.requests()) == 1


def test_a_muted_kind_is_skipped(app, tick, gateway):
    member_id = make_member(app, muted_kinds=["log_reminder"])
    add_device(app, member_id)
    tick(at("20:00"))
    [nudge] = nudges_of(app, member_id)
    assert (nudge.status, nudge.skip_reason) == ("skipped", "muted")
    assert gateway.requests() == []


def test_the_daily_cap_counts_what_was_sent_on_the_local_day(app, tick, gateway):
    member_id = make_member(app, log_time=time(12, 30))
    add_device(app, member_id)
    add_plan(app, member_id, ["08:00", "10:00", "12:00", "12:30"], start=DAY)
    for hhmm in ("07:00", "08:00", "10:00", "12:00", "12:30"):
        tick(at(hhmm))
    outcomes = {
        f"{n.kind}@{n.local_slot.isoformat('minutes')}": (n.status, n.skip_reason)
        for n in nudges_of(app, member_id)
    }
    assert outcomes == {
        "dose_reminder@08:00": ("sent", None),
        "dose_reminder@10:00": ("sent", None),
        "dose_reminder@12:00": ("sent", None),
        "dose_reminder@12:30": ("sent", None),  # the dose goes first at the same minute (KIND_PRIORITY)
        "log_reminder@12:30": ("skipped", "cap"),
    }
    assert len(gateway.requests()) == 4


def test_a_checked_in_dose_gets_no_reminder_and_a_missed_one_expires_at_the_next(app, tick, gateway):
    member_id = make_member(app)
    add_device(app, member_id)
    plan_id = add_plan(app, member_id, ["08:00", "14:00"], start=DAY)
    tick(at("07:30"))
    with app.app_context(), db.unit_of_work() as session:
        checkin = MedicationCheckin(
            member_id=member_id, id=uuid.uuid4(), plan_id=plan_id, scheduled_for=at("08:00"),
            date=DAY, status="skipped",
        )  # fmt: skip
        stamp(checkin, None)
        session.add(checkin)
    tick(at("08:00"))
    # The 14:00 dose: the dispatcher is down from 13:00 until 08:30 the next day, past the next dose.
    tick(at("13:00"))
    tick(at("08:30", DAY + timedelta(days=1)))
    doses = {
        n.local_slot.isoformat("minutes"): (n.status, n.skip_reason)
        for n in nudges_of(app, member_id)
        if n.kind == "dose_reminder" and n.local_date == DAY
    }
    assert doses == {"08:00": ("skipped", "done"), "14:00": ("skipped", "expired")}


def test_claiming_skips_rows_another_dispatcher_holds(app):
    member_id = make_member(app)
    _plan_all(app, at("19:30"))
    engine = app.extensions["engine"]
    with engine.connect() as other:  # another dispatcher, mid-claim, holds the row's lock
        other.execute(text("SELECT id FROM nudges FOR UPDATE"))
        with app.app_context(), db.unit_of_work():
            assert dispatch.claim_due(at("20:00"), lease=LEASE).decided == 0
        other.rollback()
    with app.app_context(), db.unit_of_work():
        assert len(dispatch.claim_due(at("20:00"), lease=LEASE).send) == 1
    [nudge] = nudges_of(app, member_id)
    assert (nudge.status, nudge.next_attempt_at) == ("sending", at("20:00") + LEASE)


def test_a_delivery_task_lost_with_redis_is_handed_out_again_after_the_lease(app, tick, gateway):
    member_id = make_member(app)
    add_device(app, member_id)
    lost: list = []
    with app.app_context():
        from companion.nudges import dispatcher_tx

        dispatcher_tx.dispatch_due(now=lambda: at("20:00"), send=lost.extend)  # the task never arrives
    assert len(lost) == 1 and gateway.requests() == []
    assert tick(at("20:01")).resent == 0  # still leased
    report = tick(at("20:00") + LEASE)
    assert report.resent == 1
    assert gateway.per_nudge() == {str(lost[0]): 1}
    assert nudges_of(app, member_id)[0].status == "sent"


def test_a_new_plan_is_reminded_within_the_hour_already_planned(app, tick, gateway, staff):
    """The member was planned an hour ahead before the plan existed: creating it plans them again."""
    member_id = make_member(app)
    add_device(app, member_id)
    tick(at("07:40"))  # planned until 08:40, with no plan yet
    with time_machine.travel(at("07:50"), tick=False):
        admin = staff("admin")
        response = admin.post(
            f"/coach/members/{member_id}/medication-plans",
            {"medication": "naltrexone", "dose_mg": 50, "times": ["08:00"]},
        )
        assert response.status_code == 201, response.get_json()
    tick(at("07:51"))
    tick(at("08:00"))
    [nudge] = nudges_of(app, member_id)
    assert (nudge.kind, nudge.status, nudge.due_at) == ("dose_reminder", "sent", at("08:00"))
    assert gateway.per_nudge() == {str(nudge.id): 1}


def test_streaks_reengagement_and_weekly_summaries_come_from_the_members_records(app, tick, gateway):
    """The planner's set-based loads: drink logs (streaks, summaries), last entries, last re-engagement."""
    streaker = make_member(app)
    for back in range(1, 8):  # seven alcohol-free days ending yesterday, logged as they happened
        day = DAY - timedelta(days=back)
        add_drink_log(app, streaker, day, made_at=at("21:00", day))
    quiet = make_member(app)
    add_drink_log(app, quiet, DAY - timedelta(days=4), made_at=at("21:00", DAY - timedelta(days=4)))

    def kinds(member_id, day):
        return sorted(n.dedupe_key for n in nudges_of(app, member_id) if n.local_date == day)

    tick(at("20:00"))
    assert kinds(streaker, DAY) == ["log_reminder:2026-12-01", "streak:7"]
    assert kinds(quiet, DAY) == ["log_reminder:2026-12-01", "reengagement:2026-12-01"]
    sunday = date(2026, 12, 6)
    tick(at("19:00", sunday))
    tick(at("20:00", sunday))
    # The month's first Sunday: the monthly PACS reminder too (issue 19).
    assert kinds(streaker, sunday) == [
        "log_reminder:2026-12-06",
        "pacs_reminder:2026-12",
        "weekly_summary:2026-W49",
    ]
    assert kinds(quiet, sunday) == [
        "log_reminder:2026-12-06",
        "pacs_reminder:2026-12",
    ]  # re-engaged 5 days ago: not again yet
    assert {n.status for n in nudges_of(app) if n.local_date in (DAY, sunday)} == {"sent"}
