"""Several dispatchers at once: beat's tick asks for helpers when it has more than a batch of work;
batches and members are taken by one dispatcher each, so nothing is claimed twice and the cap holds."""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, time

from sqlalchemy import text

from companion import db
from companion.nudges import dispatch, dispatcher_tx, planning
from tests.nudges.conftest import LEASE, add_plan, make_member, nudges_of

#: 20:00 in New York (EST) on Tuesday 2026-12-01.
AT_20 = datetime(2026, 12, 2, 1, 0, tzinfo=UTC)


def _members_due_at_20(app, count: int) -> None:
    """`count` New York members whose log reminder is due at AT_20, made in two statements."""
    with app.app_context(), db.unit_of_work() as session:
        session.execute(
            text(
                "INSERT INTO users (id, email, role, created_at, session_epoch) "
                "SELECT gen_random_uuid(), 'par-' || i || '@example.org', 'member', now(), 0 "
                "FROM generate_series(1, :n) AS i"
            ),
            {"n": count},
        )
        session.execute(
            text(
                "INSERT INTO members (id, timezone, country, sex, goal_type, outcome_sharing, log_time, "
                "muted_kinds, enrolled_at, updated_at) "
                "SELECT id, 'America/New_York', 'US', 'unspecified', 'abstain', false, TIME '20:00', '{}', "
                "now(), now() FROM users WHERE email LIKE 'par-%'"
            )
        )


def test_a_busy_tick_asks_for_helpers_who_share_the_work_without_doubles(app):
    members = planning.PLAN_BATCH + dispatch.CLAIM_BATCH // 2  # more than one batch of work
    _members_due_at_20(app, members)
    handed_out: list[uuid.UUID] = []
    lock = threading.Lock()
    helper_ticks: list[dispatcher_tx.Tick] = []
    threads: list[threading.Thread] = []

    def send(ids) -> None:
        with lock:
            handed_out.extend(ids)

    def run_helper() -> None:
        with app.app_context():
            helper_ticks.append(dispatcher_tx.dispatch_due(now=lambda: AT_20, send=send, helper=True))
        db.session.remove()

    def ask(count: int) -> None:  # as the workers would: helpers start at once, beside the tick
        for _ in range(count):
            threads.append(threading.Thread(target=run_helper))
            threads[-1].start()

    with app.app_context():
        tick = dispatcher_tx.dispatch_due(now=lambda: AT_20, send=send, helpers=ask)
    for thread in threads:
        thread.join(timeout=120)

    assert (tick.slot, tick.helpers_asked) == (0, 1)  # COMPANION_NUDGE_DISPATCHERS is 2
    [helper] = helper_ticks
    assert helper.slot == 1
    assert tick.members_planned + helper.members_planned == members
    assert tick.claimed + helper.claimed == members
    assert Counter(handed_out).most_common(1)[0][1] == 1 and len(handed_out) == members
    statuses = Counter(n.status for n in nudges_of(app))
    assert statuses == {"sending": members}


def test_a_tick_whose_slot_is_held_leaves_the_work_to_the_dispatcher_holding_it(app):
    member_id = make_member(app, log_time=time(20, 0))
    with app.app_context(), db.unit_of_work():
        planning.track_new_members(AT_20)  # beat's previous tick tracked the new member, and is still
    engine = app.extensions["engine"]
    with engine.connect() as other:  # running
        slot_lock = {"ns": dispatcher_tx.DISPATCHER_LOCK_NAMESPACE}
        other.execute(text("SELECT pg_advisory_lock(:ns, 0)"), slot_lock)
        with app.app_context():
            assert dispatcher_tx.dispatch_due(now=lambda: AT_20, send=lambda ids: None).slot is None
        assert nudges_of(app, member_id) == []
        with app.app_context():  # a helper takes the next slot
            assert dispatcher_tx.dispatch_due(now=lambda: AT_20, send=lambda ids: None, helper=True).slot == 1
        other.execute(text("SELECT pg_advisory_unlock_all()"))
        other.commit()
    assert [n.status for n in nudges_of(app, member_id)] == ["sending"]


@contextmanager
def _claimed_elsewhere(app, member_id: uuid.UUID) -> Iterator[None]:
    """Another claim (the event path's, say) holds the member's claim lock meanwhile."""
    with app.extensions["engine"].connect() as other:
        other.execute(
            text("SELECT pg_advisory_xact_lock(:ns, hashtext(:m))"),
            {"ns": dispatch.MEMBER_CLAIM_LOCK_NAMESPACE, "m": str(member_id)},
        )
        yield
        other.rollback()


def test_a_member_another_claim_is_deciding_is_left_for_a_later_pass(app):
    """Two claims of one member's rows at once could each count the day's sends before the other
    commits and pass the cap together: the second leaves the member's rows until the first commits."""
    member_id = make_member(app, log_time=time(20, 0))
    add_plan(app, member_id, ["20:00"], start=date(2026, 12, 1))
    with app.app_context(), db.unit_of_work():
        planning.track_new_members(AT_20)
    with app.app_context(), db.unit_of_work():
        planning.plan_batch(AT_20)
    with _claimed_elsewhere(app, member_id), app.app_context(), db.unit_of_work():
        assert dispatch.claim_due(AT_20, lease=LEASE).decided == 0
    assert {n.status for n in nudges_of(app, member_id)} == {"pending"}
    with app.app_context(), db.unit_of_work():
        assert len(dispatch.claim_due(AT_20, lease=LEASE).send) == 2  # the dose and the log reminder


def test_rows_due_when_planned_are_decided_by_the_planner_under_the_member_lock(app):
    """The tick's planning decides the rows already due (new members, the tick after an outage) as the
    claim would: sent ones go in `sending`, leased; a member another claim holds keeps hers `pending`."""
    free = make_member(app, log_time=time(20, 0))
    held = make_member(app, log_time=time(20, 0))
    with app.app_context(), db.unit_of_work():
        planning.track_new_members(AT_20)
    with _claimed_elsewhere(app, held), app.app_context(), db.unit_of_work():
        planned = planning.plan_batch(AT_20, lease=LEASE)
    [sent] = nudges_of(app, free)
    assert planned.claimed.send == [sent.id]
    assert (sent.status, sent.next_attempt_at) == ("sending", AT_20 + LEASE)
    assert [n.status for n in nudges_of(app, held)] == ["pending"]
    with app.app_context(), db.unit_of_work():
        claimed = dispatch.claim_due(AT_20, lease=LEASE)
    assert claimed.send == [nudges_of(app, held)[0].id]


def test_a_row_planned_again_keeps_its_own_fate(app):
    """Planning a window again (a dispatcher that crashed after committing) decides the due row anew, but
    the member's key is taken: nothing is inserted or handed out a second time."""
    member_id = make_member(app, log_time=time(20, 0))
    with app.app_context(), db.unit_of_work():
        planning.track_new_members(AT_20)
    with app.app_context(), db.unit_of_work():
        first = planning.plan_batch(AT_20, lease=LEASE)
    with app.app_context(), db.unit_of_work() as session:
        session.execute(text("UPDATE nudge_planning SET planned_until = :t"), {"t": AT_20})
    with app.app_context(), db.unit_of_work():
        again = planning.plan_batch(AT_20, lease=LEASE)
    assert len(first.claimed.send) == 1
    assert (again.members, again.inserted, again.claimed.send) == (1, 0, [])
    assert [n.id for n in nudges_of(app, member_id)] == first.claimed.send
