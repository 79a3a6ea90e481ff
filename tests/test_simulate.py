"""`companion simulate`: a population the app takes for its own (the API reads it; the rules hold), varied
as a real one is, and the same for the same seed."""

from __future__ import annotations

import random
import statistics
import uuid
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from click.testing import CliRunner
from sqlalchemy import text

from companion import db, simulate
from companion.cli import main
from companion.domain import drinking, localtime, plans
from companion.domain.medications import side_effect_codes
from companion.runtime import libpq_url
from tests.conftest import Api

NOW = datetime(2026, 11, 24, 2, 30, tzinfo=UTC)


def _rows(sql: str, **params):
    return db.session.execute(text(sql), params).all()


def _sign_in(client, email: str) -> Api:
    answer = Api(client).post("/auth/token", {"email": email, "password": simulate.SIMULATED_PASSWORD})
    assert answer.status_code == 200, answer.get_json()
    return Api(client, answer.get_json()["access_token"])


def test_simulated_population_obeys_the_apps_rules(app, client, database_url):
    now = db.utcnow().replace(microsecond=0)
    done = simulate.simulate(libpq_url(database_url), members=80, days=45, seed=5, now=now)
    assert done.rows["members"] == 80 and done.rows["drink_logs"] > 80 * 15
    with app.app_context():
        members = {
            r.id: r for r in _rows("SELECT id, timezone, country, sex, goal_type, weekly_limit FROM members")
        }
        assert len(members) == 80
        assert {m.goal_type for m in members.values()} == {"abstain", "moderate"}
        assert len({m.timezone for m in members.values()}) >= 8
        assert len({m.country for m in members.values()}) >= 4

        # Drink logs: grams from what was entered in the member's country's size, heavy by sex,
        # provenance by the local day it was entered, nothing entered after now.
        logs = _rows(
            "SELECT member_id, date, grams_ethanol, entered_standard_drinks, drinks, heavy, source,"
            " created_at FROM drink_logs"
        )
        for log in logs:
            m = members[log.member_id]
            if log.entered_standard_drinks is not None:
                assert log.drinks is None
                grams = drinking.grams_from_standard_drinks(log.entered_standard_drinks, m.country)
            else:
                grams = drinking.grams_of(
                    [
                        drinking.DrinkItem(
                            drinking.DrinkKind(d["kind"]),
                            d["volume_ml"],
                            Decimal(d["abv_percent"]),
                            d["count"],
                        )
                        for d in log.drinks
                    ]
                )
            assert log.grams_ethanol == grams
            assert log.heavy == drinking.is_heavy_day(grams, m.sex)
            entered_on = localtime.local_date(log.created_at, m.timezone)
            assert log.source == drinking.log_source(log.date, today=entered_on).value
            assert log.date <= entered_on and log.created_at <= now
        assert {log.source for log in logs} == {"realtime", "recall"}
        heavy_share = sum(log.heavy for log in logs) / len(logs)
        dry_share = sum(log.grams_ethanol == 0 for log in logs) / len(logs)
        assert 0.05 < heavy_share < 0.6 and 0.2 < dry_share < 0.8

        # Local dates of instants, in the member's zone.
        for table, column in (("cravings", "recorded_at"), ("bac_readings", "measured_at")):
            for member_id, day, instant in _rows(f"SELECT member_id, date, {column} FROM {table}"):
                assert day == localtime.local_date(instant, members[member_id].timezone)
                assert instant <= now

        # Plans are valid; baclofen titrates by 5 mg a dose; check-ins name slots the plan schedules.
        plan_rows = {r.id: r for r in _rows("SELECT * FROM medication_plans")}
        domain_plans = {}
        for row in plan_rows.values():
            plan = plans.Plan(
                row.id,
                row.medication,
                row.dose_mg,
                tuple(row.times),
                row.start_date,
                row.end_date,
                tuple(
                    plans.PlanStep(
                        datetime.fromisoformat(s["from_date"]).date(),
                        Decimal(s["dose_mg"]),
                        tuple(datetime.strptime(t, "%H:%M").time() for t in s["times"]),
                    )
                    for s in row.steps
                ),
            )
            assert plans.plan_problems(plan) == {}
            domain_plans[row.id] = plan
            if row.medication == "baclofen":
                doses = [plan.dose_mg, *(s.dose_mg for s in plan.steps)]
                assert doses[0] == 5 and doses[1] == 10 and max(doses) * 3 <= 80
        checkins = _rows(
            "SELECT member_id, id, plan_id, scheduled_for, date, status, taken_at FROM medication_checkins"
        )
        assert checkins
        for c in checkins[:: max(1, len(checkins) // 400)]:
            slot = plans.slot_matches(domain_plans[c.plan_id], c.scheduled_for, members[c.member_id].timezone)
            assert slot is not None and slot.local_date == c.date
            assert (c.status == "taken") == (c.taken_at is not None)
        for medication, code in _rows(
            "SELECT p.medication, s.code FROM side_effect_reports s"
            " JOIN medication_checkins c ON (c.member_id, c.id) = (s.member_id, s.checkin_id)"
            " JOIN medication_plans p ON p.id = c.plan_id"
        ):
            assert code in side_effect_codes(medication)

        # Sync numbers: unique, and the real sequence is past them.
        seqs = [
            r[0]
            for r in _rows(
                "SELECT change_seq FROM drink_logs UNION ALL SELECT change_seq FROM cravings"
                " UNION ALL SELECT change_seq FROM medication_checkins UNION ALL SELECT change_seq FROM"
                " bac_readings UNION ALL SELECT change_seq FROM medication_plans"
            )
        ]
        assert len(seqs) == len(set(seqs))
        next_seq = _rows("SELECT nextval('sync_change_seq')")[0][0]
        assert next_seq > max(seqs)

        # Cravings track drinking: stronger on days with drinks.
        by_drinking = defaultdict(list)
        for grams, intensity in _rows(
            "SELECT l.grams_ethanol, c.intensity FROM cravings c JOIN drink_logs l USING (member_id, date)"
        ):
            by_drinking[grams > 0].append(intensity)
        assert statistics.mean(by_drinking[True]) > statistics.mean(by_drinking[False]) + 1

    # Through the API, as the member: the summary, the lists, sync, and a new write on top.
    with app.app_context():
        engaged = _rows(
            "SELECT u.email FROM users u JOIN drink_logs l ON l.member_id = u.id"
            " GROUP BY u.email ORDER BY count(*) DESC, u.email LIMIT 1"
        )[0][0]
    member = _sign_in(client, engaged)
    summary = member.get("/me/summary")
    assert summary.status_code == 200, summary.get_json()
    assert summary.get_json()["last_30_days"]["days_logged"] >= 10
    listed = member.get("/drink-logs").get_json()["items"]
    assert listed and all(item["date"] <= summary.get_json()["as_of"] for item in listed)
    changes = member.get("/sync").get_json()
    assert changes["changes"] and changes["cursor"]
    assert member.get("/medication-plans").status_code == 200
    today = summary.get_json()["as_of"]
    written = member.put(f"/drink-logs/{today}", {"standard_drinks": "0"})
    assert written.status_code in (200, 201)
    after = member.get(f"/sync?since={changes['cursor']}").get_json()
    assert after["cursor"] != changes["cursor"]


def test_trajectories_improve_relapse_and_drift_on_average():
    rng = random.Random(3)
    drift = simulate.Trajectory.draw(rng, goal="abstain", days=120, kind="drift", drift_day=40)
    assert drift.engagement(10) == drift.log_share and drift.engagement(60) < drift.log_share / 10
    relapse = simulate.Trajectory.draw(
        rng, goal="abstain", days=120, kind="relapse", relapse_day=60, relapse_days=10
    )
    assert relapse.level(59) < relapse.level(60) == 1.0 and relapse.level(70) < 1.0
    improving = [simulate.Trajectory.draw(rng, goal="moderate", days=90, kind="improve") for _ in range(300)]
    early = statistics.mean(t.day(rng, 0).drinks for t in improving)
    late = statistics.mean(t.day(rng, 89).drinks for t in improving)
    assert late < early * 0.7


def test_side_effects_at_label_frequencies():
    rng = random.Random(11)
    start = NOW.date()
    with_effect: Counter[tuple[str, str]] = Counter()
    on: Counter[str] = Counter()
    for _ in range(6000):
        drawn = simulate.draw_plan(
            rng, uuid.UUID(int=rng.getrandbits(128)), start, start + timedelta(days=90)
        )
        on[drawn.plan.medication] += 1
        for code in drawn.effects:
            with_effect[drawn.plan.medication, code] += 1
    for medication, effects in simulate.SIDE_EFFECT_SHARE.items():
        assert on[medication] > 300
        for code, share in effects.items():
            observed = with_effect[medication, code] / on[medication]
            assert abs(observed - share) < 0.05 + share * 0.3, (medication, code, observed, share)


def test_same_seed_same_people():
    insurer = uuid.UUID(int=1)
    first = list(simulate.generate(members=12, days=20, seed=9, now=NOW, insurer_id=insurer))
    again = list(simulate.generate(members=12, days=20, seed=9, now=NOW, insurer_id=insurer))
    other = list(simulate.generate(members=12, days=20, seed=10, now=NOW, insurer_id=insurer))
    assert first == again and first != other
    # A member's history does not depend on how many others there are.
    fewer = list(simulate.generate(members=6, days=20, seed=9, now=NOW, insurer_id=insurer))
    member0 = next(line.split("\t")[0] for table, line in first if table == "members")

    def of_member0(rows):
        # Sync numbers count across all members; everything else is the member's own.
        return [
            (t, line.rsplit("\t", 1)[0] if simulate.COLUMNS[t].endswith("change_seq") else line)
            for t, line in rows
            if line.startswith(member0)
        ]

    assert len(of_member0(first)) > 10 and of_member0(first) == of_member0(fewer)


def test_the_command_writes_a_population_once_per_seed(app, config, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", config.database_url)
    monkeypatch.setenv("REDIS_URL", config.redis_url)
    runner = CliRunner()
    first = runner.invoke(main, ["simulate", "--members", "5", "--days", "3", "--seed", "21"])
    assert first.exit_code == 0, first.output
    assert "5 members" in first.output and "drink_logs" in first.output
    again = runner.invoke(main, ["simulate", "--members", "5", "--days", "3", "--seed", "21"])
    assert again.exit_code != 0 and "already" in again.output
    bad = runner.invoke(main, ["simulate", "--members", "0"])
    assert bad.exit_code == 2 and "--members" in bad.output
