"""Issue 7's done criteria, through the API as members and analysts use it: a plan of 12 consenting
members is reported with the values worked out by hand, a plan of 8 is suppressed, a withdrawn consent
leaves every later export, and `companion export` writes the same file as the API."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import time_machine

from companion import db
from companion.accounts import services as accounts
from tests.conftest import PASSWORD, Api, registration

# The hand-worked member of tests/domain/test_outcomes.py (`hand_member`), entered through the API:
# enrolled 2026-01-10 in New York, a woman with an abstain goal, US standard drinks.
DRINKS = {
    "2026-01-10": 5,  # 70 g: heavy
    "2026-01-11": 2,
    "2026-01-12": 0,
    "2026-01-13": 0,
    "2026-02-02": 1,
    "2026-02-03": 0,
    "2026-02-04": 0,
    "2026-02-05": 0,
}
CRAVINGS = [
    ("2026-01-11T12:00:00-05:00", 6),
    ("2026-01-12T12:00:00-05:00", 8),
    ("2026-02-03T12:00:00-05:00", 3),
]
# Issue 19: weekly PACS (5 items, 0-6). Baseline: the first PACS whose week ends on or after enrollment
# (2026-01-10) and starts within its first 28 days: the week of 2026-01-05. Follow-up: the latest PACS
# whose week starts in the window, 28 or more days after the baseline's week: the week of 2026-02-02.
# Members alternate between two hand-worked pairs; the first also answers the week of 2026-01-12 (30),
# which is neither.
PACS = (
    {"2026-01-05": [4, 4, 4, 4, 4], "2026-01-12": [6, 6, 6, 6, 6], "2026-02-02": [2, 2, 2, 2, 2]},  # 20, 10
    {"2026-01-05": [4, 4, 3, 3, 3], "2026-02-02": [3, 3, 2, 2, 2]},  # 17, 12
    {"2026-01-05": [4, 4, 4, 4, 4], "2026-02-02": [2, 2, 2, 2, 2]},  # 20, 10
)
BODY = {"period": {"start": "2026-01", "end": "2026-02"}, "format": "json"}
ENROLL = datetime(2026, 1, 10, 15, 0, tzinfo=UTC)
LOGGED = datetime(2026, 2, 6, 15, 0, tzinfo=UTC)
REPORTED = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)

_addresses = iter(range(1, 10_000))
COMPANION = Path(sys.executable).with_name("companion")


def _client(app):
    client = app.test_client()
    n = next(_addresses)
    client.environ_base["REMOTE_ADDR"] = f"10.77.{n // 250}.{n % 250 + 1}"
    return client


def _register(app, code: str, *, consent: bool) -> str:
    """A member through POST /auth/register (a client of their own: registrations are rate-limited)."""
    body = registration(
        timezone="America/New_York",
        sex="female",
        country="US",
        enrollment_code=code,
        consents={"outcome_sharing": consent},
    )
    r = Api(_client(app)).post("/auth/register", body)
    assert r.status_code == 201, r.get_json()
    return body["email"]


def _sign_in(app, email: str) -> Api:
    client = _client(app)
    r = Api(client).post("/auth/token", {"email": email, "password": PASSWORD})
    assert r.status_code == 200, r.get_json()
    return Api(client, r.get_json()["access_token"])


def _log_the_hand_worked_days(member: Api, n: int = 2) -> None:
    """The hand-worked days, and the `n`-th member's PACS (`PACS`: the first, then alternating)."""
    for week_of, items in PACS[0 if n == 0 else 1 + n % 2].items():
        r = member.post("/pacs", {"id": str(uuid.uuid4()), "week_of": week_of, "items": items})
        assert r.status_code == 201 and r.get_json()["total"] == sum(items), r.get_json()
    for day, drinks in DRINKS.items():
        assert member.put(f"/drink-logs/{day}", {"standard_drinks": drinks}).status_code == 201
    for at, intensity in CRAVINGS:
        r = member.post("/cravings", {"id": str(uuid.uuid4()), "recorded_at": at, "intensity": intensity})
        assert r.status_code == 201, r.get_json()


def _export(app, analyst: Api) -> dict:
    r = analyst.post("/insurer/exports", BODY)
    assert r.status_code == 202, r.get_json()
    from workers.tasks import exports as export_tasks

    with app.app_context():
        assert export_tasks.build.run(r.get_json()["id"]) == "done"
    status = analyst.get(f"/insurer/exports/{r.get_json()['id']}").get_json()
    file = analyst.get(status["download_url"])
    assert file.status_code == 200
    return {"raw": file.get_data(), **file.get_json()}


def _measures(report: dict, breakdown: str = "total", category: str = "all") -> dict[str, dict]:
    cell = next(c for c in report["cells"] if (c["breakdown"], c["category"]) == (breakdown, category))
    return {m["measure"]: m for m in cell["measures"]}


