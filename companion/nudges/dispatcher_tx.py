"""The nudge dispatcher's tick; it owns its transactions (docs/architecture.md, "Who commits").

The dispatcher (`dispatch_due`, run by beat every minute) plans, claims and hands out batches:
planning.py inserts the rows of what falls due within the next hour, dispatch.py decides each due
row, delivery_tx.py pushes the claimed ones (in `nudges.deliver` tasks, sent by name once the claim has
committed). A task lost with Redis leaves its rows `sending` with a lease; the next tick after the
lease sends them to a worker again. Each batch commits on its own (`unit_of_work`), so a tick that
stops half-way keeps what it did; planning and claiming commit without waiting for the disk."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import func, select, text

from companion import jobs
from companion.db import session, unit_of_work, utcnow
from companion.domain.nudges import DEFAULT_POLICY, NudgePolicy
from companion.notifications import Channels, channels_for
from companion.nudges import delivery_tx, dispatch, planning

#: Nudge ids per `nudges.deliver` task.
DELIVER_BATCH = 1000


#: A tick stops starting new batches after this long (the next tick, a minute later, goes on).
TICK_BUDGET = timedelta(seconds=45)


#: First key of the advisory locks of the dispatcher slots (one per dispatcher running at once).
DISPATCHER_LOCK_NAMESPACE = 71_004


def lease() -> timedelta:
    return timedelta(seconds=int(current_app.config["COMPANION_NUDGE_SEND_LEASE_SECONDS"]))


def channels() -> Channels:
    return channels_for(current_app.config)


def send_deliveries(nudge_ids: Sequence[uuid.UUID]) -> None:
    """Hand claimed nudges to the workers, DELIVER_BATCH per task. A send that fails leaves them to the
    lease: the dispatcher hands them out again."""
    for start in range(0, len(nudge_ids), DELIVER_BATCH):
        chunk = [str(i) for i in nudge_ids[start : start + DELIVER_BATCH]]
        jobs.send_now(jobs.DELIVER_NUDGES, nudge_ids=chunk, claimed=True)


@dataclass
class Tick:
    """What one dispatcher tick did (counts only: it is logged)."""

    members_planned: int = 0
    planned: int = 0
    claimed: int = 0
    held: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    resent: int = 0
    #: The dispatcher slot this tick held (0: beat's), None when every slot it may take was busy.
    slot: int | None = 0
    helpers_asked: int = 0


def dispatchers() -> int:
    return max(1, int(current_app.config["COMPANION_NUDGE_DISPATCHERS"]))


def ask_helpers(count: int) -> None:
    """Ask for `count` more dispatchers for this tick (tasks; a lost one only means less parallelism)."""
    for _ in range(count):
        jobs.send_now(jobs.DISPATCH_NUDGES, helper=True)


@contextmanager
def dispatcher_slot(slots: Sequence[int]) -> Iterator[int | None]:
    """Hold the first free slot among `slots` (a session advisory lock on a connection of its own, so a
    killed worker frees it at once) for the tick; None when all are held."""
    with session.get_bind().connect() as connection:
        locks = connection.execution_options(isolation_level="AUTOCOMMIT")
        for slot in slots:
            if locks.execute(select(func.pg_try_advisory_lock(DISPATCHER_LOCK_NAMESPACE, slot))).scalar_one():
                try:
                    yield slot
                finally:
                    locks.execute(select(func.pg_advisory_unlock(DISPATCHER_LOCK_NAMESPACE, slot)))
                return
        yield None


def _commit_without_waiting_for_disk() -> None:
    """This transaction's COMMIT returns before its WAL reaches the disk. Only for planning and claiming:
    a crash of PostgreSQL can lose the last such commits, which the next tick plans or claims again (keys
    are unique, leases expire), and no push leaves before its `deliveries` row is committed with the
    usual wait, which writes all earlier WAL to disk first."""
    session.execute(text("SET LOCAL synchronous_commit = off"))


def dispatch_due(
    *,
    now: Callable[[], datetime] = utcnow,
    send: Callable[[Sequence[uuid.UUID]], None] = send_deliveries,
    budget: timedelta = TICK_BUDGET,
    policy: NudgePolicy = DEFAULT_POLICY,
    helper: bool = False,
    helpers: Callable[[int], None] = ask_helpers,
) -> Tick:
    """One dispatcher tick: plan the members whose window needs it, claim the due rows, hand them out.

    Beat's tick holds dispatcher slot 0; when its first batch is full it asks for helpers, which take
    slots 1..COMPANION_NUDGE_DISPATCHERS-1 and do the same loop beside it (batches are taken FOR UPDATE
    SKIP LOCKED, members one claim at a time). A tick that finds its slots held returns at once: the
    running dispatchers are doing the work.
    """
    deadline = time.monotonic() + budget.total_seconds()
    with dispatcher_slot(range(1, dispatchers()) if helper else (0,)) as slot:
        if slot is None:
            return Tick(slot=None)
        tick = Tick(slot=slot)
        if not helper:
            with unit_of_work():
                planning.track_new_members(now())
        _dispatch_loop(tick, deadline, now=now, send=send, policy=policy, helpers=None if helper else helpers)
        return tick


def _dispatch_loop(
    tick: Tick,
    deadline: float,
    *,
    now: Callable[[], datetime],
    send: Callable[[Sequence[uuid.UUID]], None],
    policy: NudgePolicy,
    helpers: Callable[[int], None] | None,
) -> None:
    held_for = lease()
    # A batch planned, then a batch claimed and handed out: the workers push while the next batch is
    # planned (planning every member first left them idle; a member is planned whole in one batch, so
    # a claim never sees part of a member's rows).
    planning_left = True
    planned = planning.Planned(0, 0)
    while time.monotonic() < deadline:
        if planning_left:
            with unit_of_work():
                _commit_without_waiting_for_disk()
                planned = planning.plan_batch(now(), policy=policy, lease=held_for)
            send(planned.claimed.send)  # rows already due when planned: decided and leased with them
            tick.members_planned += planned.members
            tick.planned += planned.inserted
            _count(tick, planned.claimed)
            planning_left = planned.members > 0
        with unit_of_work():
            _commit_without_waiting_for_disk()
            claimed = dispatch.claim_due(now(), lease=held_for, policy=policy)
        send(claimed.send)
        _count(tick, claimed)
        more_than_a_batch = planned.members >= planning.PLAN_BATCH or claimed.decided >= dispatch.CLAIM_BATCH
        if helpers is not None and more_than_a_batch:
            tick.helpers_asked = dispatchers() - 1
            if tick.helpers_asked:
                helpers(tick.helpers_asked)
            helpers = None  # once a tick
        if not planning_left and not claimed.decided:
            break
    while time.monotonic() < deadline:
        with unit_of_work():
            stale = dispatch.claim_stale(now(), lease=held_for)
        send(stale)
        tick.resent += len(stale)
        if not stale:
            break


def _count(tick: Tick, claimed: dispatch.Claimed) -> None:
    tick.claimed += len(claimed.send)
    tick.held += claimed.held
    for reason, count in claimed.skipped.items():
        tick.skipped[reason] = tick.skipped.get(reason, 0) + count


def deliver(
    nudge_ids: Sequence[uuid.UUID], *, now: Callable[[], datetime] = utcnow, claimed: bool = False
) -> delivery_tx.Delivered:
    return delivery_tx.deliver(nudge_ids, channels=channels(), lease=lease(), now=now, claimed=claimed)
