"""Nudges (DOMAIN.md "Nudges: what the worker sends"): what is due for a member, and whether to send it now.

Pure: values in, values out, the clock is an argument. Two steps, both called by the set-based
dispatcher that beat runs every minute (DESIGN.md: work that must happen later is a row first):

1. **Planning.** `plan_window` lists every wall-clock nudge (dose reminder, log reminder, streak,
   re-engagement, weekly summary) whose `due_at` falls in a half-open UTC window, so the dispatcher
   can insert rows ahead of time. `craving_support_for` and `coach_message_nudge` plan the
   event-driven kinds. Every `PlannedNudge` has a `dedupe_key`, unique per member in the database:
   inserting with ON CONFLICT DO NOTHING makes planning idempotent, so the same window planned twice,
   or overlapping windows, never make a second row ("one nudge per kind and slot, ever").
2. **Delivery.** `delivery_decision` decides, for one due row at `now`: send, hold until a later
   instant, or skip (expired, already done, muted, over the daily cap). Quiet hours, mutes and the cap
   are applied here only, so a settings change takes effect on rows already planned, and the skipped
   row records why nothing was sent. `delivery_decisions` does the same for a member's batch of due
   rows, counting what it sends against the cap.

Time zones and DST:

* A wall-clock nudge is *for* a local date and wall time in the member's zone (`local_date`,
  `local_slot`); `localtime.local_to_utc` turns that into `due_at`, so it fires exactly once a local
  day: a time in a spring-forward gap moves forward by the gap, a repeated time fires at its first
  occurrence.
* Dedupe keys name local dates (and, for doses, the local wall time), never instants. After a zone
  change, planning in the new zone produces the same key for a local date that already has a row, so
  a local day is never reminded twice; the next new day is reminded at the new local time.
* A row planned under the old zone but not yet sent follows the member: `reanchored` (which
  `delivery_decision` applies) moves a wall-clock nudge to its local date and time in the current
  zone. Moving west, the row is held until the new local time; moving east, a day that is already
  over in the new zone expires. The service may also call `reanchored` on pending rows when the zone
  changes, to move their `due_at` earlier.

Payloads carry no health data: a nudge names a `template` key in `TEMPLATES`, whose texts name no
medication, dose, drink, craving or count.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from types import MappingProxyType
from uuid import UUID
from zoneinfo import ZoneInfo

from companion.domain import localtime
from companion.domain.drinking import DEFAULT_COUNTRY
from companion.domain.plans import CheckIn, Plan, dose_slots
from companion.domain.summary import WEEK_DAYS, DayLog, Goal, GoalType, streaks
from companion.domain.types import DateRange


class NudgeKind(enum.StrEnum):
    """What a nudge is for. The values are the accounts schema's `muted_kinds` names."""

    DOSE_REMINDER = "dose_reminder"
    LOG_REMINDER = "log_reminder"
    CRAVING_SUPPORT = "craving_support"
    STREAK = "streak"
    REENGAGEMENT = "reengagement"
    WEEKLY_SUMMARY = "weekly_summary"
    PACS_REMINDER = "pacs_reminder"
    COACH_MESSAGE = "coach_message"

    @property
    def automatic(self) -> bool:
        """Sent by the system rather than by a person: every kind but coach messages."""
        return self is not NudgeKind.COACH_MESSAGE


#: Kinds a member may mute: every automatic kind; coach messages are never muted (DOMAIN.md).
MUTABLE_KINDS = frozenset(kind for kind in NudgeKind if kind.automatic)

#: Kinds due at the member's `log_time` on a local day.
LOG_TIME_KINDS = frozenset(
    {
        NudgeKind.LOG_REMINDER,
        NudgeKind.STREAK,
        NudgeKind.REENGAGEMENT,
        NudgeKind.WEEKLY_SUMMARY,
        NudgeKind.PACS_REMINDER,
    }
)

#: Kinds anchored to a local date and wall time, which follow the member to a new zone (`reanchored`).
#: Craving support and coach messages are anchored to the instant of their event instead.
WALL_CLOCK_KINDS = LOG_TIME_KINDS | {NudgeKind.DOSE_REMINDER}

