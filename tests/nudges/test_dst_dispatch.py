"""A daily 02:30 reminder through the real dispatcher, across every 2026-2027 DST transition of the member
zones: delivered exactly once each local day, at the instant `localtime.local_to_utc` names (a time in a
spring-forward gap moves forward by the gap; a repeated time fires at its first occurrence). And a
member who changes zone (PATCH /me) gets the next reminder at the new local time, never a day twice.

The clock is moved with time_machine; the dispatcher reads it (`utcnow`) and runs at each reminder's
instant in every zone and half an hour after it (so windows are planned across each transition, and
a reminder at the wrong instant, or twice, would be seen), each tick planning, claiming and
delivering to the fake gateway as a worker would. Planning windows chain from tick to tick, so ticks
need not be every minute to plan every nudge exactly once.
"""

from __future__ import annotations

import uuid
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, time, timedelta

import pytest
import time_machine

from companion import db
from companion.domain import localtime
from companion.nudges import delivery_tx as delivery
from companion.nudges import dispatcher_tx
from companion.nudges.models import NudgePlanning
from tests.conftest import PASSWORD, Api
from tests.nudges.conftest import LEASE, add_device, add_plan, make_member, nudges_of

ZONES = ("America/New_York", "Europe/London", "Australia/Sydney", "Asia/Kolkata", "Pacific/Auckland")
#: Local dates of the 2026-2027 transitions (tzdata): New York, London, Sydney and Auckland.
TRANSITIONS = sorted({
    date(2026, 3, 8), date(2026, 11, 1), date(2027, 3, 14), date(2027, 11, 7),      # New York
    date(2026, 3, 29), date(2026, 10, 25), date(2027, 3, 28), date(2027, 10, 31),   # London
    date(2026, 4, 5), date(2026, 10, 4), date(2027, 4, 4), date(2027, 10, 3),       # Sydney
    date(2026, 9, 27), date(2027, 9, 26),                                           # Auckland (+ Apr)
})  # fmt: skip
STEP = timedelta(minutes=30)
SLOT = time(2, 30)


def instants(start: datetime, end: datetime, zones) -> list[datetime]:
    """Tick times in [start, end): each zone's 02:30 of each local day, and STEP after it."""
    found = {start}
    day = start.date() - timedelta(days=2)
    while day <= end.date() + timedelta(days=2):
        for zone in zones:
            due = localtime.local_to_utc(day, SLOT, zone)
            found.update((due, due + STEP))
        day += timedelta(days=1)
    return sorted(t for t in found if start <= t < end)


def run_ticks(app, channels, start: datetime, end: datetime, zones) -> None:
    """The dispatcher at each of `instants`, on the moved clock, delivering inline."""
    for instant in instants(start, end, zones):
        with time_machine.travel(instant, tick=False), app.app_context():
            dispatcher_tx.dispatch_due(send=lambda ids: delivery.deliver(ids, channels=channels, lease=LEASE))


