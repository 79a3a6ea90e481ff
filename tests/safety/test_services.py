"""companion/safety/services.py against real PostgreSQL: flags upserted once, updated by new evidence,
re-opened only on new evidence, routed to the coach or the admins' queue, the sweep's members."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from companion import db
from companion.safety import escalation, queue, services
from companion.safety.models import Flag
from tests.conftest import Api
from tests.safety import helpers

NY = ZoneInfo("America/New_York")
#: 2026-11-20, 21:00 in New York.
NOW = datetime(2026, 11, 21, 2, 0, tzinfo=UTC)
TODAY = date(2026, 11, 20)
DAY = timedelta(days=1)


def at(day: date, hhmm: str) -> datetime:
    return datetime.combine(day, time.fromisoformat(hhmm), tzinfo=NY)


class Person:
    """A member with a plan (08:00 and 20:00; naltrexone unless said) that started ten days ago."""

    def __init__(
        self,
        app,
        client,
        *,
        coach_email: str | None,
        admin_email: str,
        plan: bool = True,
        medication: str = "naltrexone",
    ):
        self.app, self.client = app, client
        with helpers.travel(NOW - 30 * DAY):
            self.id, self.email = helpers.new_member(app, client, timezone="America/New_York")
            if coach_email:
                helpers.assign(app, self.email, coach_email)
        self.plan_id = None
        if plan:
            body = {"medication": medication, "dose_mg": 10, "times": ["08:00", "20:00"]}
            self.plan_id = helpers.create_plan(
                app, coach_email or admin_email, self.id, body, now=NOW - 10 * DAY
            )

    def api(self) -> Api:
        return helpers.api_for(self.app, self.client, self.id)

    def dose(self, day: date, hhmm: str = "08:00", *effects: tuple[str, str], status: str = "taken") -> Any:
        slot = at(day, hhmm)
        body: dict[str, Any] = {
            "id": str(uuid.uuid4()),
            "plan_id": self.plan_id,
            "scheduled_for": slot.isoformat(),
            "status": status,
            "side_effects": [{"code": c, "severity": s} for c, s in effects],
        }
        if status == "taken":
            body["taken_at"] = slot.isoformat()
        with helpers.travel(max(slot + timedelta(minutes=5), NOW - 30 * DAY)):
            r = self.api().post("/medication-checkins", body)
        assert r.status_code == 201, r.get_json()
        return r.get_json()

    def take_all(self, days: range) -> None:
        """Every dose of those days ago, taken (today's only when due)."""
        for ago in days:
            for hhmm in ("08:00", "20:00"):
                if at(TODAY - ago * DAY, hhmm) <= NOW:
                    self.dose(TODAY - ago * DAY, hhmm)

    def log(self, day: date, drinks: str = "0") -> None:
        when = at(day, "22:00")
        with helpers.travel(min(when, NOW) if day <= TODAY else when):
            r = self.api().put(f"/drink-logs/{day}", {"standard_drinks": drinks})
        assert r.status_code in (200, 201), r.get_json()


@pytest.fixture
def team(app):
    with helpers.travel(NOW - 60 * DAY):
        coach = helpers.new_staff(app, "coach")
        admins = [helpers.new_staff(app, "admin"), helpers.new_staff(app, "admin")]
    return {"coach": coach, "admins": admins}


@pytest.fixture
def person(app, client, team):
    return Person(app, client, coach_email=team["coach"][1], admin_email=team["admins"][0][1])


def scan(app, member_id, now: datetime = NOW) -> services.ScanResult:
    with app.app_context(), db.unit_of_work():
        return services.scan_member(member_id, now=now)


def resolve(app, flag_id, actor_id, now: datetime = NOW) -> None:
    with app.app_context(), db.unit_of_work() as session:
        from companion.accounts.models import User

        queue.resolve(session.get(User, actor_id), flag_id, "Called the member.", now=now)


def test_a_finding_opens_one_flag_and_a_scan_again_changes_nothing(app, person, team):
    person.dose(TODAY, "08:00", ("nausea", "severe"))
    first = scan(app, person.id)
    assert (first.opened, first.updated, first.alerts) == (1, 0, 1)
    [flag] = helpers.flags_of(app, person.id)
    assert (flag.rule, flag.tier, flag.status, flag.rule_version) == ("severe_side_effect", 3, "open", 1)
    assert flag.assigned_coach_id == team["coach"][0]
    assert flag.first_seen == flag.last_seen == TODAY and flag.symptoms == ["nausea"]
    assert flag.medications == ["naltrexone"] and flag.evidence[0].startswith("side_effect:")
    # The coach is told on every channel: the inbox entry is delivered by being written.
    sent = helpers.notifications(app)
    assert {(n.recipient_id, n.channel, n.kind) for n in sent} == {
        (team["coach"][0], "inbox", "urgent_flag"),
        (team["coach"][0], "log", "urgent_flag"),
    }
    assert [n.sent_at is not None for n in sent] == [True, False]

    for _ in range(2):
        again = scan(app, person.id)
        assert (again.opened, again.updated, again.alerts) == (0, 0, 0)
    [same] = helpers.flags_of(app, person.id)
    assert (same.id, same.updated_at, same.evidence) == (flag.id, flag.updated_at, flag.evidence)
    assert len(helpers.alerts_of(app, person.id)) == 1 and len(helpers.notifications(app)) == 2


def test_new_evidence_updates_the_open_flag_and_alerts_once_a_day(app, person):
    person.dose(TODAY - DAY, "08:00", ("nausea", "severe"))
    scan(app, person.id, NOW - DAY)
    [flag] = helpers.flags_of(app, person.id)
    person.dose(TODAY, "08:00", ("headache", "severe"))
    person.dose(TODAY, "20:00", ("dizziness", "severe"))
    result = scan(app, person.id)
    assert (result.opened, result.updated, result.alerts) == (0, 1, 1)  # a new day: one alert
    [updated] = helpers.flags_of(app, person.id)
    assert updated.id == flag.id and len(updated.evidence) == 3
    assert (updated.first_seen, updated.last_seen) == (TODAY - DAY, TODAY)
    assert updated.symptoms == ["dizziness", "headache", "nausea"] and updated.updated_at == NOW
    # More evidence the same day updates the flag, and alerts no one again.
    person.dose(TODAY - 2 * DAY, "20:00", ("fatigue", "severe"))
    result = scan(app, person.id)
    assert (result.updated, result.alerts) == (1, 0)
    assert [a.day for a in helpers.alerts_of(app, person.id)] == [TODAY - DAY, TODAY]
    assert [a.reason for a in helpers.alerts_of(app, person.id)] == ["opened", "new_evidence"]


def test_an_acknowledged_flag_takes_new_evidence_and_stays_acknowledged(app, person, team):
    person.dose(TODAY - DAY, "08:00", ("nausea", "severe"))
    scan(app, person.id, NOW - DAY)
    [flag] = helpers.flags_of(app, person.id)
    with app.app_context(), db.unit_of_work() as session:
        from companion.accounts.models import User

        queue.acknowledge(session.get(User, team["coach"][0]), flag.id, now=NOW - DAY)
    person.dose(TODAY, "08:00", ("nausea", "severe"))
    scan(app, person.id)
    [updated] = helpers.flags_of(app, person.id)
    assert updated.status == "acknowledged" and len(updated.evidence) == 2


def test_a_resolved_flag_reopens_as_a_new_flag_only_on_new_evidence(app, person, team):
    person.dose(TODAY - DAY, "08:00", ("nausea", "severe"))
    scan(app, person.id, NOW - DAY)
    [flag] = helpers.flags_of(app, person.id)
    resolve(app, flag.id, team["coach"][0], NOW - DAY)
    # The same evidence, seen again by every later scan: nothing opens.
    for now in (NOW - DAY, NOW):
        assert scan(app, person.id, now).opened == 0
    assert [f.status for f in helpers.flags_of(app, person.id)] == ["resolved"]
    # A new report: a new flag, with the whole picture; the resolved one stays resolved.
    person.dose(TODAY, "08:00", ("nausea", "severe"))
    result = scan(app, person.id)
    assert (result.opened, result.alerts) == (1, 1)
    old, new = sorted(helpers.flags_of(app, person.id), key=lambda f: f.created_at)
    assert (old.id, old.status, old.evidence) == (flag.id, "resolved", flag.evidence)
    assert new.status == "open" and set(old.evidence) < set(new.evidence) and len(new.evidence) == 2
    assert scan(app, person.id).opened == 0


def test_no_coach_routes_to_the_admins_queue_and_tells_every_admin(app, client, team):
    orphan = Person(app, client, coach_email=None, admin_email=team["admins"][0][1], medication="baclofen")
    orphan.take_all(range(10, 1, -1))
    orphan.dose(TODAY - DAY, "08:00", status="skipped")
    orphan.dose(TODAY - DAY, "20:00", status="skipped")
    orphan.dose(TODAY, "08:00", ("seizure", "moderate"), status="skipped")
    scan(app, orphan.id)
    flags = helpers.flags_of(app, orphan.id)
    assert {f.rule for f in flags} == {"withdrawal_risk"}
    assert all(f.assigned_coach_id is None for f in flags)
    [alert] = helpers.alerts_of(app, orphan.id)
    assert alert.recipient_id is None
    admins = {a for a, _ in team["admins"]}
    assert {(n.recipient_id, n.channel) for n in helpers.notifications(app)} == {
        (a, c) for a in admins for c in ("inbox", "log")
    }
    # Once the member has a coach, the next scan routes the flag to them.
    helpers.assign(app, orphan.email, team["coach"][1])
    orphan.dose(TODAY, "20:00", status="skipped")
    scan(app, orphan.id)
    [flag] = helpers.flags_of(app, orphan.id)
    assert flag.assigned_coach_id == team["coach"][0]


def test_disengagement_cites_the_day_absence_began_and_reopens_only_after_a_return(app, client, team):
    quiet = Person(app, client, coach_email=team["coach"][1], admin_email="-", plan=False)
    for ago in range(20, 6, -1):
        quiet.log(TODAY - ago * DAY)
    scan(app, quiet.id)
    [flag] = helpers.flags_of(app, quiet.id)
    assert flag.rule == "disengagement" and flag.tier == 1
    assert flag.evidence == [f"no_entry_since:{TODAY - 6 * DAY}"]
    assert helpers.alerts_of(app, quiet.id) == []  # info: the queue, no alert
    resolve(app, flag.id, team["coach"][0])
    assert scan(app, quiet.id, NOW + 3 * DAY).opened == 0  # still away: the same absence
    quiet.log(TODAY + 4 * DAY)  # back, then quiet again
    assert scan(app, quiet.id, NOW + 4 * DAY).opened == 0
    assert scan(app, quiet.id, NOW + 9 * DAY).opened == 1
    new = [f for f in helpers.flags_of(app, quiet.id) if f.status == "open"]
    assert [f.evidence for f in new] == [[f"no_entry_since:{TODAY + 5 * DAY}"]]


def test_concurrent_scans_of_one_member_write_one_flag_and_one_alert(app, person):
    person.dose(TODAY, "08:00", ("nausea", "severe"))
    barrier = threading.Barrier(3)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            with app.app_context():
                barrier.wait()
                with db.unit_of_work():
                    services.scan_member(person.id, now=NOW)
                db.session.remove()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(helpers.flags_of(app, person.id)) == 1 and len(helpers.alerts_of(app, person.id)) == 1


def test_a_batch_scans_many_members_in_one_go(app, client, team):
    people = [
        Person(app, client, coach_email=team["coach"][1], admin_email="-", medication="baclofen")
        for _ in range(3)
    ]
    people[0].take_all(range(10, -1, -1))
    people[1].take_all(range(10, 2, -1))  # stopped two days ago: withdrawal risk
    people[2].take_all(range(10, -1, -1))
    with app.app_context(), db.unit_of_work():
        result = services.scan_members([p.id for p in people] + [uuid.uuid4()], now=NOW)
    assert result.members == 3  # an unknown (erased) member is skipped
    assert [len(helpers.flags_of(app, p.id)) for p in people] == [0, 1, 0]


def candidates(app, now: datetime) -> list[uuid.UUID]:
    with app.app_context():
        found = services.sweep_candidates(now=now)
        db.session.remove()
    assert found == sorted(found)
    return found


def test_the_sweep_visits_only_members_with_something_to_check(app, client, team):
    admin = team["admins"][0][1]
    # Baclofen at 08:00 and 20:00 for ten days, never checked in (its withdrawal flag opens below).
    on_baclofen = Person(app, client, coach_email=None, admin_email=admin, medication="baclofen")
    logging = Person(app, client, coach_email=None, admin_email=admin, plan=False)
    logging.log(TODAY - 3 * DAY)
    long_gone = Person(app, client, coach_email=None, admin_email=admin, plan=False)
    long_gone.log(TODAY - 25 * DAY)
    never = Person(app, client, coach_email=None, admin_email=admin, plan=False)  # enrolled 30 days ago
    with helpers.travel(NOW - 2 * DAY):
        newcomer, _ = helpers.new_member(app, client)  # enrolled on the 18th, nothing entered yet
    everyone = sorted([on_baclofen.id, logging.id, long_gone.id, never.id, newcomer])

    # Never scanned, or asked for a scan by a write: the first sweep visits everyone once.
    assert candidates(app, NOW) == everyone
    with app.app_context(), db.unit_of_work():
        services.scan_members(everyone, now=NOW)
    assert [f.rule for f in helpers.flags_of(app, on_baclofen.id)] == ["disengagement", "withdrawal_risk"]

    # Then only when time alone can change a finding (domain.safety.next_check):
    assert candidates(app, NOW) == []
    assert candidates(app, at(TODAY, "22:59")) == []
    assert candidates(app, at(TODAY, "23:00")) == [on_baclofen.id]  # 20:00 dose, 3 h late: more evidence
    next_day = at(TODAY + DAY, "12:00")
    assert candidates(app, next_day) == [on_baclofen.id]
    # The last log on the 17th: five days without an entry at midnight on the 22nd.
    assert logging.id not in candidates(app, at(TODAY + 1 * DAY, "23:59"))
    assert logging.id in candidates(app, at(TODAY + 2 * DAY, "00:00"))
    assert newcomer not in candidates(app, at(TODAY + 2 * DAY, "23:59"))
    assert newcomer in candidates(app, at(TODAY + 3 * DAY, "00:00"))
    # Quiet for longer than the lookback (long_gone) or since enrolling a month ago (never): nothing
    # left that time could change, so never visited again...
    later = candidates(app, at(TODAY + 30 * DAY, "12:00"))
    assert long_gone.id not in later and never.id not in later
    # ... until they write: the request is a row first, so a lost scan message is caught up.
    long_gone.log(TODAY)
    assert candidates(app, NOW) == [long_gone.id]
    assert [len(b) for b in services.batches(list(range(1201)), 500)] == [500, 500, 201]


def test_escalation_is_set_once_and_tells_every_admin_once(app, person, team):
    person.dose(TODAY, "08:00", ("nausea", "severe"))
    scan(app, person.id)
    with app.app_context(), db.unit_of_work():
        assert escalation.escalate_overdue(now=NOW + timedelta(hours=1, minutes=59)) == 0
    for _ in range(2):
        with app.app_context(), db.unit_of_work():
            escalated = escalation.escalate_overdue(now=NOW + timedelta(hours=2))
    assert escalated == 0  # the second run found nothing left to do
    [flag] = helpers.flags_of(app, person.id)
    assert flag.escalated_at == NOW + timedelta(hours=2)
    escalations = [n for n in helpers.notifications(app) if n.kind == "escalation"]
    assert sorted((n.recipient_id, n.channel) for n in escalations) == sorted(
        (a, c) for a, _ in team["admins"] for c in ("inbox", "log")
    )


def test_delivery_hands_each_waiting_notification_to_its_channel_once(app, person, caplog):
    person.dose(TODAY, "08:00", ("nausea", "severe"))
    scan(app, person.id)
    with caplog.at_level("INFO", logger="companion.safety.channels"):
        for _ in range(2):
            with app.app_context(), db.unit_of_work():
                delivered = escalation.deliver_pending(now=NOW)
    assert delivered == 0
    logged = [r for r in caplog.records if r.name == "companion.safety.channels"]
    assert [r.getMessage() for r in logged] == ["staff notification"]
    assert all(n.sent_at is not None for n in helpers.notifications(app))


def test_flag_rows_enforce_one_unresolved_flag_per_member_and_rule(app, person):
    person.dose(TODAY, "08:00", ("nausea", "severe"))
    scan(app, person.id)
    [flag] = helpers.flags_of(app, person.id)
    from sqlalchemy.exc import IntegrityError

    with pytest.raises(IntegrityError), app.app_context(), db.unit_of_work() as session:
        session.add(
            Flag(
                member_id=person.id,
                rule=flag.rule,
                rule_version=1,
                tier=3,
                status="acknowledged",
                evidence=["x"],
                summary="s",
                first_seen=TODAY,
                last_seen=TODAY,
            )
        )
        session.flush()


def test_a_channel_that_fails_leaves_its_notification_for_the_next_run(app, person, monkeypatch):
    from companion.safety import channels

    person.dose(TODAY, "08:00", ("nausea", "severe"))
    scan(app, person.id)

    def down(notification):
        raise TimeoutError("provider down")

    with monkeypatch.context() as patched:
        patched.setattr(channels.CHANNELS["log"], "send", down)
        with app.app_context(), db.unit_of_work():
            assert escalation.deliver_pending(now=NOW) == 0
    assert [n.sent_at for n in helpers.notifications(app) if n.channel == "log"] == [None]
    with app.app_context(), db.unit_of_work():
        assert escalation.deliver_pending(now=NOW + DAY) == 1


def test_a_report_entered_late_is_loaded_and_its_flag_says_so(app, person):
    # Issue 19: a check-in dated eight days ago, entered now, with a liver sign (naltrexone).
    slot = at(TODAY - 8 * DAY, "20:00")
    body = {
        "id": str(uuid.uuid4()),
        "plan_id": person.plan_id,
        "scheduled_for": slot.isoformat(),
        "status": "taken",
        "taken_at": slot.isoformat(),
        "side_effects": [{"code": "dark_urine", "severity": "mild"}],
    }
    with helpers.travel(NOW):
        assert person.api().post("/medication-checkins", body).status_code == 201
    scan(app, person.id)
    [flag] = helpers.flags_of(app, person.id)
    assert flag.rule == "liver_signs" and flag.first_seen == TODAY - 8 * DAY
    assert flag.summary.endswith("Reported late: Dark urine of 2026-11-12 entered on 2026-11-20.")


def test_the_doses_before_an_old_withdrawal_sign_are_loaded(app, client, team):
    # A sign 30 days ago, on a dose taken then: the check-ins of its days are loaded (not read as missed).
    person = Person(app, client, coach_email=team["coach"][1], admin_email=team["admins"][0][1], plan=False)
    body = {"medication": "baclofen", "dose_mg": 10, "times": ["08:00", "20:00"]}
    person.plan_id = helpers.create_plan(app, team["coach"][1], person.id, body, now=NOW - 29 * DAY)
    person.take_all([*range(0, 27), 28, 29])
    person.dose(TODAY - 27 * DAY, "08:00")
    with app.app_context():
        loaded = services.load_histories([person.id], now=NOW)[person.id].history
    assert {d.day for d in loaded.doses} >= {TODAY - n * DAY for n in range(10)}
    assert TODAY - 20 * DAY not in {d.day for d in loaded.doses}  # no sign near it: not read, not loaded
    person.dose(TODAY - 27 * DAY, "20:00", ("confusion", "mild"))
    with app.app_context():
        loaded = services.load_histories([person.id], now=NOW)[person.id].history
    days = {d.day for d in loaded.doses}
    assert {TODAY - 28 * DAY, TODAY - 27 * DAY} <= days and TODAY - 20 * DAY not in days
    scan(app, person.id)
    assert helpers.flags_of(app, person.id) == []  # every dose before the sign was taken