#: Default local time of the daily log reminder (DOMAIN.md; the accounts model's default too).
DEFAULT_LOG_TIME = time(20, 0)

#: At most this many automatic nudges are sent on one local day of the member (DOMAIN.md, ours).
DAILY_CAP = 4

#: Kinds the daily cap neither limits nor counts. Coach messages are never capped (DOMAIN.md); craving
#: support is never blocked (issue 19): the member asked for help a moment ago. Dose reminders are
#: automatic, so DOMAIN.md's "at most 4 automatic nudges a day" caps them too: a member with more than
#: DAILY_CAP doses a day misses the later reminders. Exempting them is a clinical call.
CAP_EXEMPT_KINDS = frozenset({NudgeKind.COACH_MESSAGE, NudgeKind.CRAVING_SUPPORT})

#: Kinds sent during quiet hours: a dose reminder is always at its prescribed time (DOMAIN.md); craving
#: support answers a rating the member has just made, so they are awake (issue 19).
QUIET_HOURS_EXEMPT_KINDS = frozenset({NudgeKind.DOSE_REMINDER, NudgeKind.CRAVING_SUPPORT})

#: A craving rating at or above this, on the 0-10 slider, sends craving support (DOMAIN.md, ours).
CRAVING_SUPPORT_THRESHOLD = 8

#: Craving support goes "right after" the rating: not later than this after it, quiet hours included (ours).
CRAVING_SUPPORT_TTL = timedelta(hours=1)

#: A high rating this soon after the last craving support gets none: one tip covers a rough hour (ours).
CRAVING_SUPPORT_MIN_INTERVAL = timedelta(hours=1)

#: Streak lengths celebrated once each (DOMAIN.md): alcohol-free days, or within-goal days on a moderate goal.
STREAK_MILESTONES = (7, 30, 60, 90, 180, 365)

#: A re-engagement nudge goes out once the member's last entry is this many local days back (DOMAIN.md).
REENGAGEMENT_AFTER_DAYS = 3

#: ... and not again until this many local days after the previous one (DOMAIN.md).
REENGAGEMENT_REPEAT_DAYS = 7

#: The weekly summary goes out on this weekday (`date.weekday()`: Sunday is 6), at `log_time` (DOMAIN.md).
WEEKLY_SUMMARY_WEEKDAY = 6

#: The monthly PACS reminder (issue 19): on the month's first Sunday (ours), at `log_time`, once a month.
PACS_REMINDER_WEEKDAY = 6

#: A dose reminder expires when the plan's next dose is due; the day's last one this long after the end
#: of its local day, unless the next dose comes first (ours).
DOSE_LAST_GRACE = timedelta(hours=2)

#: When several nudges fall due together, they are decided in this order (the cap keeps the first).
KIND_PRIORITY: Mapping[NudgeKind, int] = MappingProxyType(
    {
        kind: rank
        for rank, kind in enumerate(
            (
                NudgeKind.COACH_MESSAGE,
                NudgeKind.DOSE_REMINDER,
                NudgeKind.CRAVING_SUPPORT,
                NudgeKind.LOG_REMINDER,
                NudgeKind.REENGAGEMENT,
                NudgeKind.STREAK,
                NudgeKind.WEEKLY_SUMMARY,
                NudgeKind.PACS_REMINDER,
            )
        )
    }
)

#: Push and inbox texts by template key: (title, body). No health data, no numbers, no placeholders
#: (DOMAIN.md: "Time for your check-in", not "Take your baclofen"); tests check every one.
TEMPLATES: Mapping[str, tuple[str, str]] = MappingProxyType(
    {
        NudgeKind.DOSE_REMINDER.value: ("Scheduled reminder", "It's time for your scheduled check-in."),
        NudgeKind.LOG_REMINDER.value: ("Time for your check-in", "Take a moment to check in on your day."),
        NudgeKind.CRAVING_SUPPORT.value: (
            "We're here for you",
            "Tough moments pass. Open Companion for a quick tip, or message your coach.",
        ),
        NudgeKind.STREAK.value: ("Milestone reached", "You've reached a new milestone. Take a look."),
        NudgeKind.REENGAGEMENT.value: (
            "We miss you",
            "It's been a little while. Check in whenever you're ready.",
        ),
        NudgeKind.WEEKLY_SUMMARY.value: ("Your week in review", "Your weekly summary is ready."),
        NudgeKind.PACS_REMINDER.value: (
            "A few quick questions",
            "Take a minute to answer this month's questions.",
        ),
        NudgeKind.COACH_MESSAGE.value: ("New message", "Your coach sent you a message."),
    }
)


