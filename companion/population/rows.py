"""`Rows`: a method a table, its columns as keyword arguments, each row one COPY text line; `Numbers`: the
sync change sequence they take."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import time

from companion.domain import drinking, plans
from companion.population.tables import Amount, Day, Id, Instant, Write, drinks_json, hhmm, line, steps_json


class Numbers:
    """The sync change sequence: numbers from `start` on, handed back to the real sequence by `settle`."""

    def __init__(self, start: int = 1) -> None:
        self.last = start - 1

    def __call__(self) -> int:
        self.last += 1
        return self.last


class Rows:
    """Rows of a synthetic population, each written as one COPY text line to `write(table, line)`."""

    def __init__(self, write: Write, seq: Callable[[], int]) -> None:
        self.write = write
        self.seq = seq

    def user(
        self,
        id: Id,
        *,
        email: str,
        role: str,
        created_at: Instant,
        password_hash: str | None = None,
        display_name: str | None = None,
    ) -> None:
        self.write("users", line(id, email, password_hash, display_name, role, created_at))

    def member(
        self,
        id: Id,
        *,
        timezone: str,
        country: str,
        sex: str,
        goal_type: str,
        enrolled_at: Instant,
        updated_at: Instant,
        weekly_limit: Amount | None = None,
        insurer_id: Id | None = None,
        outcome_sharing: bool = False,
        consents_updated_at: Instant | None = None,
        log_time: time | str = "20:00",
        muted_kinds: Sequence[str] = (),
    ) -> None:
        self.write(
            "members",
            line(
                id,
                timezone,
                country,
                sex,
                goal_type,
                weekly_limit,
                insurer_id,
                outcome_sharing,
                consents_updated_at,
                log_time,
                muted_kinds,
                enrolled_at,
                updated_at,
            ),
        )

    def coach_assignment(self, id: Id, *, member_id: Id, coach_id: Id, started_at: Instant) -> None:
        self.write("coach_assignments", line(id, member_id, coach_id, started_at))

    def plan(
        self,
        id: Id,
        *,
        member_id: Id,
        medication: str,
        dose_mg: Amount,
        times: Sequence[time],
        start_date: Day,
        created_at: Instant,
        updated_at: Instant,
        end_date: Day | None = None,
        steps: Sequence[plans.PlanStep] = (),
        created_by: Id | None = None,
    ) -> None:
        self.write(
            "medication_plans",
            line(
                id,
                member_id,
                medication,
                dose_mg,
                hhmm(times),
                start_date,
                end_date,
                steps_json(steps),
                created_by,
                created_at,
                updated_at,
                self.seq(),
            ),
        )

    def drink_log(
        self,
        member_id: Id,
        *,
        date: Day,
        grams_ethanol: Amount,
        heavy: bool,
        source: str,
        created_at: Instant,
        entered_standard_drinks: Amount | None = None,
        drinks: Sequence[drinking.DrinkItem] | None = None,
        deleted_at: Instant | None = None,
    ) -> None:
        """A day's log, entered at `created_at` (and not changed since)."""
        self.write(
            "drink_logs",
            line(
                member_id,
                date,
                grams_ethanol,
                entered_standard_drinks,
                None if drinks is None else drinks_json(drinks),
                heavy,
                source,
                created_at,
                created_at,
                created_at,
                deleted_at,
                self.seq(),
            ),
        )

    def craving(
        self,
        member_id: Id,
        *,
        id: Id,
        recorded_at: Instant,
        date: Day,
        intensity: int,
        created_at: Instant,
        triggers: Sequence[str] = (),
    ) -> None:
        self.write(
            "cravings", line(member_id, id, recorded_at, date, intensity, triggers, created_at, self.seq())
        )

    def checkin(
        self,
        member_id: Id,
        *,
        id: Id,
        plan_id: Id,
        scheduled_for: Instant,
        date: Day,
        status: str,
        created_at: Instant,
        taken_at: Instant | None = None,
    ) -> None:
        self.write(
            "medication_checkins",
            line(member_id, id, plan_id, scheduled_for, date, status, taken_at, created_at, self.seq()),
        )

    def side_effect(
        self, member_id: Id, *, checkin_id: Id, medication: str, date: Day, code: str, severity: str
    ) -> None:
        self.write("side_effect_reports", line(member_id, checkin_id, medication, date, code, severity))

    def bac(
        self,
        member_id: Id,
        *,
        id: Id,
        measured_at: Instant,
        date: Day,
        bac_g_dl: Amount,
        created_at: Instant,
        device_model: str | None = None,
    ) -> None:
        self.write(
            "bac_readings",
            line(member_id, id, measured_at, date, bac_g_dl, device_model, created_at, self.seq()),
        )

    def pacs(
        self, member_id: Id, *, id: Id, week_of: Day, items: list[int], total: int, created_at: Instant
    ) -> None:
        self.write("pacs_reports", line(member_id, id, week_of, items, total, created_at, self.seq()))

    def flag(
        self,
        id: Id,
        *,
        member_id: Id,
        rule: str,
        rule_version: int,
        tier: int,
        status: str,
        evidence: Sequence[str],
        summary: str,
        symptoms: Sequence[str],
        medications: Sequence[str],
        first_seen: Day,
        last_seen: Day,
        created_at: Instant,
        updated_at: Instant,
        acknowledged_at: Instant | None = None,
        resolved_at: Instant | None = None,
        resolution_note: str | None = None,
        assigned_coach_id: Id | None = None,
    ) -> None:
        self.write(
            "flags",
            line(
                id,
                member_id,
                rule,
                rule_version,
                tier,
                status,
                evidence,
                summary,
                symptoms,
                medications,
                first_seen,
                last_seen,
                created_at,
                updated_at,
                acknowledged_at,
                resolved_at,
                resolution_note,
                assigned_coach_id,
            ),
        )

    def message(self, id: Id, *, member_id: Id, sender_id: Id | None, body: str, created_at: Instant) -> None:
        self.write("messages", line(id, member_id, sender_id, body, created_at, self.seq()))

    def device(
        self,
        id: Id,
        *,
        member_id: Id,
        platform: str,
        push_token: str,
        created_at: Instant,
        active: bool = True,
    ) -> None:
        """A phone registered for push, last seen when it registered."""
        self.write("devices", line(id, member_id, platform, push_token, active, created_at, created_at))