def test_reported_suppressed_revoked_and_the_command_line(app, staff, database_url, redis_url, tmp_path):
    with app.app_context(), db.unit_of_work():
        accounts.create_insurer("Plan A", "PLANA", now=db.utcnow())
        accounts.create_insurer("Plan B", "PLANB", now=db.utcnow())
    with time_machine.travel(ENROLL, tick=False):
        plan_a = [_register(app, "PLANA", consent=True) for _ in range(12)]
        revoker = _register(app, "PLANA", consent=True)
        silent = _register(app, "PLANA", consent=False)
        plan_b = [_register(app, "PLANB", consent=True) for _ in range(8)]
    with time_machine.travel(LOGGED, tick=False):
        for n, email in enumerate([*plan_a, revoker, silent, *plan_b]):
            _log_the_hand_worked_days(_sign_in(app, email), n)

    with time_machine.travel(REPORTED, tick=False):
        analyst_a = staff("insurer_analyst", insurer_code="PLANA")
        analyst_b = staff("insurer_analyst", insurer_code="PLANB")
        before = _export(app, analyst_a)
        assert _measures(before)["members"]["value"] == 13  # the revoker still consents; `silent` never did
        r = _sign_in(app, revoker).patch("/me", {"consents": {"outcome_sharing": False}})
        assert r.status_code == 200, r.get_json()
        after = _export(app, analyst_a)
        small = _export(app, analyst_b)

    # 13 consenting members, each with the same hand-worked days: every value as worked out by hand
    # (tests/domain/test_outcomes.py), denominators 13 members' worth.
    got = _measures(before)
    expected = {
        "pda": (62.5, 13, 104),  # 5 of 8 logged days alcohol-free, for each member
        "phdd": (12.5, 13, 104),
        "drinks_per_drinking_day": (2.7, 13, 39),  # 112 g / 3 drinking days / 14 g
        "engagement": (16, 13, 650),  # 8 days with an entry of 50 enrolled days
    }
    for name, (value, members, units) in expected.items():
        days = got[name]["denominator"] if name == "engagement" else got[name]["days"]
        assert (got[name]["value"], got[name]["members"], days) == (value, members, units)
    weekly = got["weekly_drinks_change"]
    assert (weekly["baseline"], weekly["follow_up"], weekly["value"], weekly["members"]) == (
        12.3,
        1.8,
        -10.5,
        13,
    )
    assert (got["who_improved_1_level"]["value"], got["who_improved_1_level"]["numerator"]) == (100, 13)
    assert got["who_improved_2_levels"]["value"] == 0
    assert (
        got["craving_change"]["baseline"],
        got["craving_change"]["follow_up"],
        got["craving_change"]["value"],
    ) == (7, 3, -4)
    # PACS of the 13 (members 0-12): 7 with 20 then 10 (the even ones), 6 with 17 then 12 (the odd ones).
    pacs = got["pacs_change"]
    assert (pacs["baseline"], pacs["follow_up"], pacs["value"], pacs["members"]) == (
        18.6,  # (7 x 20 + 6 x 17) / 13 = 18.62
        10.9,  # (7 x 10 + 6 x 12) / 13 = 10.92
        -7.7,  # -100 / 13
        13,
    )
    assert (pacs["unit"], pacs["suppressed"], pacs["status_reason"]) == ("PACS score (0-30)", False, None)
    assert (got["psnhdd"]["value"], got["retention_30d"]["value"]) == (0, 0)
    assert not any(m["suppressed"] for m in got.values())

    # One member withdrew: the same period again would publish counts 1 less than the report before,
    # and subtracting the two would single them out (issue 21): the release ledger hides every such
    # count, and the measures behind them.
    revoked = _measures(after)
    assert revoked["members"]["suppressed"] and revoked["members"]["value"] is None
    assert revoked["pacs_change"]["suppressed"] and revoked["pacs_change"]["baseline"] is None
    assert not any(
        m["members"] is not None
        and got[name]["members"] is not None
        and 1 <= abs(m["members"] - got[name]["members"]) <= 10
        for name, m in revoked.items()
    )

    # 8 consenting members: nothing but suppressed cells.
    (cell,) = small["cells"]
    assert cell["suppressed"] and all(m["suppressed"] and m["value"] is None for m in cell["measures"])
    hidden = _measures(small)["pacs_change"]
    assert (hidden["baseline"], hidden["follow_up"], hidden["members"], hidden["status_reason"]) == (
        None,
        None,
        None,
        "small_cell",
    )

    # The command line builds the same file, and is audited like the API.
    out = tmp_path / "report.json"
    env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": redis_url}
    env.pop("COMPANION_EMBEDDED", None)
    done = subprocess.run(
        [
            str(COMPANION),
            "export",
            *("--insurer", "plana", "--from", "2026-01", "--to", "2026-02"),
            "-o",
            str(out),
            "--format",
            "json",
        ],
        env=env,
        capture_output=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr.decode()
    # The progress bar (on a terminal it redraws; piped, click prints its label) and a summary line.
    assert done.stderr.decode().startswith("members") and "15 rows written" in done.stderr.decode()
    assert out.read_bytes() == after["raw"]
    from sqlalchemy import select

    from companion.audit.models import AuditEntry

    with app.app_context():
        actions = db.session.execute(select(AuditEntry.action)).scalars().all()
    assert actions.count("export.built_by_command_line") == 1
    assert actions.count("export.requested") == 3 and actions.count("export.downloaded") == 3

    assert Decimal(str(got["pda"]["value"])) == Decimal("62.5")
