"""When an open flag stops being true (DOMAIN.md "Safety rules"): a rescan that no longer finds what
the flag says clears it, with the reason and the entries that showed it; a reported symptom's flag
clears only when a coach resolves it.

Pure, like the rules it asks. "No longer found" alone is not enough: most rules read a window that
slides with the date, so a finding that is simply old also disappears. Two kinds of rule:

* **State rules** (`STATE_RULES`: disengagement) describe the member now: no finding now means the
  state is over (the member is active again), so the flag clears.
* **Event rules** (every other rule) describe what happened in a window. The rule is asked again *as
  of the scan that last found the flag*, with the records as they stand now. If it finds nothing
  then, the records it rested on changed (doses entered late as taken, a drink log corrected): the
  flag clears. If it still finds something then, only time has passed: the flag stays for a coach.
  The caller loads that window's records (`extra_days`); when they are not all there, nothing can be
  judged and the flag stays: missing records must never clear a flag.

A flag that cites a reported symptom (`symptoms`, or a side-effect report in its evidence) never
clears by itself, whatever the rule: someone reported feeling something, and only a coach closes it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

from companion.domain.safety import (
    RULES,
    MemberHistory,
    SafetySettings,
    drink_log_evidence,
)

#: Rules that describe the member's state now rather than an event in a window.
STATE_RULES = frozenset({"disengagement"})

#: Evidence ids that are a member's report of how they feel (never cleared by a rescan).
REPORT_PREFIXES = ("side_effect:", "symptom:")

#: At most this many entries are cited as having cleared a flag (the latest ones).
MAX_CLEARING_ENTRIES = 50


@dataclass(frozen=True, slots=True)
class OpenFlag:
    """What clearing needs of an open flag: its rule and what it cites, and when a scan last found it."""

    rule: str
    evidence: frozenset[str]
    symptoms: tuple[str, ...]
    first_seen: date
    last_seen: date
    found_at: datetime


@dataclass(frozen=True, slots=True)
class Clearance:
    """Why an open flag is no longer true, and the entries (evidence ids) that show it."""

    reason: str
    evidence: tuple[str, ...]


def cites_report(flag: OpenFlag) -> bool:
    """Whether the flag rests on something the member reported feeling: it never clears by itself."""
    return bool(flag.symptoms) or any(e.startswith(REPORT_PREFIXES) for e in flag.evidence)


def clearance(
    flag: OpenFlag, history: MemberHistory, settings: SafetySettings, *, extra_days: int = 0
) -> Clearance | None:
    """The flag's clearance when `history` shows it is no longer true, else None (it stays open).

    `history` holds every rule's window widened by `extra_days` local days into the past (the
    caller loads more for a flag found days ago). Call it for a rule that found nothing now; it
    checks anyway.
    """
    rule = RULES.get(flag.rule)
    if rule is None or cites_report(flag) or rule.check(history, settings) is not None:
        return None
    if flag.rule in STATE_RULES:
        entries = _entries(history, since=flag.first_seen, until=history.today)
        latest = max((day for day, _ in entries), default=history.last_entry_date)
        when = f"latest on {latest}" if latest is not None else "an entry made since"
        return Clearance(f"Active again: entries since {flag.first_seen} ({when}).", _cited(entries))
    as_of = min(history.now, flag.found_at)
    then = dataclasses.replace(history, now=as_of)
    if (history.today - then.today).days > extra_days:
        return None  # the window it was found in is not all loaded: nothing can be judged
    if rule.check(then, settings) is not None:
        return None  # still true as of when it was found: only time has passed
    entries = _entries(history, since=flag.first_seen, until=flag.last_seen)
    if any(e.startswith("dose:") for e in flag.evidence):
        why = f"The doses it cites were entered as taken ({flag.first_seen} to {flag.last_seen})."
    else:
        why = f"The entries it rests on changed ({flag.first_seen} to {flag.last_seen}): no longer found."
    return Clearance(why, _cited(entries))


def _entries(history: MemberHistory, *, since: date, until: date) -> list[tuple[date, str]]:
    """Every entry of the history on a local day in [since, until]: (day, evidence id)."""
    found: Iterable[tuple[date, str]] = (
        *((d.day, d.evidence_id) for d in history.doses),
        *((log.day, drink_log_evidence(log.day)) for log in history.day_logs),
        *((c.day, c.evidence_id) for c in history.cravings),
        *((b.day, b.evidence_id) for b in history.breath),
    )
    return sorted(pair for pair in found if since <= pair[0] <= until)


def _cited(entries: list[tuple[date, str]]) -> tuple[str, ...]:
    return tuple(sorted(evidence_id for _, evidence_id in entries[-MAX_CLEARING_ENTRIES:]))
