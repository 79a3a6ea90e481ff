"""Escalation never goes nowhere (issue 26): an urgent flag past its SLA with no admin account to tell
is logged at error level and shown as a banner on each coach's dashboard page, until an admin exists."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from companion import db
from companion.safety import escalation, services
from tests.dashboard import pages
from tests.safety import helpers

NOW = datetime(2026, 11, 20, 18, 0, tzinfo=UTC)
BANNER = "no admin account exists to escalate to"


def test_an_overdue_urgent_flag_with_no_admin_is_logged_and_bannered(app, client, caplog):
    with helpers.travel(NOW - timedelta(days=3)):
        _, coach_email = helpers.new_staff(app, "coach")
        member_id, email = helpers.new_member(app, client, timezone="America/New_York")
        helpers.assign(app, email, coach_email)
        helpers.create_plan(
            app, coach_email, member_id, {"medication": "disulfiram", "dose_mg": 250, "times": ["08:00"]},
            now=NOW - timedelta(days=3),
        )  # fmt: skip
    with helpers.travel(NOW):
        api = helpers.api_for(app, client, member_id)
        assert api.put("/drink-logs/2026-11-20", {"standard_drinks": "3"}).status_code == 201
        with app.app_context(), db.unit_of_work():
            assert services.scan_member(member_id, now=NOW).opened == 1

    def escalate(at: datetime) -> int:
        with app.app_context(), db.unit_of_work():
            return escalation.escalate_overdue(now=at)

    def page(at: datetime) -> str:
        browser = app.test_client()  # a fresh sign-in each time (the clock jumps past the idle timeout)
        with helpers.travel(at):
            assert pages.sign_in(browser, coach_email).status_code == 302
            for path in ("/dashboard/flags", "/dashboard/members", f"/dashboard/members/{member_id}"):
                r = browser.get(path)
                assert r.status_code == 200, path
            return r.get_data(as_text=True)

    # Within the SLA: nothing to say.
    assert escalate(NOW + timedelta(hours=1)) == 0
    assert BANNER not in page(NOW + timedelta(hours=1))
    # Past it, with no admin: an error in the logs and a banner on the coach's every page.
    late = NOW + timedelta(hours=2, minutes=1)
    assert escalate(late) == 1
    [record] = [r for r in caplog.records if "no admin account" in r.getMessage()]
    assert record.levelname == "ERROR"
    assert "1 urgent flag past the 2-hour SLA, and " + BANNER in page(late)
    # An admin now exists: escalations reach someone, the banner goes.
    helpers.new_staff(app, "admin")
    assert BANNER not in page(late)
