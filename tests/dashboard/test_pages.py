"""The dashboard through the Flask test client: sign-in, who may open what, idle timeout, CSRF,
cookies, audit, and each form. The same pages in a real browser: test_browser.py."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from sqlalchemy import func, select

from companion import db
from companion.audit.models import AuditEntry
from companion.nudges.models import Message
from companion.safety.models import Flag
from tests.dashboard import pages
from tests.dashboard import world as world_builder


@pytest.fixture
def world(app, client):
    return world_builder.build(app, client)


@pytest.fixture
def coach(app, client, world):
    r = pages.sign_in(client, world.emails["coach_a"])
    assert r.status_code == 302 and r.headers["Location"].endswith("/dashboard/flags")
    return client


def count(app, model, *where):
    with app.app_context():
        return db.session.execute(select(func.count()).select_from(model).where(*where)).scalar_one()


def flag_status(app, flag_id):
    with app.app_context():
        return db.session.get(Flag, flag_id).status


def test_signed_out_pages_lead_to_the_sign_in(client, world):
    for path in (
        "/dashboard/",
        "/dashboard/flags",
        "/dashboard/members",
        f"/dashboard/members/{world.ids['alice']}",
    ):
        r = client.get(path)
        assert r.status_code == 302, path
        assert "/dashboard/login" in r.headers["Location"]


def test_a_wrong_password_is_refused(client, world):
    r = pages.sign_in(client, world.emails["coach_a"], "wrong password!")
    assert r.status_code == 401
    assert "The email or password is wrong." in r.get_data(as_text=True)
    assert client.get("/dashboard/flags").status_code == 302


@pytest.mark.parametrize("who", ["analyst", "alice"])
def test_analysts_and_members_cannot_sign_in(client, world, who):
    r = pages.sign_in(client, world.emails[who])
    assert r.status_code == 403
    assert "for coaches and admins" in r.get_data(as_text=True)
    assert client.get("/dashboard/flags").status_code == 302  # still signed out


def test_an_analyst_session_opens_nothing(app, client, world):
    """Even holding a session cookie (made by hand here, with a server-side session as a sign-in would
    make one), an insurer analyst opens no page."""
    from companion.auth import sessions as staff_sessions

    client.environ_base["HTTP_USER_AGENT"] = "analyst-browser"
    with app.app_context(), db.unit_of_work():
        sid = staff_sessions.start(
            world.ids["analyst"], agent="analyst-browser", address=client.environ_base["REMOTE_ADDR"],
            now=db.utcnow(),
        ).id  # fmt: skip
    with client.session_transaction() as sess:
        sess["_user_id"] = f"{world.ids['analyst']}:0"
        sess["_fresh"] = True
        sess["sid"] = str(sid)
        sess["dashboard_seen_at"] = datetime.now(UTC).timestamp()
    for path in (
        "/dashboard/flags",
        "/dashboard/members",
        f"/dashboard/members/{world.ids['alice']}",
        "/dashboard/audit",
    ):
        r = client.get(path)
        assert r.status_code == 403, path
        assert "Alice" not in r.get_data(as_text=True)


def test_the_queue_is_urgent_first_then_oldest(coach, world):
    html = coach.get("/dashboard/flags").get_data(as_text=True)
    order = re.findall(r'id="flag-([0-9a-f-]+)"', html)
    assert order == [str(world.flags[k]) for k in ("alice_urgent", "alice_warning", "ann_info")]
    assert str(world.flags["bob_urgent"]) not in html  # coach_b's member


def test_the_queue_filters_by_tier_and_status(app, coach, world):
    html = coach.get("/dashboard/flags?tier=warning").get_data(as_text=True)
    assert re.findall(r'id="flag-([0-9a-f-]+)"', html) == [str(world.flags["alice_warning"])]
    html = coach.get("/dashboard/flags?status=resolved").get_data(as_text=True)
    assert "No flags here." in html
    assert coach.get("/dashboard/flags?tier=catastrophic").status_code == 400
    refused = coach.get("/dashboard/flags?cursor=!!")
    assert refused.status_code == 400
    assert "cursor: Not a cursor this server issued." in refused.get_data(as_text=True)


def test_acknowledge_and_resolve_in_place(app, coach, world):
    flag = world.flags["alice_urgent"]
    r = pages.post_form(
        coach,
        "/dashboard/flags?tier=urgent",
        f"/dashboard/flags/{flag}/acknowledge",
        back="/dashboard/flags?tier=urgent",
    )
    assert r.status_code == 302 and r.headers["Location"] == f"/dashboard/flags?tier=urgent#flag-{flag}"
    assert flag_status(app, flag) == "acknowledged"
    r = pages.post_form(
        coach, "/dashboard/flags", f"/dashboard/flags/{flag}/resolve", note="", back="/dashboard/flags"
    )
    assert flag_status(app, flag) == "acknowledged"  # a note is required
    assert "note:" in coach.get("/dashboard/flags").get_data(as_text=True)
    pages.post_form(
        coach, "/dashboard/flags", f"/dashboard/flags/{flag}/resolve", note="Called; dose lowered."
    )
    assert flag_status(app, flag) == "resolved"
    # another coach's flag: 404, untouched
    other = world.flags["bob_urgent"]
    r = pages.post_form(coach, "/dashboard/flags", f"/dashboard/flags/{other}/acknowledge")
    assert r.status_code == 404 and flag_status(app, other) == "open"


def test_an_open_redirect_is_not_followed(coach, world):
    flag = world.flags["alice_urgent"]
    r = pages.post_form(
        coach, "/dashboard/flags", f"/dashboard/flags/{flag}/acknowledge", back="https://evil.example/"
    )
    assert r.headers["Location"].startswith("/dashboard/flags#")


def test_forms_without_a_csrf_token_are_refused(app, coach, world):
    flag = world.flags["alice_urgent"]
    r = coach.post(f"/dashboard/flags/{flag}/acknowledge", data={"back": "/dashboard/flags"})
    assert r.status_code == 400
    assert "form has expired" in r.get_data(as_text=True)
    r = coach.post(f"/dashboard/flags/{flag}/acknowledge", data={"csrf_token": "forged"})
    assert r.status_code == 400
    assert flag_status(app, flag) == "open"
    r = coach.post(
        f"/dashboard/members/{world.ids['alice']}/messages",
        data={"body": "hi", "message_id": str(uuid.uuid4())},
    )
    assert r.status_code == 400 and count(app, Message) == 0


def test_the_member_page_shows_charts_and_is_audited(app, coach, world):
    alice = world.ids["alice"]
    for days in (30, 90):
        r = coach.get(f"/dashboard/members/{alice}?days={days}")
        assert r.status_code == 200
        html = r.get_data(as_text=True)
        assert html.count('<svg class="chart') == 6  # drinks, cravings, PACS, adherence, breath, side effects
        assert len(re.findall(r'<rect class="bar[ "]', html)) > 20
        assert 'class="threshold"' in html and "heavy ≥ 4.0" in html
        assert "bar hi" in html  # heavy days stand out
        assert 'class="bar severe"' in html
        assert "naltrexone" in html
    assert coach.get(f"/dashboard/members/{alice}?days=7").status_code == 400
    viewed = world_builder_rows(app, "member.viewed")
    # The story's first page reaches back to the oldest day it showed: that range is in the row.
    assert [(e.actor_id, e.subject_member_id, e.detail["via"], e.detail["days"]) for e in viewed] == [
        (world.ids["coach_a"], alice, "dashboard", 30),
        (world.ids["coach_a"], alice, "dashboard", 90),
    ]
    assert all(e.detail["story"] < world.today.isoformat() for e in viewed)


def world_builder_rows(app, action):
    with app.app_context():
        return list(
            db.session.execute(
                select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)
            ).scalars()
        )


def test_caseload_and_queue_are_audited(app, coach, world):
    coach.get("/dashboard/members")
    coach.get("/dashboard/flags")
    assert {e.subject_member_id for e in world_builder_rows(app, "caseload.listed")} == {
        world.ids["alice"],
        world.ids["ann"],
    }
    assert {e.subject_member_id for e in world_builder_rows(app, "flags.listed")} == {
        world.ids["alice"],
        world.ids["ann"],
    }


def test_the_caseload_shows_risk_activity_and_sparklines(coach, world):
    html = coach.get("/dashboard/members").get_data(as_text=True)
    assert html.index("Alice") < html.index("Ann")
    assert "Bob" not in html and "Orphan" not in html
    assert html.count('<svg class="sparkline"') == 2
    assert '<span class="badge urgent">urgent</span>' in html


def test_outside_the_caseload_is_404(app, coach, world):
    for who in ("bob", "orphan"):
        r = coach.get(f"/dashboard/members/{world.ids[who]}")
        assert r.status_code == 404
        assert who.title() not in r.get_data(as_text=True)
    assert coach.get(f"/dashboard/members/{uuid.uuid4()}").status_code == 404
    assert world_builder_rows(app, "member.viewed") == []


def test_send_a_message_once_whatever_the_resubmissions(app, coach, world):
    alice = world.ids["alice"]
    page = f"/dashboard/members/{alice}"
    html = coach.get(page).get_data(as_text=True)
    message_id = re.search(r'name="message_id" value="([^"]+)"', html).group(1)
    form = {"csrf_token": pages.csrf(html), "message_id": message_id, "body": "Proud of this week."}
    for _ in range(2):  # a double click, a resubmitted form
        r = coach.post(f"{page}/messages", data=form)
        assert r.status_code == 302 and r.headers["Location"].endswith("#messages")
    assert count(app, Message, Message.member_id == alice) == 1
    assert "Proud of this week." in coach.get(page).get_data(as_text=True)
    # empty and too long bodies send nothing and say why
    for body in ("  ", "x" * 4001):
        pages.post_form(coach, page, f"{page}/messages", body=body, message_id=str(uuid.uuid4()))
    assert count(app, Message, Message.member_id == alice) == 1
    assert "body: write 1 to 4000 characters" in coach.get(page).get_data(as_text=True)
    # not on the caseload
    bob = world.ids["bob"]
    r = pages.post_form(
        coach, page, f"/dashboard/members/{bob}/messages", body="hi", message_id=str(uuid.uuid4())
    )
    assert r.status_code == 404 and count(app, Message) == 1


def test_audit_page_is_for_admins(app, client, world):
    pages.sign_in(client, world.emails["coach_a"])
    assert client.get("/dashboard/audit").status_code == 403
    client.get(f"/dashboard/members/{world.ids['alice']}")
    pages.post_form(client, "/dashboard/flags", "/dashboard/logout")
    pages.sign_in(client, world.emails["admin"])
    html = client.get("/dashboard/audit").get_data(as_text=True)
    assert "member.viewed" in html and world.emails["coach_a"] in html
    html = client.get(f"/dashboard/audit?member={world.ids['bob']}").get_data(as_text=True)
    assert 'data-action="member.viewed"' not in html
    # Not an id: a part of a name or email (issue 22); nobody matches, nothing is listed.
    html = client.get("/dashboard/audit?member=nope").get_data(as_text=True)
    assert "data-action" not in html and "Nothing recorded that matches" in html
    # admins see every member
    assert client.get(f"/dashboard/members/{world.ids['orphan']}").status_code == 200


def test_idle_for_15_minutes_signs_out(client, world):
    start = datetime.now(UTC)
    with time_machine.travel(start, tick=False) as clock:
        pages.sign_in(client, world.emails["coach_a"])
        clock.shift(timedelta(minutes=14))
        assert client.get("/dashboard/flags").status_code == 200  # activity keeps it alive
        clock.shift(timedelta(minutes=14))
        assert client.get("/dashboard/flags").status_code == 200
        clock.shift(timedelta(minutes=15, seconds=5))
        r = client.get("/dashboard/flags")
        assert r.status_code == 302 and "/dashboard/login" in r.headers["Location"]
        assert client.get("/dashboard/members").status_code == 302  # and it stays signed out


def test_logout_ends_the_session(client, world):
    pages.sign_in(client, world.emails["coach_a"])
    r = pages.post_form(client, "/dashboard/flags", "/dashboard/logout")
    assert r.status_code == 302
    assert client.get("/dashboard/flags").status_code == 302
    assert client.post("/dashboard/logout").status_code == 400  # no token: refused, not a 500


def test_session_cookie_flags(app, client, world):
    app.config["SESSION_COOKIE_SECURE"] = True
    try:
        r = pages.sign_in(client, world.emails["coach_a"])
    finally:
        app.config["SESSION_COOKIE_SECURE"] = False
    cookie = r.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "Secure" in cookie and "SameSite=Lax" in cookie
    assert "Expires=" in cookie  # a permanent session: it expires with the idle timeout


def test_the_dashboard_cookie_never_authenticates_the_api(client, world):
    pages.sign_in(client, world.emails["coach_a"])
    assert client.get("/dashboard/members").status_code == 200
    r = client.get("/api/v1/coach/members")
    assert r.status_code == 401
    assert "Set-Cookie" not in r.headers


def test_sign_in_is_rate_limited(app, client, world):
    codes = [pages.sign_in(client, world.emails["coach_a"], "wrong password!").status_code for _ in range(6)]
    assert codes == [401] * 5 + [429]  # the API's count (tests/security/test_sign_in_throttle.py)


def test_missing_days_read_not_logged_and_niaaa_risk_is_shown(coach, world):
    # Issue 19: Ann has logged nothing (not "0 drinks"); Alice's last 7 days hold 11 US drinks (154 g),
    # NIAAA heavy weekly use for an unspecified sex (8 or more).
    html = coach.get("/dashboard/members").get_data(as_text=True)
    rows = {row.split("</a>")[0].rsplit(">", 1)[-1]: row for row in html.split('<tr class="member"')[1:]}
    assert rows["Ann"].count('<span class="muted">not logged</span>') == 2
    assert "NIAAA" in rows["Alice"] and "not logged" not in rows["Alice"]
    ann = coach.get(f"/dashboard/members/{world.ids['ann']}").get_data(as_text=True)
    week = ann.split('id="week-drinks"')[1].split("</div>")[0]
    assert "not logged" in week and "0 drinks" not in ann
    alice = coach.get(f"/dashboard/members/{world.ids['alice']}").get_data(as_text=True)
    assert '<span class="badge urgent">over</span>' in alice.split('id="week-niaaa"')[1].split("</div>")[0]


def test_the_member_page_charts_the_weekly_pacs(coach, world):
    # Issue 19: last week's PACS (18) is a dot on the member page's weekly chart; Ann has none.
    html = coach.get(f"/dashboard/members/{world.ids['alice']}").get_data(as_text=True)
    card = html.split('id="pacs"')[1].split("</svg>")[0]
    monday = world.today - timedelta(days=world.today.weekday() + 7)
    assert card.count('<circle class="dot"') == 1 and f"{monday.isoformat()}: 18 / 30" in card
    ann = coach.get(f"/dashboard/members/{world.ids['ann']}").get_data(as_text=True)
    assert '<circle class="dot"' not in ann.split('id="pacs"')[1].split("</svg>")[0]