@dataclass(frozen=True, slots=True)
class NudgePolicy:
    """The product-wide nudge settings (DOMAIN.md's *ours*); the defaults are the constants above."""

    daily_cap: int = DAILY_CAP
    cap_exempt: frozenset[NudgeKind] = CAP_EXEMPT_KINDS
    quiet_hours_exempt: frozenset[NudgeKind] = QUIET_HOURS_EXEMPT_KINDS
    craving_threshold: int = CRAVING_SUPPORT_THRESHOLD
    craving_support_ttl: timedelta = CRAVING_SUPPORT_TTL
    craving_support_min_interval: timedelta = CRAVING_SUPPORT_MIN_INTERVAL
    streak_milestones: tuple[int, ...] = STREAK_MILESTONES
    reengagement_after_days: int = REENGAGEMENT_AFTER_DAYS
    reengagement_repeat_days: int = REENGAGEMENT_REPEAT_DAYS
    dose_last_grace: timedelta = DOSE_LAST_GRACE

    def __post_init__(self) -> None:
        if NudgeKind.COACH_MESSAGE not in self.cap_exempt:
            raise ValueError("coach messages are never capped")
        if NudgeKind.CRAVING_SUPPORT not in self.cap_exempt & self.quiet_hours_exempt:
            raise ValueError("craving support is never blocked by the cap or quiet hours")
        if self.daily_cap < 0:
            raise ValueError("negative daily cap")
        if (
            list(self.streak_milestones) != sorted(set(self.streak_milestones))
            or min(self.streak_milestones, default=1) < 1
        ):
            raise ValueError("streak milestones must be positive and strictly increasing")
        if self.reengagement_after_days < 1 or self.reengagement_repeat_days < 1:
            raise ValueError("re-engagement days must be positive")
        if self.craving_support_ttl <= timedelta(0):
            raise ValueError("craving support needs a positive time to live")

    def counts_toward_cap(self, kind: NudgeKind) -> bool:
        """Whether a sent nudge of `kind` counts in `sent_today_count` (and is limited by the cap)."""
        return kind not in self.cap_exempt


DEFAULT_POLICY = NudgePolicy()

#: The default goal, for settings that do not say.
ABSTAIN = Goal(GoalType.ABSTAIN)


@dataclass(frozen=True, slots=True)
class MemberSettings:
    """What nudge decisions need from the member's profile (the `members` row and `reminders`).

    Quiet hours are local wall-clock times, [quiet_start, quiet_end): both or neither; start after end
    wraps midnight (22:00-07:00); start equal to end is no quiet hours at all. `muted_kinds` accepts the
    accounts schema's strings and holds `NudgeKind`s.

    :raises ValueError: unknown zone or kind, aware times, one quiet-hours bound, coach messages muted.
    """

    zone: str
    log_time: time = DEFAULT_LOG_TIME
    quiet_start: time | None = None
    quiet_end: time | None = None
    muted_kinds: frozenset[NudgeKind] = frozenset()
    goal: Goal = ABSTAIN
    country: str = DEFAULT_COUNTRY

    def __post_init__(self) -> None:
        try:
            ZoneInfo(self.zone)
        except (KeyError, ValueError):  # ZoneInfoNotFoundError is a KeyError
            raise ValueError(f"unknown time zone {self.zone!r}") from None
        for wall in (self.log_time, self.quiet_start, self.quiet_end):
            if wall is not None and wall.tzinfo is not None:
                raise ValueError("log_time and quiet hours are naive local wall-clock times")
        if (self.quiet_start is None) != (self.quiet_end is None):
            raise ValueError("quiet hours need both a start and an end")
        kinds = frozenset(NudgeKind(kind) for kind in self.muted_kinds)
        if not kinds <= MUTABLE_KINDS:
            raise ValueError("coach messages cannot be muted")
        object.__setattr__(self, "muted_kinds", kinds)


