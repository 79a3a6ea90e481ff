"""The clinical scenario table (tests/domain/test_safety_scenarios.py) end to end: each history written
through the HTTP API at the times it describes; the `safety.scan_member` messages those writes sent
after commit consumed from Redis by a real Celery worker process whose clock starts at the history's
`now`; exactly the flags the table names in the database; then replays that must change nothing.

Entries older than the rules' lookback window are not written (`helpers.trimmed`): the rules never
read them, and each test first checks that the domain's findings without them are the same.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from companion.domain.safety import RULES, Tier, evaluate
from tests.domain.test_safety_scenarios import SCENARIOS
from tests.safety import helpers


@pytest.fixture
def team(app):
    with helpers.travel(datetime(2026, 1, 1, 9, tzinfo=UTC)):
        return {"coach": helpers.new_staff(app, "coach"), "admin": helpers.new_staff(app, "admin")}


def test_the_table_is_large_enough():
    assert len(SCENARIOS) >= 25


@pytest.mark.parametrize(("build", "expected"), SCENARIOS)
def test_scenario_end_to_end(app, client, redis, database_url, redis_url, tmp_path, team, build, expected):
    history = helpers.trimmed(build())
    assert evaluate(history) == evaluate(build())  # what is not written could not have mattered
    coach_id, coach_email = team["coach"]
    replayed = helpers.replay(app, client, history, coach_email=coach_email, admin_email=team["admin"][1])
    member = str(replayed.member_id)
    asked = [m for m in helpers.queued(redis, "safety.scan_member") if m["kwargs"]["member_id"] == member]
    assert asked, "the writes asked for no scan"
    # The worker starts once every entry is written (as a phone's burst lands before the queue drains):
    # the first message it takes scans; the rest fold into one trailing scan, not awaited here.
    log = tmp_path / "worker.log"
    with helpers.worker_process(database_url, redis_url, log, at=history.now):
        ran = helpers.wait_for_task(redis, "safety.scan_member", member_id=member)
    assert (ran["state"], ran["result"]) == ("SUCCESS", "'scan'"), log.read_text()[-4000:]

    # Exactly the table's flags, as the rules found them, routed to the member's coach.
    flags = helpers.flags_of(app, replayed.member_id)
    assert sorted(f.rule for f in flags) == sorted(expected)
    findings = {f.rule: f for f in evaluate(history)}
    for flag in flags:
        finding = findings[flag.rule]
        assert flag.tier == RULES[flag.rule].tier and flag.rule_version == RULES[flag.rule].version
        assert flag.status == "open" and flag.assigned_coach_id == coach_id
        assert len(flag.evidence) == max(1, len(finding.evidence))
        assert (flag.first_seen, flag.last_seen) == (finding.first_seen, finding.last_seen)
        assert flag.symptoms == list(finding.symptoms) and flag.medications == list(finding.medications)
    # One alert for each urgent flag, none for the others.
    urgent = {f.id for f in flags if f.tier == Tier.URGENT}
    alerts = helpers.alerts_of(app, replayed.member_id)
    assert sorted(a.flag_id for a in alerts) == sorted(urgent)

    # Replays: the scan again, the last day's entries sent again, the scan once more: nothing new.
    before = [(f.id, f.updated_at, tuple(f.evidence)) for f in flags]
    sent = len(helpers.notifications(app))
    with helpers.travel(history.now):
        assert helpers.scan(replayed.member_id, redis) == "scan"
    _, last_batch = replayed.batches[-1]
    results = helpers.send_batch(app, client, replayed.member_id, last_batch, at=history.now)
    assert {r["status"] for r in results} == {"unchanged"}
    with helpers.travel(history.now):
        assert helpers.scan(replayed.member_id, redis) == "scan"
    after = helpers.flags_of(app, replayed.member_id)
    assert [(f.id, f.updated_at, tuple(f.evidence)) for f in after] == before
    assert len(helpers.alerts_of(app, replayed.member_id)) == len(urgent)
    assert len(helpers.notifications(app)) == sent
