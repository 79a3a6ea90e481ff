"""Delivery: a claimed nudge reaches the inbox, and each of the member's active phones once. Owns its
transactions (docs/architecture.md, "Who commits"): a push is committed as leaving before it leaves.

`deliver(ids)` is what the `nudges.deliver` task runs:

1. Rows among `ids` still pending and due are claimed first (the event path: a coach message or a
   craving tip is delivered by its own task, without waiting for the next dispatcher tick). The
   dispatcher's batches say `claimed`: their rows left `pending` in the claim's commit, before the
   task was sent, so there is nothing to look for.
2. The task takes a session advisory lock per nudge on a connection of its own. A lock held means
   another live worker is delivering that nudge: it is left alone. A worker that dies loses its
   connection and so its locks, at once.
3. For each nudge and active device there is one `deliveries` row per send round. It is committed as
   `sending` before the request leaves; a later worker that finds a row still `sending` (its sender
   died mid-request) marks it `unknown` and never sends it again. So a killed worker never causes a
   second push; the push it had on the wire is the only one.
4. Pushes go out in groups of PUSH_CONCURRENCY, all of a group at once on the process's push event
   loop (`notifications.http1`), IN_FLIGHT_GROUPS groups in flight: one commit per group records its
   pushes as leaving and the answers of the group before.
5. A provider's answer decides what follows (DOMAIN.md): a dead token deactivates the device, a bad
   request is not retried, a rate limit or an outage is retried at `next_attempt_at` (backoff with
   jitter, Retry-After honoured, at least 60 s after a rate limit) by the dispatcher's `claim_stale`,
   at most MAX_PUSH_ATTEMPTS times and never after the nudge expires.
6. The nudge is `sent` once every push has an end and one was accepted (or the member has no phone:
   the inbox is the channel), `failed` when every phone refused it; `sent_at` is when the round first
   reached the inbox.
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, select, text, update

from companion.accounts.models import Device
from companion.db import session, unit_of_work, utcnow
from companion.db.sql import any_of, pg_array, records
from companion.domain.nudges import DEFAULT_POLICY, TEMPLATES, NudgePolicy
from companion.notifications import Channels, PushChannel, PushMessage, PushOutcome, PushResult
from companion.notifications.base import retry_delay
from companion.notifications.http1 import event_loop
from companion.nudges.dispatch import claim_due
from companion.nudges.models import Delivery, DeliveryStatus, Nudge, NudgeStatus

log = logging.getLogger(__name__)

#: Pushes per group: each group is recorded as leaving in one commit, then sent at once.
PUSH_CONCURRENCY = 200
#: Groups in flight at once per delivery task (so at most PUSH_CONCURRENCY x this pushes). One group of
#: 200 costs less CPU a push than two of 100 (one commit and three statements per 200 answers; the
#: 50,000 tick: 364-386 vs 374-397 us a nudge in all), with the same 200 connections per process; the
#: worker's other processes keep the cores busy while a task waits on its pushes.
IN_FLIGHT_GROUPS = 1
#: A push is tried at most this many times (ours).
MAX_PUSH_ATTEMPTS = 5


def delivery_lock_key(nudge_id: str) -> str:
    """SQL for the advisory lock that says "a live worker is delivering this nudge" (`nudge_id`: a SQL
    expression of its id): the id's first 64 bits, in PostgreSQL's one-bigint key space, apart from
    every (namespace, key) lock of ours. A 32-bit hash of the id let two nudges share a lock: with four
    tasks of 1,000 in flight, about one tick of 100,000 nudges in 15 had a nudge wait for its lease
    (the birthday bound; most likely what a bench run that ended with one row `sending` saw)."""
    return f"('x' || left(translate({nudge_id}::text, '-', ''), 16))::bit(64)::bigint"


_N = Nudge.__table__.c
_D = Delivery.__table__.c
FINAL = frozenset({DeliveryStatus.SENT, DeliveryStatus.FAILED, DeliveryStatus.UNKNOWN})


@dataclass
class Delivered:
    """What one `deliver` call did (ids and counts only: these are logged)."""

    nudges: int = 0
    locked_elsewhere: int = 0
    pushes: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    finished: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    #: (channel, status, provider error code) -> pushes, for the metrics
    by_channel: dict[tuple[str, str, str], int] = field(default_factory=lambda: defaultdict(int))


@dataclass(frozen=True, slots=True)
class _Work:
    nudge_id: uuid.UUID
    device_id: uuid.UUID
    send_round: int
    channel: PushChannel
    token: str
    message: PushMessage
    attempts: int
    expires_at: datetime | None
    new: bool


@dataclass(slots=True)
class _State:
    status: DeliveryStatus
    error: str | None = None
    next_attempt_at: datetime | None = None


def message_for(nudge_id: uuid.UUID, template: str, expires_at: datetime | None) -> PushMessage:
    title, body = TEMPLATES[template]
    expires = int(expires_at.timestamp()) if expires_at is not None else None
    return PushMessage(nudge_id=str(nudge_id), title=title, body=body, expires_epoch=expires)


def deliver(
    nudge_ids: Sequence[uuid.UUID],
    *,
    channels: Channels,
    lease: timedelta,
    now: Callable[[], datetime] = utcnow,
    rng: random.Random | None = None,
    policy: NudgePolicy = DEFAULT_POLICY,
    claimed: bool = False,
) -> Delivered:
    """Claim what is still pending among `nudge_ids` (unless the dispatcher has: `claimed`), then push
    every claimed one. Commits; idempotent."""
    ids = list(dict.fromkeys(nudge_ids))
    report = Delivered()
    if not ids:
        return report
    if not claimed:
        with unit_of_work():
            claim_due(now(), lease=lease, nudge_ids=ids, policy=policy)
    engine = session.get_bind()
    with engine.connect() as connection:
        locks = connection.execution_options(isolation_level="AUTOCOMMIT")
        owned = list(
            locks.execute(
                text(
                    "SELECT id FROM unnest(CAST(:ids AS uuid[])) AS id "
                    f"WHERE pg_try_advisory_lock({delivery_lock_key('id')})"
                ),
                {"ids": pg_array(ids)},
            ).scalars()
        )
        report.locked_elsewhere = len(ids) - len(owned)
        try:
            _deliver_owned(owned, channels=channels, now=now, rng=rng or random.Random(), report=report)
        finally:
            locks.execute(text("SELECT pg_advisory_unlock_all()"))
    return report


def _deliver_owned(
    ids: list[uuid.UUID],
    *,
    channels: Channels,
    now: Callable[[], datetime],
    rng: random.Random,
    report: Delivered,
) -> None:
    if not ids:
        return
    with unit_of_work():
        nudges = records(
            session.execute(
                select(
                    _N.id, _N.member_id, _N.template, _N.expires_at, _N.send_round, _N.sent_at, _N.due_at
                ).where(any_of(_N.id, ids), _N.status == NudgeStatus.SENDING.value)
            )
        )
        if not nudges:
            return
        report.nudges = len(nudges)
        rounds = {row.id: row.send_round for row in nudges}
        devices: dict[uuid.UUID, list[Any]] = defaultdict(list)
        for device in records(
            session.execute(
                select(Device.id, Device.member_id, Device.platform, Device.push_token).where(
                    any_of(Device.member_id, {row.member_id for row in nudges}), Device.active.is_(True)
                )
            )
        ):
            devices[device.member_id].append(device)
        states: dict[uuid.UUID, dict[uuid.UUID, _State]] = defaultdict(dict)
        attempts: dict[tuple[uuid.UUID, uuid.UUID], int] = {}
        lost: list[tuple[uuid.UUID, uuid.UUID, int]] = []
        for d in records(
            session.execute(
                select(
                    _D.nudge_id,
                    _D.device_id,
                    _D.send_round,
                    _D.status,
                    _D.attempts,
                    _D.next_attempt_at,
                    _D.error,
                ).where(any_of(_D.nudge_id, rounds))
            )
        ):
            if d.send_round != rounds[d.nudge_id]:
                continue
            status = DeliveryStatus(d.status)
            if status is DeliveryStatus.SENDING:  # its sender died mid-request (we hold the lock)
                status = DeliveryStatus.UNKNOWN
                lost.append((d.nudge_id, d.device_id, d.send_round))
            states[d.nudge_id][d.device_id] = _State(status, d.error, d.next_attempt_at)
            attempts[(d.nudge_id, d.device_id)] = d.attempts
        if lost:
            _update_deliveries(
                [
                    {"nudge_id": n, "device_id": dv, "send_round": r, "status": DeliveryStatus.UNKNOWN.value,
                     "provider_message_id": None, "error": "sender lost mid-request; not sent again",
                     "attempts": attempts[(n, dv)], "next_attempt_at": None}
                    for n, dv, r in lost
                ]
            )  # fmt: skip
            report.pushes["unknown"] += len(lost)

    started = now()
    work: list[_Work] = []
    for row in nudges:
        message = message_for(row.id, row.template, row.expires_at)
        for device in devices.get(row.member_id, ()):
            state = states[row.id].get(device.id)
            if state is not None and (
                state.status in FINAL
                or (state.next_attempt_at is not None and state.next_attempt_at > started)
            ):
                continue
            work.append(
                _Work(
                    nudge_id=row.id,
                    device_id=device.id,
                    send_round=row.send_round,
                    channel=channels.for_platform(device.platform),
                    token=device.push_token,
                    message=message,
                    attempts=attempts.get((row.id, device.id), 0),
                    expires_at=row.expires_at,
                    new=state is None,
                )
            )

    # Pipelined: group k's pushes are on the wire while group k-1's answers are recorded and group k+1
    # is recorded as leaving. Every push recorded `sending` is handed to the event loop right after the
    # commit (its requests are written at the loop's next turn), so a worker killed at any moment leaves
    # no `sending` row whose request had not left.
    answered: list[tuple[_Work, PushResult]] = []
    flying: deque[tuple[list[_Work], Future[list[PushResult]]]] = deque()
    loop = event_loop()
    for start in range(0, len(work), PUSH_CONCURRENCY):
        chunk = work[start : start + PUSH_CONCURRENCY]
        with unit_of_work():
            _record(answered, states, now=now(), rng=rng, report=report)
            mine = _mark_sending(chunk, now=now())
        answered = []
        flying.append((mine, loop.submit(_push_all(mine))))
        if len(flying) >= IN_FLIGHT_GROUPS:
            sent, results = flying.popleft()
            answered = list(zip(sent, results.result(), strict=True))
    while flying:
        sent, results = flying.popleft()
        answered += list(zip(sent, results.result(), strict=True))
    with unit_of_work():
        _record(answered, states, now=now(), rng=rng, report=report)
        _finish(nudges, states, now=now(), report=report)


async def _push_all(works: list[_Work]) -> list[PushResult]:
    return await asyncio.gather(*(_push_one(w) for w in works))


async def _push_one(work: _Work) -> PushResult:
    try:
        return await work.channel.push(work.token, work.message)
    except Exception:  # a bug in a channel must not strand the batch: retried, then failed
        log.exception("push channel raised", extra={"nudge_id": str(work.nudge_id)})
        return PushResult(PushOutcome.RETRY, work.channel.name, error="internal error")


def _mark_sending(chunk: list[_Work], *, now: datetime) -> list[_Work]:
    """Record each push as leaving, before it leaves; only the rows written here are ours to send."""
    new = [w for w in chunk if w.new]
    mine: set[tuple[uuid.UUID, uuid.UUID]] = set()
    if new:
        rows = session.execute(
            text(
                "INSERT INTO deliveries "
                "(nudge_id, device_id, send_round, provider, status, attempts, attempted_at) "
                "SELECT n, d, r, p, 'sending', 0, :now FROM unnest(CAST(:n AS uuid[]), CAST(:d AS uuid[]), "
                "CAST(:r AS smallint[]), CAST(:p AS text[])) AS v(n, d, r, p) "
                "ON CONFLICT DO NOTHING RETURNING nudge_id, device_id"
            ),
            {
                "n": pg_array(w.nudge_id for w in new),
                "d": pg_array(w.device_id for w in new),
                "r": pg_array(w.send_round for w in new),
                "p": pg_array(w.channel.name for w in new),
                "now": now,
            },
        )
        mine.update((n, d) for n, d in rows)
    again = [w for w in chunk if not w.new]
    for w in again:  # retries: rare, and ours (we hold the nudge's lock)
        session.execute(
            update(Delivery.__table__)
            .where(_D.nudge_id == w.nudge_id, _D.device_id == w.device_id, _D.send_round == w.send_round)
            .values(status=DeliveryStatus.SENDING.value, provider=w.channel.name, attempted_at=now)
        )
        mine.add((w.nudge_id, w.device_id))
    return [w for w in chunk if (w.nudge_id, w.device_id) in mine]


def _record(
    answered: Iterable[tuple[_Work, PushResult]],
    states: dict[uuid.UUID, dict[uuid.UUID, _State]],
    *,
    now: datetime,
    rng: random.Random,
    report: Delivered,
) -> None:
    """Store what each provider answered; deactivate dead tokens; schedule retries."""
    updates: list[dict[str, Any]] = []
    dead: dict[uuid.UUID, str] = {}
    for work, result in answered:
        tries = work.attempts + 1
        next_at = None
        error = result.error
        if result.outcome is PushOutcome.SENT:
            status = DeliveryStatus.SENT
        elif result.outcome is PushOutcome.RETRY:
            delay = retry_delay(tries, retry_after=result.retry_after, quota=result.quota, rng=rng)
            next_at = now + timedelta(seconds=delay)
            if tries >= MAX_PUSH_ATTEMPTS:
                status, error, next_at = DeliveryStatus.FAILED, f"gave up after {tries}: {error}", None
            elif work.expires_at is not None and next_at >= work.expires_at:
                status, error, next_at = DeliveryStatus.FAILED, f"expires before retry: {error}", None
            else:
                status = DeliveryStatus.RETRY
        else:
            status = DeliveryStatus.FAILED
            if result.outcome is PushOutcome.DEACTIVATE:
                dead[work.device_id] = (result.error or "invalid token")[:64]
        report.pushes[status.value] += 1
        sent = status is DeliveryStatus.SENT
        report.by_channel[(work.channel.name, status.value, "" if sent else (result.error or ""))] += 1
        states[work.nudge_id][work.device_id] = _State(status, error, next_at)
        updates.append(
            {
                "nudge_id": work.nudge_id,
                "device_id": work.device_id,
                "send_round": work.send_round,
                "status": status.value,
                "provider_message_id": result.provider_message_id,
                "error": error[:200] if error else None,
                "attempts": tries,
                "next_attempt_at": next_at,
            }
        )
    _update_deliveries(updates)
    if dead:
        report.pushes["deactivated"] += len(dead)
        for device_id, reason in dead.items():
            session.execute(
                update(Device).where(Device.id == device_id).values(active=False, deactivated_reason=reason)
            )


def _update_deliveries(updates: list[dict[str, Any]]) -> None:
    if not updates:
        return
    columns = ("nudge_id", "device_id", "send_round", "status", "provider_message_id", "error", "attempts")
    params: dict[str, Any] = {c: pg_array(u[c] for u in updates) for c in columns}
    params["next_attempt_at"] = pg_array(u["next_attempt_at"] for u in updates)
    # Planned for the table as it is now: psycopg prepares a statement run five times, and a generic plan
    # made while `deliveries` was small (a fresh database, the first pushes of a tick) seq-scans it for
    # the connection's life, every group reading the whole table (60 us a push at 100,000 pushes). Only
    # this statement: with custom plans, every foreign-key check of an insert would be planned again.
    session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
    session.execute(
        text(
            "UPDATE deliveries AS d SET status = v.status, provider_message_id = v.provider_message_id, "
            "error = v.error, attempts = v.attempts, next_attempt_at = v.next_attempt_at "
            "FROM unnest(CAST(:nudge_id AS uuid[]), CAST(:device_id AS uuid[]), "
            "CAST(:send_round AS smallint[]), "
            "CAST(:status AS text[]), CAST(:provider_message_id AS text[]), CAST(:error AS text[]), "
            "CAST(:attempts AS smallint[]), CAST(:next_attempt_at AS timestamptz[])) "
            "AS v(nudge_id, device_id, send_round, status, provider_message_id, error, attempts, "
            "next_attempt_at) "
            "WHERE d.nudge_id = v.nudge_id AND d.device_id = v.device_id AND d.send_round = v.send_round"
        ),
        params,
    )
    session.execute(text("SET LOCAL plan_cache_mode = auto"))


def _finish(
    nudges: Sequence[Any],
    states: dict[uuid.UUID, dict[uuid.UUID, _State]],
    *,
    now: datetime,
    report: Delivered,
) -> None:
    """Each nudge's status from its pushes: still sending (a retry is due later), sent, or failed."""
    plain_sent: list[uuid.UUID] = []  # the common case, in one statement
    others: list[dict[str, Any]] = []
    expired_retries: list[dict[str, Any]] = []
    for row in nudges:
        pushes = states.get(row.id, {})
        first_pass = row.sent_at is None or row.sent_at < row.due_at
        sent_at = now if first_pass else row.sent_at
        errors = [s.error for s in pushes.values() if s.error]
        waiting = {d: s for d, s in pushes.items() if s.status is DeliveryStatus.RETRY}
        expired = row.expires_at is not None and now >= row.expires_at
        if waiting and not expired:
            status = NudgeStatus.SENDING
            next_at = min(s.next_attempt_at for s in waiting.values() if s.next_attempt_at is not None)
        else:
            for device_id in waiting:
                expired_retries.append({"n": row.id, "d": device_id, "r": row.send_round})
            delivered = not pushes or any(
                s.status in (DeliveryStatus.SENT, DeliveryStatus.UNKNOWN) for s in pushes.values()
            )
            status = NudgeStatus.SENT if delivered else NudgeStatus.FAILED
            next_at = None
        report.finished[status.value] += 1
        last_error = errors[-1][:200] if errors else None
        if status is NudgeStatus.SENT and first_pass and last_error is None:
            plain_sent.append(row.id)
        else:
            others.append(
                {
                    "b_id": row.id,
                    "b_status": status.value,
                    "b_next": next_at,
                    "b_sent": sent_at,
                    "b_error": last_error,
                }
            )
    if plain_sent:
        session.execute(
            update(Nudge.__table__)
            .where(any_of(_N.id, plain_sent))
            .values(
                status=NudgeStatus.SENT.value,
                sent_at=now,
                next_attempt_at=None,
                last_error=None,
                attempts=_N.attempts + 1,
            )
        )
    if others:
        session.execute(
            update(Nudge.__table__)
            .where(_N.id == bindparam("b_id"))
            .values(
                status=bindparam("b_status"),
                next_attempt_at=bindparam("b_next"),
                sent_at=bindparam("b_sent"),
                last_error=bindparam("b_error"),
                attempts=_N.attempts + 1,
            ),
            others,
        )
    for item in expired_retries:
        session.execute(
            update(Delivery.__table__)
            .where(_D.nudge_id == item["n"], _D.device_id == item["d"], _D.send_round == item["r"])
            .values(status=DeliveryStatus.FAILED.value, next_attempt_at=None, error="expired before retry")
        )