@dataclass(frozen=True, slots=True)
class PlannedNudge:
    """One nudge, as its row is inserted.

    `dedupe_key` is unique per member (the database enforces it). `local_date` and `local_slot` are the
    local day and wall time it is for, in `zone` (the member's zone when it was planned): the dose time,
    the log time, or the local time of a craving or coach message. `due_at` and `expires_at` are UTC;
    an expired nudge is never sent late. `subject_id` is the plan (dose reminders), craving (craving
    support) or message (coach messages) it is about; None for the others.
    """

    kind: NudgeKind
    dedupe_key: str
    local_date: date
    local_slot: time
    zone: str
    due_at: datetime
    expires_at: datetime | None
    template: str
    subject_id: UUID | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "due_at", localtime.to_utc(self.due_at))
        if self.expires_at is not None:
            object.__setattr__(self, "expires_at", localtime.to_utc(self.expires_at))
            if self.expires_at <= self.due_at:
                raise ValueError(f"{self.dedupe_key} expires before it is due")
        if self.local_slot.tzinfo is not None:
            raise ValueError("local_slot is a naive local wall-clock time")
        if self.template not in TEMPLATES:
            raise ValueError(f"unknown template {self.template!r}")


class Outcome(enum.StrEnum):
    """What the dispatcher does with a due nudge."""

    SEND = "send"
    #: Not now: try again at `Decision.until` (quiet hours, or not yet due in the member's zone).
    HOLD_UNTIL = "hold_until"
    SKIP_EXPIRED = "skip_expired"
    #: What it asks for has happened since it was planned (the dose is checked in, the day is logged).
    SKIP_DONE = "skip_done"
    SKIP_MUTED = "skip_muted"
    SKIP_CAP = "skip_cap"


@dataclass(frozen=True, slots=True)
class Decision:
    """`delivery_decision`'s answer for one row."""

    outcome: Outcome
    #: The instant to try again, for HOLD_UNTIL only (aware UTC).
    until: datetime | None = None

    def __post_init__(self) -> None:
        if (self.outcome is Outcome.HOLD_UNTIL) != (self.until is not None):
            raise ValueError("a hold, and only a hold, has an until")

    @property
    def final(self) -> bool:
        """Whether the row is done with (sent or skipped), rather than held for another try."""
        return self.outcome is not Outcome.HOLD_UNTIL


SEND = Decision(Outcome.SEND)
SKIP_EXPIRED = Decision(Outcome.SKIP_EXPIRED)
SKIP_DONE = Decision(Outcome.SKIP_DONE)
SKIP_MUTED = Decision(Outcome.SKIP_MUTED)
SKIP_CAP = Decision(Outcome.SKIP_CAP)


def hold_until(instant: datetime) -> Decision:
    """HOLD_UNTIL `instant` (aware; kept as UTC)."""
    return Decision(Outcome.HOLD_UNTIL, localtime.to_utc(instant))


# Planning.


