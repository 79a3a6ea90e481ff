"""Nudge fixtures: the fake push gateway, channels pointed at it, members with phones, a dispatcher tick."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from companion import db
from companion.accounts.models import Device, Member
from companion.notifications import Channels, build_channels
from companion.nudges import delivery_tx as delivery
from companion.nudges import dispatcher_tx
from companion.nudges.models import Delivery, Nudge
from tests import fake_push

LEASE = timedelta(minutes=2)


@pytest.fixture
def gateway() -> Iterator[fake_push.FakeGateway]:
    pem, public = fake_push.make_apns_key()
    fake = fake_push.FakeGateway(apns_public_key=public).start()
    fake.pem = pem  # type: ignore[attr-defined]  # the key rides on the fake gateway for push_settings
    yield fake
    fake.stop()


def push_settings(gateway: fake_push.FakeGateway, key_file: Path, **overrides: Any) -> dict[str, Any]:
    """Flask-style settings pointing both channels at the fake gateway."""
    key_file.write_text(gateway.pem)  # type: ignore[attr-defined]  # set by the gateway fixture
    settings = {
        "COMPANION_FCM_PROJECT_ID": fake_push.FCM_PROJECT,
        "COMPANION_FCM_ACCESS_TOKEN": fake_push.FCM_BEARER,
        "COMPANION_FCM_BASE_URL": gateway.url,
        "COMPANION_APNS_KEY_FILE": str(key_file),
        "COMPANION_APNS_KEY_ID": fake_push.APNS_KEY_ID,
        "COMPANION_APNS_TEAM_ID": fake_push.APNS_TEAM_ID,
        "COMPANION_APNS_TOPIC": fake_push.APNS_TOPIC,
        "COMPANION_APNS_BASE_URL": gateway.apns_url,  # HTTP/2 only, as Apple
        "COMPANION_PUSH_TIMEOUT_SECONDS": 5,
    }
    settings.update(overrides)
    return settings


@pytest.fixture
def channels(gateway: fake_push.FakeGateway, tmp_path: Path) -> Iterator[Channels]:
    made = build_channels(push_settings(gateway, tmp_path / "apns.p8"))
    yield made
    made.close()


@pytest.fixture
def tick(app, channels: Channels) -> Callable[..., dispatcher_tx.Tick]:
    """One dispatcher tick at `at`, delivering inline (as the workers would) through the fake gateway."""

    def run(at: datetime, **kwargs: Any) -> dispatcher_tx.Tick:
        with app.app_context():
            return dispatcher_tx.dispatch_due(
                now=lambda: at,
                send=lambda ids: delivery.deliver(ids, channels=channels, lease=LEASE, now=lambda: at),
                **kwargs,
            )

    return run


@pytest.fixture
def deliver(app, channels: Channels) -> Callable[..., delivery.Delivered]:
    def run(ids: Sequence[uuid.UUID], at: datetime) -> delivery.Delivered:
        with app.app_context():
            return delivery.deliver(ids, channels=channels, lease=LEASE, now=lambda: at)

    return run


def add_device(app, member_id: uuid.UUID, platform: str = "android", token: str | None = None) -> str:
    token = token or f"{platform}-{uuid.uuid4().hex}"
    with app.app_context(), db.unit_of_work() as session:
        session.add(Device(member_id=member_id, platform=platform, push_token=token))
    return token


def nudges_of(app, member_id: uuid.UUID | None = None) -> list[Nudge]:
    with app.app_context():
        query = db.session.query(Nudge)
        if member_id is not None:
            query = query.filter(Nudge.member_id == member_id)
        rows = query.order_by(Nudge.due_at, Nudge.kind).all()
        db.session.expunge_all()
        return rows


def deliveries_of(app, nudge_id: uuid.UUID) -> list[Delivery]:
    with app.app_context():
        rows = db.session.query(Delivery).filter(Delivery.nudge_id == nudge_id).all()
        db.session.expunge_all()
        return rows


def update_member(app, member_id: uuid.UUID, **values: Any) -> None:
    with app.app_context(), db.unit_of_work() as session:
        member = session.get(Member, member_id)
        for name, value in values.items():
            setattr(member, name, value)


def make_member(app, *, timezone: str = "America/New_York", **fields: Any) -> uuid.UUID:
    """A member row made directly (registration through the API hashes a password: slow in bulk)."""
    from companion.accounts.models import Role, User

    fields.setdefault("muted_kinds", [])
    with app.app_context(), db.unit_of_work() as session:
        user = User(email=f"m-{uuid.uuid4().hex[:12]}@example.org", role=Role.MEMBER)
        member = Member(user=user, timezone=timezone, goal_type="abstain", **fields)
        session.add_all([user, member])
        session.flush()
        return user.id


def add_plan(app, member_id: uuid.UUID, times: Sequence[str], start, **fields: Any) -> uuid.UUID:
    from datetime import time as wall
    from decimal import Decimal

    from companion.medications.models import MedicationPlan
    from companion.sync_seq import stamp

    with app.app_context(), db.unit_of_work() as session:
        plan = MedicationPlan(
            id=uuid.uuid4(),
            member_id=member_id,
            medication="naltrexone",
            dose_mg=Decimal(50),
            times=[wall.fromisoformat(t) for t in times],
            start_date=start,
            steps=[],
            **fields,
        )
        stamp(plan, None)
        session.add(plan)
        return plan.id


def add_drink_log(app, member_id: uuid.UUID, day, grams: str = "0", made_at: datetime | None = None) -> None:
    from decimal import Decimal

    from companion.sync_seq import stamp
    from companion.tracking.models import DrinkLog

    with app.app_context(), db.unit_of_work() as session:
        log = DrinkLog(
            member_id=member_id, date=day, grams_ethanol=Decimal(grams), heavy=False, source="realtime"
        )
        if made_at is not None:
            log.created_at = log.updated_at = log.server_updated_at = made_at
        stamp(log, None)
        session.add(log)
