"""The coach's workbench (issue 22) through the Flask test client: the member's story, triage, plans
and the audit of staff writes. The same pages in a real browser: test_browser.py."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from html import unescape

import pytest
from sqlalchemy import select

from companion import db
from companion.audit.models import AuditEntry
from tests.dashboard import pages
from tests.dashboard import world as world_builder


@pytest.fixture
def world(app, client):
    return world_builder.build(app, client)


@pytest.fixture
def coach(app, client, world):
    page = client.get("/dashboard/login")
    r = client.post(
        "/dashboard/login",
        data={
            "email": world.emails["coach_a"],
            "password": world_builder.PASSWORD,
            "csrf_token": pages.csrf(page.get_data(as_text=True)),
            "zone": "Europe/Berlin",
        },
    )
    assert r.status_code == 302
    return client


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", html)))


def story(html: str) -> str:
    return html[html.index('id="story-list"') : html.index("</ol>", html.index('id="story-list"'))]


def audit_rows(app, action):
    with app.app_context():
        return list(
            db.session.execute(
                select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)
            ).scalars()
        )


# --- 1. the member's story --------------------------------------------------------------------------


def test_the_story_tells_the_members_days_in_their_own_words(app, coach, world):
    alice = world.ids["alice"]
    html = coach.get(f"/dashboard/members/{alice}").get_data(as_text=True)
    told = text_of(story(html))
    # Their own words: the drink log's note, the craving's triggers and note.
    assert "Office party, stopped after the toast" in told
    assert "triggers: argument, payday" in told and "Walked it off" in told
    # Side effects by name and severity, breath readings, flags and their later events.
    assert re.search(r"side effects: nausea \((mild|moderate|severe)\)", told)
    assert "Breath 0.045 g/dL" in told
    assert "Flag opened: severe side effect" in told
    # Drinks in the member's unit, named; times in the member's zone, named.
    assert "6.0 US drinks" in told and "heavy day" in told
    assert "20:00 EST" in told or "20:00 EDT" in told
    assert "times in America/New_York" in text_of(html)
    # Day by day, newest first.
    days = re.findall(r'<li class="day"><h3>([^<]+)</h3>', story(html))
    assert len(days) >= 15
    yesterday = (world.today - timedelta(days=1)).strftime("%A %d %B %Y")
    assert days[0].startswith(world.today.strftime("%A %d %B %Y")) or days[0] == yesterday


def test_the_story_is_newest_first_and_pages_back_without_gaps(app, coach, world):
    alice = world.ids["alice"]
    seen: list[str] = []
    url = f"/dashboard/members/{alice}"
    pages_read = 0
    while url:
        html = coach.get(url).get_data(as_text=True)
        headings = re.findall(r'<li class="day"><h3>([^<(]+)', story(html))
        seen += [h.strip() for h in headings]
        older = re.search(r'<a href="([^"]+)" id="story-older">', html)
        url = unescape(older.group(1)) if older else ""
        pages_read += 1
    assert pages_read >= 2  # 20 days of drinks, doses, cravings and readings: more than one page
    # A day split across two pages is headed on both; otherwise every day once, newest first.
    parsed = [datetime.strptime(h, "%A %d %B %Y").date() for h in seen]
    assert parsed == sorted(parsed, reverse=True)
    assert len(set(parsed)) >= 20


def test_the_story_filters_by_kind(app, coach, world):
    alice = world.ids["alice"]
    html = coach.get(f"/dashboard/members/{alice}?kind=craving&kind=bac_reading").get_data(as_text=True)
    kinds = set(re.findall(r'data-kind="([a-z_]+)"', story(html)))
    assert kinds == {"craving", "bac_reading"}
    assert 'value="craving" checked' in html and 'value="drink_log" checked' not in html
    r = coach.get(f"/dashboard/members/{alice}?kind=horoscope")
    assert r.status_code == 400 and "kind: horoscope" in r.get_data(as_text=True)
    r = coach.get(f"/dashboard/members/{alice}?cursor=forged")
    assert r.status_code == 400


def test_acknowledged_and_resolved_flags_are_events_with_the_note(app, coach, world):
    alice = world.ids["alice"]
    flag = world.flags["alice_warning"]
    member_page = f"/dashboard/members/{alice}"
    pages.post_form(coach, member_page, f"/dashboard/flags/{flag}/acknowledge", back=member_page)
    pages.post_form(
        coach,
        member_page,
        f"/dashboard/flags/{flag}/resolve",
        back=member_page,
        note="Called her; dose moved",
    )
    html = coach.get(f"{member_page}?kind=flag_acknowledged&kind=flag_closed").get_data(as_text=True)
    told = text_of(story(html))
    assert "Flag acknowledged: persistent side effect by Coach_A" in told
    assert "Flag resolved: persistent side effect by Coach_A" in told
    assert "Called her; dose moved" in told


def test_times_are_shown_in_the_coachs_zone(app, coach, world):
    html = coach.get("/dashboard/flags").get_data(as_text=True)
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d CE(S)?T", html), "times in the browser's zone at sign-in"
    assert " UTC" not in text_of(html[html.index("<table") :])