def plan_window(
    settings: MemberSettings,
    *,
    plans: Sequence[Plan],
    checkins: Sequence[CheckIn],
    day_logs: Sequence[DayLog],
    last_entry_date: date | None,
    last_reengagement_date: date | None,
    window_start: datetime,
    window_end: datetime,
    streak_milestones_sent: Collection[int] = frozenset(),
    policy: NudgePolicy = DEFAULT_POLICY,
) -> list[PlannedNudge]:
    """Every wall-clock nudge due in [window_start, window_end), in the member's current zone.

    Consecutive windows partition time, so each nudge is planned by exactly one of them; planning a
    window again (or overlapping windows) gives the same nudges under the same keys. Sorted by
    `due_at`, then `KIND_PRIORITY`, then key. Mutes, quiet hours and the cap are not applied here
    (see `delivery_decision`).

    * **Dose reminders**: each slot of `plans.dose_slots` (titration and taper aware) on each local
      day, due at the slot, unless `checkins` already answer it (taken or skipped). Each expires when
      the plan's next dose is due, and the day's last at the end of its local day plus
      `dose_last_grace`, or at the next dose if that comes first. Key
      `dose_reminder:<plan id>:<local date>T<HH:MM>`.
    * At `log_time` on each local day T (key suffix: the local date; each expires when T ends):

      - **log reminder** when T has no drink log. Key `log_reminder:<T>`.
      - **streak**: the highest milestone at or below the streak as of T (`summary.streaks`:
        within-goal days, which for an abstain goal are the alcohol-free days), unless it is in
        `streak_milestones_sent`. Key `streak:<milestone>`: once per milestone, ever, so the database
        keeps it to one even when the caller passes nothing.
      - **re-engagement** when `last_entry_date` (the local date of the member's latest entry of any
        kind; None plans none) is at least `reengagement_after_days` before T, and
        `last_reengagement_date` (the local date of the latest re-engagement row, whatever became of
        it) is None, T itself, or at least `reengagement_repeat_days` before T; in a window of several
        days, each one planned counts for the next. Key `reengagement:<T>`.
      - **weekly summary** on Sundays with at least one drink log in the 7 days ending T (there is
        nothing to summarise otherwise). Key `weekly_summary:<ISO year>-W<ISO week>`.

    What callers load: plans and check-ins for the window's local days, the day before and the day
    after; drink logs as far back as a streak may count (see `summary`), and at least the 7 days
    before the window.

    :raises ValueError: a naive window bound, or an end before the start.
    """
    start, end = localtime.to_utc(window_start), localtime.to_utc(window_end)
    if end < start:
        raise ValueError("window_end is before window_start")
    if start == end:
        return []
    zone = settings.zone
    # A local day's nudges fall on that day; the day before covers a gap that crosses midnight.
    days = DateRange(localtime.local_date(start, zone) - timedelta(days=1), localtime.local_date(end, zone))
    nudges = [
        nudge
        for nudge in (
            *_dose_reminders(settings, plans, checkins, days, window=(start, end), policy=policy),
            *_log_time_nudges(
                settings,
                day_logs,
                days,
                last_entry_date=last_entry_date,
                last_reengagement_date=last_reengagement_date,
                streak_milestones_sent=streak_milestones_sent,
                window=(start, end),
                policy=policy,
            ),
        )
        if start <= nudge.due_at < end
    ]
    return sorted(nudges, key=_order)


def _order(nudge: PlannedNudge) -> tuple[datetime, int, str]:
    return nudge.due_at, KIND_PRIORITY[nudge.kind], nudge.dedupe_key


def _day_end(day: date, zone: str) -> datetime:
    return localtime.day_bounds_utc(day, zone)[1]


def _dose_reminders(
    settings: MemberSettings,
    plans: Sequence[Plan],
    checkins: Sequence[CheckIn],
    days: DateRange,
    *,
    window: tuple[datetime, datetime],
    policy: NudgePolicy,
) -> Iterator[PlannedNudge]:
    zone = settings.zone
    answered = {(checkin.plan_id, localtime.to_utc(checkin.scheduled_for)) for checkin in checkins}
    # One day past the range, so the range's last slot knows the next dose.
    span = DateRange(days.start, days.end + timedelta(days=1))
    for plan in plans:
        slots = sorted(
            (slot for day in span.days() for slot in dose_slots(plan, day, zone)),
            key=lambda slot: slot.scheduled_for,
        )
        for index, slot in enumerate(slots):
            after = slots[index + 1] if index + 1 < len(slots) else None
            if not window[0] <= slot.scheduled_for < window[1] or (plan.id, slot.scheduled_for) in answered:
                continue
            expires = _day_end(slot.local_date, zone) + policy.dose_last_grace
            if after is not None:
                expires = min(expires, after.scheduled_for)
            yield PlannedNudge(
                kind=NudgeKind.DOSE_REMINDER,
                dedupe_key=f"dose_reminder:{plan.id}:{_local_label(slot.local_date, slot.local_time)}",
                local_date=slot.local_date,
                local_slot=slot.local_time,
                zone=zone,
                due_at=slot.scheduled_for,
                expires_at=expires,
                template=NudgeKind.DOSE_REMINDER.value,
                subject_id=plan.id,
            )


def _local_label(day: date, wall: time) -> str:
    return f"{day.isoformat()}T{wall.isoformat(timespec='minutes')}"


