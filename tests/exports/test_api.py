"""POST/GET /insurer/exports: roles, own insurer only, the task through its body and a real worker,
the sweep that re-sends lost messages, and the audit trail."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from openapi_schema_validator import OAS31Validator
from sqlalchemy import select, update

from companion import db
from companion.accounts import services as accounts
from companion.audit.models import AuditEntry
from companion.exports import build_tx
from companion.exports.models import ExportJob
from workers.tasks import exports as export_tasks

BODY = {"period": {"start": "2026-01", "end": "2026-02"}, "format": "csv", "breakdown": ["goal_type"]}


@pytest.fixture
def insurers(app):
    with app.app_context(), db.unit_of_work():
        accounts.create_insurer("Plan A", "PLANA", now=db.utcnow())
        accounts.create_insurer("Plan B", "PLANB", now=db.utcnow())


def _queued(redis) -> list[dict]:
    return [json.loads(raw) for raw in redis.lrange("celery", 0, -1)]


def test_only_analysts_of_the_plan(api, register, staff, insurers):
    member = register()
    coach = staff("coach")
    assert api.post("/insurer/exports", BODY).status_code == 401
    assert member.post("/insurer/exports", BODY).status_code == 403
    assert coach.post("/insurer/exports", BODY).status_code == 403
    assert coach.get(f"/insurer/exports/{uuid.uuid4()}").status_code == 403


def test_request_build_and_download(app, staff, insurers, redis):
    analyst = staff("insurer_analyst", insurer_code="PLANA")
    r = analyst.post("/insurer/exports", BODY)
    assert r.status_code == 202, r.get_json()
    export_id = r.get_json()["id"]
    assert r.get_json() == {"id": export_id, "status": "queued"}
    (message,) = _queued(redis)  # sent after commit, by name, with the id only
    assert message["headers"]["task"] == "exports.build"
    assert export_id in message["headers"]["kwargsrepr"]

    status = analyst.get(f"/insurer/exports/{export_id}").get_json()
    assert (status["status"], status["download_url"], status["row_count"]) == ("queued", None, None)
    early = analyst.get(f"/insurer/exports/{export_id}/file")
    assert early.status_code == 409 and early.get_json()["error"]["export_status"] == "queued"

    with app.app_context():
        assert export_tasks.build.run(export_id) == "done"  # the task body, on the real database
        assert export_tasks.build.run(export_id) == "skipped"  # idempotent: a duplicate does nothing
    status = analyst.get(f"/insurer/exports/{export_id}").get_json()
    assert (status["status"], status["progress"]) == ("done", 100)
    assert status["download_url"] == f"/api/v1/insurer/exports/{export_id}/file"
    assert status["finished_at"].endswith("Z") and status["row_count"] > 0
    file = analyst.get(status["download_url"])
    assert file.status_code == 200 and file.content_type.startswith("text/csv")
    assert "outcomes-2026-01-2026-02.csv" in file.headers["Content-Disposition"]
    lines = file.get_data(as_text=True).splitlines()
    assert len(lines) == status["row_count"] + 1
    assert lines[1].startswith("2026-01,2026-02,false,total,all,members,0,members")  # an empty plan: 0 shown

    with app.app_context():
        actions = db.session.execute(select(AuditEntry.action).order_by(AuditEntry.id)).scalars().all()
    assert actions == ["export.requested", "export.built", "export.downloaded"]


def test_another_plans_export_is_not_found(staff, insurers):
    mine = staff("insurer_analyst", insurer_code="PLANA")
    theirs = staff("insurer_analyst", insurer_code="PLANB")
    export_id = mine.post("/insurer/exports", BODY).get_json()["id"]
    assert theirs.get(f"/insurer/exports/{export_id}").status_code == 404
    assert theirs.get(f"/insurer/exports/{export_id}/file").status_code == 404
    assert mine.get(f"/insurer/exports/{uuid.uuid4()}").status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**BODY, "period": {"start": "2026-01", "end": "2099-12"}}, "period.end"),  # not over
        ({**BODY, "period": {"start": "2026-03", "end": "2026-01"}}, "period.end"),
        ({**BODY, "period": {"start": "2026-1", "end": "2026-02"}}, "period"),
        ({**BODY, "format": "xlsx"}, "format"),
        ({**BODY, "breakdown": ["zip_code"]}, "breakdown"),
        ({**BODY, "member_ids": []}, "member_ids"),
    ],
)
def test_invalid_requests(staff, insurers, body, field):
    analyst = staff("insurer_analyst", insurer_code="PLANA")
    r = analyst.post("/insurer/exports", body)
    assert r.status_code == 422, r.get_json()
    assert any(name.startswith(field) for name in r.get_json()["error"]["fields"]), r.get_json()


def _job(app, export_id: str) -> ExportJob:
    with app.app_context():
        return db.session.get(ExportJob, uuid.UUID(export_id))


def test_the_sweep_resends_lost_messages_and_requeues_lost_workers(app, staff, insurers, redis):
    analyst = staff("insurer_analyst", insurer_code="PLANA")
    lost = analyst.post("/insurer/exports", BODY).get_json()["id"]
    fresh = analyst.post("/insurer/exports", BODY).get_json()["id"]
    dead = analyst.post("/insurer/exports", BODY).get_json()["id"]
    hopeless = analyst.post("/insurer/exports", BODY).get_json()["id"]
    redis.delete("celery")  # the messages are lost
    now = datetime.now(UTC)
    with app.app_context(), db.unit_of_work() as s:
        s.execute(
            update(ExportJob)
            .where(ExportJob.id == uuid.UUID(lost))
            .values(sent_at=now - timedelta(minutes=5))
        )
        for export_id, attempts in ((dead, 1), (hopeless, build_tx.MAX_ATTEMPTS)):
            s.execute(
                update(ExportJob)
                .where(ExportJob.id == uuid.UUID(export_id))
                .values(status="running", attempts=attempts, heartbeat_at=now - timedelta(minutes=20))
            )
    with app.app_context():
        assert export_tasks.sweep.run() == 2
    sent = sorted(m["headers"]["kwargsrepr"] for m in _queued(redis))
    assert len(sent) == 2 and lost in sent[0] + sent[1] and dead in sent[0] + sent[1]
    assert _job(app, fresh).status == "queued"  # sent a moment ago: left alone
    assert _job(app, dead).status == "queued"
    assert _job(app, hopeless).status == "failed"
    assert analyst.get(f"/insurer/exports/{hopeless}").get_json()["error"] == "The export could not be built."
    with app.app_context():
        assert export_tasks.sweep.run() == 0  # just re-sent: not again at once
        assert export_tasks.build.run(lost) == "done"


def test_a_real_worker_builds_it(app, staff, insurers, database_url, redis_url, tmp_path):
    """`celery worker` as production runs it, against the test database and Redis."""
    analyst = staff("insurer_analyst", insurer_code="PLANA")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")},
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "COMPANION_INSTANCE_PATH": str(tmp_path),
    }
    hostname = f"exports-test-{uuid.uuid4().hex[:8]}@%h"
    command = [sys.executable, "-m", "celery", "-A", "workers.celery_app", "worker", "--pool", "solo"]
    command += ["--loglevel", "WARNING", "--hostname", hostname, "--without-mingle", "--without-gossip"]
    log = open(tmp_path / "worker.log", "wb")  # noqa: SIM115 (closed below, after the worker stops)
    worker = subprocess.Popen(
        command, env=env, cwd=Path(__file__).resolve().parents[2], stdout=log, stderr=log
    )
    try:
        export_id = analyst.post("/insurer/exports", {**BODY, "format": "fhir"}).get_json()["id"]
        deadline = time.monotonic() + 60
        status = {}
        while time.monotonic() < deadline:
            status = analyst.get(f"/insurer/exports/{export_id}").get_json()
            if status["status"] in ("done", "failed"):
                break
            time.sleep(0.3)
        assert status["status"] == "done", (tmp_path / "worker.log").read_text()
        file = analyst.get(status["download_url"])
        assert file.content_type == "application/fhir+json"
        bundle = file.get_json()
        assert (bundle["resourceType"], bundle["type"]) == ("Bundle", "collection")
        assert "MeasureReport" in {e["resource"]["resourceType"] for e in bundle["entry"]}
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
        log.close()


def test_the_202_says_where_the_export_is(staff, insurers):
    analyst = staff("insurer_analyst", insurer_code="PLANA")
    r = analyst.post("/insurer/exports", BODY)
    assert r.status_code == 202
    assert r.headers["Location"] == f"/api/v1/insurer/exports/{r.get_json()['id']}"
    assert analyst.get(r.headers["Location"]).get_json()["status"] == "queued"


def test_the_current_month_to_date_is_a_partial_report(app, staff, insurers):
    analyst = staff("insurer_analyst", insurer_code="PLANA")
    today = datetime.now(UTC).date()
    month = f"{today:%Y-%m}"
    r = analyst.post("/insurer/exports", {**BODY, "period": {"start": month, "end": month}, "format": "json"})
    if today.day == 1:  # nothing of this month is over yet
        assert r.status_code == 422
        assert r.get_json()["error"]["fields"] == {
            "period.end": ["The current month has no day that is over yet."]
        }
        return
    assert r.status_code == 202, r.get_json()
    export_id = r.get_json()["id"]
    with app.app_context():
        assert export_tasks.build.run(export_id) == "done"
    report = analyst.get(f"/insurer/exports/{export_id}/file").get_json()
    spec = analyst.client.get("/api/openapi.json").get_json()
    document = {"$ref": "#/components/schemas/Report", "components": spec["components"]}
    assert [
        e.message for e in OAS31Validator(document).iter_errors(report)
    ] == []  # the file is as documented
    yesterday = today - timedelta(days=1)
    assert report["period"] == {
        "start": month,
        "end": month,
        "partial": True,
        "through": yesterday.isoformat(),
    }


def test_the_command_line_gives_the_reason_the_api_gives(staff, insurers, database_url, redis_url):
    from click.testing import CliRunner

    from companion.cli import main

    body = {**BODY, "period": {"start": "2026-03", "end": "2026-01"}}
    api_fields = staff("insurer_analyst", insurer_code="PLANA").post("/insurer/exports", body).get_json()
    env = {"DATABASE_URL": database_url, "REDIS_URL": redis_url, "COMPANION_EMBEDDED": ""}
    done = CliRunner(env=env).invoke(
        main, ["export", "--insurer", "PLANA", "--from", "2026-03", "--to", "2026-01", "--format", "json"]
    )
    assert done.exit_code == 1
    (reason,) = api_fields["error"]["fields"]["period.end"]
    assert f"The period is invalid. period.end: {reason}" in done.output


def test_the_data_dictionary_is_served_to_analysts(staff, insurers, register):
    from companion.exports import dictionary

    analyst = staff("insurer_analyst", insurer_code="PLANA")
    r = analyst.get("/insurer/measures")
    assert r.status_code == 200
    body = r.get_json()
    assert body == json.loads(json.dumps(dictionary.as_dict()))
    weekly = next(m for m in body["measures"] if m["code"] == "weekly_drinks_change")
    assert (weekly["ucum"], weekly["windows"]) == ("{drinks}/wk", ["baseline", "follow_up"])
    assert [c["column"] for c in body["csv_columns"]][:3] == ["period_start", "period_end", "partial"]
    assert register().get("/insurer/measures").status_code == 403
