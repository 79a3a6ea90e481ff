"""A client generated from the served document by openapi-python-client, as a phone developer would
make it, talking to the app (through httpx's WSGI transport, on the test database): it registers,
logs each record type, syncs a batch, reads the summary and parses a 409's `error.current`, all with
typed models. The generator must not warn, and no model may be a bare `dict[str, Any]` bag."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest

from companion import db
from companion.accounts import services as accounts
from companion.medications import schemas as medication_schemas
from companion.medications import services as medications
from tests.conftest import PASSWORD

PACKAGE = "companion_api_client"
ZONE = ZoneInfo("America/New_York")


@pytest.fixture
def generated(client, tmp_path: Path):
    """The client package, generated in this run from /api/openapi.json, imported from tmp_path."""
    spec = tmp_path / "openapi.json"
    spec.write_text(json.dumps(client.get("/api/openapi.json").get_json()))
    tool = Path(sys.executable).parent / "openapi-python-client"
    env = {**os.environ, "PATH": f"{tool.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    run = subprocess.run(
        [
            str(tool),
            "generate",
            "--path",
            str(spec),
            "--output-path",
            str(tmp_path / "out" / PACKAGE),
            "--meta",
            "none",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Warning" not in run.stdout + run.stderr, run.stdout + run.stderr
    sys.path.insert(0, str(tmp_path / "out"))
    importlib.invalidate_caches()
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(tmp_path / "out"))
        for name in [n for n in sys.modules if n == PACKAGE or n.startswith(PACKAGE + ".")]:
            del sys.modules[name]


def test_no_generated_model_is_an_untyped_bag(generated):
    models = Path(generated.__file__).parent / "models"
    bags = [p.name for p in models.glob("*.py") if "additional_properties: dict[str, Any]" in p.read_text()]
    assert bags == []
    assert len(list(models.glob("*.py"))) > 80


def test_a_phone_built_on_the_generated_client(app, generated, staff):
    from companion_api_client import AuthenticatedClient, Client
    from companion_api_client.api.accounts import register_member
    from companion_api_client.api.medications import create_medication_checkin, list_medication_plans
    from companion_api_client.api.tracking import (
        create_bac_reading,
        create_craving,
        get_summary,
        get_sync_changes,
        put_drink_log,
        sync_batch,
    )
    from companion_api_client.models import (
        BacDevice,
        BacReading,
        BacReadingInput,
        Checkin,
        CheckinInput,
        CheckinInputStatus,
        Craving,
        CravingInput,
        DrinkItem,
        DrinkItemKind,
        DrinkLog,
        DrinkLogInput,
        Error,
        Goal,
        GoalType,
        Plan,
        Register,
        Summary,
        SyncBatch,
        SyncChanges,
        SyncCravingItem,
        SyncCravingItemType,
        SyncDrinkLogInput,
        SyncDrinkLogItem,
        SyncDrinkLogItemType,
        SyncMedicationPlanChange,
        SyncResults,
        Token,
    )

    transport = httpx.WSGITransport(app=app)
    anonymous = Client(base_url="http://phone.test", httpx_args={"transport": transport})
    email = f"gen-{uuid.uuid4().hex[:8]}@example.org"
    registered = register_member.sync_detailed(
        client=anonymous,
        body=Register(
            email=email,
            password=PASSWORD,
            timezone="America/New_York",
            goal=Goal(type_=GoalType.MODERATE, weekly_limit=7.0),
        ),
    )
    assert registered.status_code == 201
    token = registered.parsed
    assert isinstance(token, Token)
    assert token.member.email == email
    phone = AuthenticatedClient(
        base_url="http://phone.test", token=token.access_token, httpx_args={"transport": transport}
    )

    now = datetime.now(ZONE)
    yesterday = now.date() - timedelta(days=1)
    logged = put_drink_log.sync_detailed(
        day=yesterday,
        client=phone,
        body=DrinkLogInput(
            drinks=[DrinkItem(kind=DrinkItemKind.BEER, volume_ml=355, abv_percent=5.0, count=2)],
            updated_at=now,
        ),
    )
    assert logged.status_code == 201
    assert isinstance(logged.parsed, DrinkLog)
    assert logged.parsed.date == yesterday
    assert logged.parsed.grams_ethanol == pytest.approx(28.0, abs=0.1)

    craving = create_craving.sync(
        client=phone,
        body=CravingInput(
            id=uuid.uuid4(), recorded_at=now - timedelta(hours=1), intensity=6, triggers=["stress"]
        ),
    )
    assert isinstance(craving, Craving)
    assert craving.intensity == 6

    reading = create_bac_reading.sync(
        client=phone,
        body=BacReadingInput(
            id=uuid.uuid4(),
            measured_at=now - timedelta(minutes=30),
            bac_g_dl=0.021,
            device=BacDevice(model="BACtrack C8", serial="C8-1"),
        ),
    )
    assert isinstance(reading, BacReading)
    assert reading.device.model == "BACtrack C8"

    # A check-in needs a plan from a coach: one started two days ago, its 08:00 dose of yesterday.
    coach = staff("coach")
    with app.app_context(), db.unit_of_work():
        accounts.assign_coach(email, coach.email, now=db.utcnow())
        actor = accounts.find_user_by_email(coach.email)
        plan_input = medication_schemas.PlanInputSchema().load(
            {"medication": "naltrexone", "dose_mg": 50, "times": ["08:00"]}
        )
        medications.create_plan(actor, token.member.id, plan_input, now=db.utcnow() - timedelta(days=2))
    plans = list_medication_plans.sync(client=phone)
    assert [p.medication for p in plans.items] == ["naltrexone"]
    slot = datetime.combine(yesterday, datetime.min.time().replace(hour=8), tzinfo=ZONE)
    checkin = create_medication_checkin.sync(
        client=phone,
        body=CheckinInput(
            id=uuid.uuid4(),
            plan_id=plans.items[0].id,
            scheduled_for=slot,
            status=CheckinInputStatus.TAKEN,
            taken_at=slot + timedelta(minutes=5),
        ),
    )
    assert isinstance(checkin, Checkin), checkin
    assert checkin.date == yesterday

    synced = sync_batch.sync_detailed(
        client=phone,
        body=SyncBatch(
            items=[
                SyncDrinkLogItem(
                    type_=SyncDrinkLogItemType.DRINK_LOG,
                    data=SyncDrinkLogInput(date=yesterday - timedelta(days=1), standard_drinks=0.0),
                ),
                SyncCravingItem(
                    type_=SyncCravingItemType.CRAVING,
                    data=CravingInput(id=uuid.uuid4(), recorded_at=now - timedelta(days=1), intensity=3),
                ),
            ]
        ),
    )
    assert synced.status_code == 200, synced.content
    assert isinstance(synced.parsed, SyncResults)
    assert [r.status.value for r in synced.parsed.results] == ["created", "created"]

    changes = get_sync_changes.sync(client=phone)  # the coach's plan, typed by its `type`
    assert isinstance(changes, SyncChanges)
    (plan_change,) = [c for c in changes.changes if isinstance(c, SyncMedicationPlanChange)]
    assert isinstance(plan_change.data, Plan) and plan_change.data.medication == "naltrexone"

    summary = get_summary.sync(client=phone)
    assert isinstance(summary, Summary)
    assert summary.as_of == now.date()
    assert summary.last_30_days.days_logged == 2
    assert summary.adherence.taken == 1

    stale = put_drink_log.sync_detailed(
        day=yesterday,
        client=phone,
        body=DrinkLogInput(standard_drinks=1.0, updated_at=now - timedelta(hours=2)),
    )
    assert stale.status_code == 409
    assert isinstance(stale.parsed, Error)
    assert stale.parsed.error.code.value == "conflict"
    current = stale.parsed.error.current
    assert isinstance(current, DrinkLog)
    assert current.date == yesterday
    assert current.drinks[0].volume_ml == 355