def _log_time_nudges(
    settings: MemberSettings,
    day_logs: Sequence[DayLog],
    days: DateRange,
    *,
    last_entry_date: date | None,
    last_reengagement_date: date | None,
    streak_milestones_sent: Collection[int],
    window: tuple[datetime, datetime],
    policy: NudgePolicy,
) -> Iterator[PlannedNudge]:
    zone = settings.zone
    logged = {log.day for log in day_logs}
    last_reengagement = last_reengagement_date
    milestones_sent = set(streak_milestones_sent)  # and those planned below: once per window too
    for day in days.days():
        due = localtime.local_to_utc(day, settings.log_time, zone)
        if not window[0] <= due < window[1]:
            continue
        keys: list[tuple[NudgeKind, str]] = []
        if day not in logged:
            keys.append((NudgeKind.LOG_REMINDER, day.isoformat()))
        milestone = _milestone(day_logs, settings, day, policy)
        if milestone is not None and milestone not in milestones_sent:
            milestones_sent.add(milestone)
            keys.append((NudgeKind.STREAK, str(milestone)))
        if _reengagement_due(day, last_entry_date, last_reengagement, policy):
            last_reengagement = day
            keys.append((NudgeKind.REENGAGEMENT, day.isoformat()))
        if day.weekday() == WEEKLY_SUMMARY_WEEKDAY and any(
            d in logged for d in DateRange.ending(day, WEEK_DAYS).days()
        ):
            iso = day.isocalendar()
            keys.append((NudgeKind.WEEKLY_SUMMARY, f"{iso.year}-W{iso.week:02d}"))
        if day.weekday() == PACS_REMINDER_WEEKDAY and day.day <= WEEK_DAYS:
            keys.append((NudgeKind.PACS_REMINDER, f"{day.year}-{day.month:02d}"))
        for kind, key in keys:
            yield PlannedNudge(
                kind=kind,
                dedupe_key=f"{kind.value}:{key}",
                local_date=day,
                local_slot=settings.log_time,
                zone=zone,
                due_at=due,
                expires_at=_day_end(day, zone),
                template=kind.value,
            )


def _milestone(
    day_logs: Sequence[DayLog], settings: MemberSettings, day: date, policy: NudgePolicy
) -> int | None:
    """The highest milestone reached by the streak as of local `day`, or None."""
    if not day_logs:
        return None
    # Within-goal days: for an abstain goal these are exactly the alcohol-free days.
    length = streaks(day_logs, goal=settings.goal, country=settings.country, today=day).within_goal_days
    reached = [m for m in policy.streak_milestones if m <= length]
    return reached[-1] if reached else None


def _reengagement_due(
    day: date, last_entry: date | None, last_reengagement: date | None, policy: NudgePolicy
) -> bool:
    if last_entry is None or (day - last_entry).days < policy.reengagement_after_days:
        return False
    return (
        last_reengagement is None
        or last_reengagement == day  # planned already: plan it again, under the same key
        or (day - last_reengagement).days >= policy.reengagement_repeat_days
    )


def craving_support_for(
    craving_id: UUID,
    intensity: int,
    recorded_at: datetime,
    settings: MemberSettings,
    *,
    last_support_at: datetime | None = None,
    policy: NudgePolicy = DEFAULT_POLICY,
) -> PlannedNudge | None:
    """Craving support right after a rating of `policy.craving_threshold` or more; None otherwise.

    Event-driven: the service calls it when a craving is recorded (by POST /cravings or a sync). Due
    at `recorded_at`, expiring `craving_support_ttl` later, so a rating synced hours late sends
    nothing. None too within `craving_support_min_interval` of `last_support_at` (the member's latest
    craving support row, if the caller has it). Key `craving_support:<craving id>`.

    :raises ValueError: intensity outside 0-10, naive instants.
    """
    if not 0 <= intensity <= 10:
        raise ValueError(f"craving intensity out of range: {intensity}")
    recorded = localtime.to_utc(recorded_at)
    if intensity < policy.craving_threshold:
        return None
    if last_support_at is not None:
        since_last = abs(recorded - localtime.to_utc(last_support_at))
        if since_last < policy.craving_support_min_interval:
            return None
    return _event_nudge(NudgeKind.CRAVING_SUPPORT, craving_id, recorded, settings, policy.craving_support_ttl)