def test_a_0230_reminder_fires_once_each_local_day_across_every_transition(app, channels, gateway):
    reminders: dict[uuid.UUID, tuple[str, str]] = {}
    for zone in ZONES:
        log_member = make_member(app, timezone=zone, log_time=SLOT)
        dose_member = make_member(app, timezone=zone, log_time=time(12, 0))
        add_plan(app, dose_member, ["02:30"], start=date(2026, 1, 1))
        for member_id, kind in ((log_member, "log_reminder"), (dose_member, "dose_reminder")):
            add_device(app, member_id)
            reminders[member_id] = (zone, kind)
    expected: dict[uuid.UUID, set[date]] = defaultdict(set)
    for day in TRANSITIONS:
        start = datetime.combine(day - timedelta(days=1), time(0, 0), tzinfo=UTC)
        end = start + timedelta(days=3)
        with app.app_context(), db.unit_of_work() as session:  # the dispatcher ran until `start`
            session.execute(NudgePlanning.__table__.delete())
            session.execute(
                NudgePlanning.__table__.insert(),
                [{"member_id": member_id, "planned_until": start} for member_id in reminders],
            )
        run_ticks(app, channels, start, end, ZONES)
        for member_id, (zone, _) in reminders.items():
            for offset in range(-1, 4):
                local_day = day + timedelta(days=offset)
                due = localtime.local_to_utc(local_day, SLOT, zone)
                if start <= due < end:
                    expected[member_id].add(local_day)

    sent = [n for n in nudges_of(app) if n.status == "sent"]
    per_day: Counter[tuple[uuid.UUID, date]] = Counter()
    for nudge in sent:
        zone, kind = reminders[nudge.member_id]
        if nudge.kind != kind:
            continue
        assert nudge.local_slot == SLOT
        due = localtime.local_to_utc(nudge.local_date, SLOT, zone)
        assert nudge.due_at == due, (zone, nudge.local_date)
        assert due <= nudge.sent_at < due + STEP, (zone, nudge.local_date, nudge.sent_at)
        per_day[(nudge.member_id, nudge.local_date)] += 1
    for member_id, days in expected.items():
        zone, kind = reminders[member_id]
        got = {day for (m, day) in per_day if m == member_id}
        assert got == days, (zone, kind, sorted(days ^ got))
    assert set(per_day.values()) == {1}
    # The gateway saw one push per reminder, never two.
    counts = gateway.per_nudge()
    assert all(counts[str(n.id)] == 1 for n in sent), counts.most_common(3)
    assert len(sent) >= sum(len(days) for days in expected.values()) > 2 * len(ZONES) * len(TRANSITIONS) * 2


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("America/New_York", "Europe/London"),  # east, 5 hours
        ("Europe/London", "America/New_York"),  # west, 5 hours
        ("America/New_York", "Asia/Kolkata"),  # east across the date line of the day
        ("Pacific/Auckland", "America/New_York"),  # west, 18 hours: the same local day comes again
    ],
)
def test_after_a_zone_change_the_next_reminder_is_at_the_new_local_time(
    app, client, channels, register, before, after
):
    day = date(2026, 12, 7)
    with time_machine.travel(datetime(2026, 12, 5, 12, 0, tzinfo=UTC), tick=False):
        member = register(timezone=before)
        assert member.patch("/me", {"reminders": {"log_time": "02:30"}}).status_code == 200
    member_id = uuid.UUID(member.body["member"]["id"])
    add_device(app, member_id)
    switch = localtime.local_to_utc(day, time(12, 0), before)
    run_ticks(app, channels, datetime(2026, 12, 6, 0, 0, tzinfo=UTC), switch, (before, after))
    with time_machine.travel(switch, tick=False):
        signed_in = Api(client).post(
            "/auth/token", {"email": member.body["member"]["email"], "password": PASSWORD}
        )
        member.token = signed_in.get_json()["access_token"]
        response = member.patch("/me", {"timezone": after})
        assert response.status_code == 200, response.get_json()
    run_ticks(app, channels, switch, switch + timedelta(days=3), (before, after))

    sent = sorted((n for n in nudges_of(app, member_id) if n.kind == "log_reminder" and n.status == "sent"),
                  key=lambda n: n.sent_at)  # fmt: skip
    per_day = Counter(n.local_date for n in sent)
    assert set(per_day.values()) == {1}, per_day  # never a local day twice
    after_switch = [n for n in sent if n.sent_at > switch]
    first = after_switch[0]
    assert first.zone == after and first.due_at == localtime.local_to_utc(first.local_date, SLOT, after)
    assert first.due_at <= first.sent_at < first.due_at + STEP
    # ... and each day after it, at 02:30 there.
    for nudge in after_switch:
        assert localtime.local_to_utc(nudge.local_date, SLOT, after) == nudge.due_at
    assert [n.local_date for n in after_switch] == sorted({n.local_date for n in after_switch})