def coach_message_nudge(message_id: UUID, sent_at: datetime, settings: MemberSettings) -> PlannedNudge:
    """The push for a coach's message: due at once, never expiring, never capped or muted.

    The push names no content (the message body could hold anything); the inbox shows the body.
    Key `coach_message:<message id>`.
    """
    return _event_nudge(NudgeKind.COACH_MESSAGE, message_id, localtime.to_utc(sent_at), settings, None)


def _event_nudge(
    kind: NudgeKind, subject: UUID, at: datetime, settings: MemberSettings, ttl: timedelta | None
) -> PlannedNudge:
    local = at.astimezone(ZoneInfo(settings.zone))
    return PlannedNudge(
        kind=kind,
        dedupe_key=f"{kind.value}:{subject}",
        local_date=local.date(),
        local_slot=_wall(local),
        zone=settings.zone,
        due_at=at,
        expires_at=None if ttl is None else at + ttl,
        template=kind.value,
        subject_id=subject,
    )


def _wall(local: datetime) -> time:
    """The naive wall-clock time of an aware local datetime (its fold kept)."""
    return time(local.hour, local.minute, local.second, local.microsecond, fold=local.fold)


# Zones.


def reanchored(nudge: PlannedNudge, zone: str) -> PlannedNudge:
    """`nudge` moved to its local date and wall time in `zone` (the member's current zone).

    Wall-clock kinds only; craving support and coach messages keep their instant. The key, local date
    and local slot never change, so the row still stands for the same local day. A day-anchored kind
    expires when its local day ends in the new zone; a dose reminder's expiry moves with its slot.
    Returns `nudge` itself when it was planned in `zone`.
    """
    if nudge.kind not in WALL_CLOCK_KINDS or nudge.zone == zone:
        return nudge
    due = localtime.local_to_utc(nudge.local_date, nudge.local_slot, zone)
    if nudge.kind is NudgeKind.DOSE_REMINDER:
        before = localtime.local_to_utc(nudge.local_date, nudge.local_slot, nudge.zone)
        expires = None if nudge.expires_at is None else nudge.expires_at + (due - before)
    else:
        expires = _day_end(nudge.local_date, zone)
    return dataclasses.replace(nudge, zone=zone, due_at=due, expires_at=expires)


# Delivery.


def quiet_hours_end(settings: MemberSettings, now: datetime) -> datetime | None:
    """When the member's quiet hours around `now` end (aware UTC), or None when `now` is not in them.

    Read on the member's wall clock in their current zone. The end time is read like any local time (a
    gap moves it forward); in a repeated hour, the first occurrence still ahead of `now` is taken, so
    a hold always moves forward.
    """
    start, end = settings.quiet_start, settings.quiet_end
    if start is None or end is None or start == end:
        return None
    tz = ZoneInfo(settings.zone)
    local = localtime.to_utc(now).astimezone(tz)
    wall, today = _wall(local), local.date()
    if start < end:
        if not start <= wall < end:
            return None
        end_day = today
    elif wall >= start:
        end_day = today + timedelta(days=1)
    elif wall < end:
        end_day = today
    else:
        return None
    first = localtime.local_to_utc(end_day, end, settings.zone)
    if first > local:
        return first
    if localtime.wall_time_kind(end_day, end, settings.zone) is localtime.WallTimeKind.AMBIGUOUS:
        # Now is in the repeat of the hour quiet hours end in: they end at its second occurrence.
        second = datetime.combine(end_day, end).replace(tzinfo=tz, fold=1).astimezone(UTC)
        if second > local:
            return second
    return None


def delivery_decision(
    nudge: PlannedNudge,
    *,
    settings: MemberSettings,
    sent_today_count: int,
    now: datetime,
    already_done: bool = False,
    policy: NudgePolicy = DEFAULT_POLICY,
) -> Decision:
    """Whether to send a due `nudge` at `now`, in this order:

    1. not yet due in the member's current zone (`reanchored`: the zone changed since planning) →
       HOLD_UNTIL that instant;
    2. expired (`now` >= `expires_at`) → SKIP_EXPIRED: never sent late;
    3. `already_done` (see `is_done`: the dose is checked in, the day is logged) → SKIP_DONE;
    4. a kind the member muted → SKIP_MUTED (coach messages are never muted);
    5. in quiet hours, unless the kind is exempt (dose reminders) → HOLD_UNTIL quiet hours end, or
       SKIP_EXPIRED if it would expire by then;
    6. `sent_today_count` (nudges counting toward the cap sent on the member's local day of `now`,
       see `cap_window`) at the cap → SKIP_CAP (coach messages are never capped);
    7. otherwise SEND.

    A held nudge is decided again at its `until`; the dispatcher stores that instant beside `due_at`
    (or over it: both are re-derived here). A skipped one is final: its key is spent.

    :raises ValueError: naive `now`, negative count.
    """
    now = localtime.to_utc(now)
    if sent_today_count < 0:
        raise ValueError("negative sent_today_count")
    nudge = reanchored(nudge, settings.zone)
    if now < nudge.due_at:
        return hold_until(nudge.due_at)
    if nudge.expires_at is not None and now >= nudge.expires_at:
        return SKIP_EXPIRED
    if already_done:
        return SKIP_DONE
    if nudge.kind in settings.muted_kinds:
        return SKIP_MUTED
    if nudge.kind not in policy.quiet_hours_exempt and (quiet_end := quiet_hours_end(settings, now)):
        if nudge.expires_at is not None and quiet_end >= nudge.expires_at:
            return SKIP_EXPIRED
        return hold_until(quiet_end)
    if policy.counts_toward_cap(nudge.kind) and sent_today_count >= policy.daily_cap:
        return SKIP_CAP
    return SEND


def delivery_decisions(
    nudges: Iterable[PlannedNudge],
    *,
    settings: MemberSettings,
    sent_today_count: int,
    now: datetime,
    done_keys: Collection[str] = frozenset(),
    policy: NudgePolicy = DEFAULT_POLICY,
) -> list[tuple[PlannedNudge, Decision]]:
    """`delivery_decision` for one member's due rows together, each SEND counting toward the cap.

    Decided earliest due first, then by `KIND_PRIORITY`, so when the cap bites, a dose reminder goes
    before a streak due at the same minute. `done_keys` are the dedupe keys that are already done.
    """
    zone = settings.zone
    ordered = sorted(nudges, key=lambda nudge: _order(reanchored(nudge, zone)))
    count = sent_today_count
    decisions = []
    for nudge in ordered:
        decision = delivery_decision(
            nudge,
            settings=settings,
            sent_today_count=count,
            now=now,
            already_done=nudge.dedupe_key in done_keys,
            policy=policy,
        )
        if decision.outcome is Outcome.SEND and policy.counts_toward_cap(nudge.kind):
            count += 1
        decisions.append((nudge, decision))
    return decisions


def cap_window(now: datetime, zone: str) -> tuple[datetime, datetime]:
    """The UTC bounds of the member's local day at `now`: count sent nudges in it for `sent_today_count`."""
    return localtime.day_bounds_utc(localtime.local_date(now, zone), zone)


def is_done(
    nudge: PlannedNudge,
    *,
    zone: str,
    checkins: Iterable[CheckIn] = (),
    logged_days: Collection[date] = (),
    last_entry_date: date | None = None,
    policy: NudgePolicy = DEFAULT_POLICY,
) -> bool:
    """Whether what `nudge` asks for has happened since it was planned (`already_done` at delivery).

    * dose reminder: a check-in (taken or skipped) for its plan at its slot, in the zone it was
      planned in or in the current `zone`;
    * log reminder: its local date has a drink log (`logged_days`);
    * re-engagement: an entry came in (`last_entry_date` is now too recent to re-engage);
    * other kinds: never.
    """
    if nudge.kind is NudgeKind.DOSE_REMINDER:
        slots = {localtime.local_to_utc(nudge.local_date, nudge.local_slot, z) for z in (nudge.zone, zone)}
        return any(
            c.plan_id == nudge.subject_id and localtime.to_utc(c.scheduled_for) in slots for c in checkins
        )
    if nudge.kind is NudgeKind.LOG_REMINDER:
        return nudge.local_date in logged_days
    if nudge.kind is NudgeKind.REENGAGEMENT:
        return (
            last_entry_date is not None
            and (nudge.local_date - last_entry_date).days < policy.reengagement_after_days
        )
    return False
