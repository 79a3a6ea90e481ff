"""The coach's workbench (issue 22) in a real browser: Debian's Chromium through Playwright, as
test_browser.py. A coach reads a member's story, triages the caseload, changes a plan; an admin filters
the audit log. Every dashboard page is checked with axe-core (vendored, injected from a local file: 0
serious or critical violations) and photographed at 1366 and 768 px into test-results/screenshots/,
the folder CI keeps.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.dashboard import world as world_builder
from tests.dashboard.test_browser import browser, server, sign_in  # noqa: F401  (fixtures)

pytestmark = pytest.mark.browser

AXE = Path(__file__).parent / "vendor" / "axe.min.js"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-results" / "screenshots"
WIDTHS = (1366, 768)
COACH_ZONE = "Europe/Berlin"


@pytest.fixture
def world(app, client):
    return world_builder.build(app, client)


@pytest.fixture
def context(browser):  # noqa: F811
    """A browser whose zone is Berlin: the dashboard reads it at sign-in and shows times in it. The page's
    CSP runs only the app's own scripts; bypassed here so the test can inject axe (it only reads)."""
    context = browser.new_context(
        viewport={"width": WIDTHS[0], "height": 900}, timezone_id=COACH_ZONE, bypass_csp=True
    )
    context.set_default_timeout(20_000)
    yield context
    context.close()


@pytest.fixture
def page(context):
    return context.new_page()


def axe_violations(page) -> list[str]:
    """axe-core's serious and critical violations on the page as it stands, one line each."""
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def check_page(page, name: str) -> None:
    """axe at each width, and a full-page screenshot at each, kept for people (and CI) to look at."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        problems = axe_violations(page)
        assert problems == [], f"{name} at {width} px:\n" + "\n".join(problems)
        shot = SCREENSHOTS / f"{name}-{width}.png"
        page.screenshot(path=str(shot), full_page=True)
        data = shot.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000, (name, width, len(data))
    page.set_viewport_size({"width": WIDTHS[0], "height": 900})


def test_a_coach_works_from_the_workbench(page, server, world):  # noqa: F811
    check_page(page.goto(f"{server}/dashboard/login") and page, "login")
    sign_in(page, server, world.emails["coach_a"])
    page.wait_for_url("**/dashboard/flags")
    # Times in the browser's zone, sent at sign-in; flags with their age and time to escalation.
    assert f"times in {COACH_ZONE}" in page.inner_text("header")
    urgent = page.locator(f"#flag-{world.flags['alice_urgent']}")
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d CET", urgent.inner_text())
    assert "3 h 00 min old" in urgent.inner_text() and "escalation due" in urgent.inner_text()
    check_page(page, "flag-queue")

    # Triage: by need, then by name; a search; a filter.
    page.click("nav >> text=Caseload")
    page.wait_for_url("**/dashboard/members")
    names = page.locator("#caseload tr.member td:first-child a").all_inner_texts()
    assert names[0] == "Alice"
    check_page(page, "caseload")
    page.click("#caseload th >> text=Member")
    page.wait_for_url("**sort=name**")
    assert page.locator("#caseload tr.member td:first-child a").all_inner_texts() == ["Alice", "Ann"]
    page.click("#caseload th >> text=Member")  # again: the other way
    page.wait_for_url("**dir=desc**")
    assert page.locator("#caseload tr.member td:first-child a").all_inner_texts() == ["Ann", "Alice"]
    page.fill("input[name=q]", "ann")
    page.click("#caseload-filters button[type=submit]")
    page.wait_for_url("**q=ann**")
    assert page.locator("#caseload tr.member td:first-child a").all_inner_texts() == ["Ann"]
    page.goto(f"{server}/dashboard/members")
    page.select_option("select[name=medication]", "naltrexone")
    page.click("#caseload-filters button[type=submit]")
    page.wait_for_url("**medication=naltrexone**")
    assert page.locator("#caseload tr.member td:first-child a").all_inner_texts() == ["Alice"]

    # The member's story: their words, side effects by name, in their zone; filtered by kind; paged.
    page.click("text=Alice")
    page.wait_for_url(f"**/dashboard/members/{world.ids['alice']}")
    story = page.locator("#story-list")
    assert "triggers: argument, payday" in story.inner_text()
    assert "Office party, stopped after the toast" in story.inner_text()
    assert re.search(r"side effects: nausea \((mild|moderate|severe)\)", story.inner_text())
    assert re.search(r"20:00 E[SD]T", story.inner_text())
    assert page.locator("svg.chart").count() == 6  # the charts above it (the weekly PACS the sixth)
    check_page(page, "member")
    page.check("input[name=kind][value=craving]")
    page.click(
        "#story ~ form.filters button[type=submit], form.filters:has(input[name=kind]) button[type=submit]"
    )
    page.wait_for_url("**kind=craving**")
    kinds = set(page.locator("#story-list li.item").evaluate_all("items => items.map(i => i.dataset.kind)"))
    assert kinds == {"craving"}
    page.goto(f"{server}/dashboard/members/{world.ids['alice']}")
    page.click("#story-older")
    page.wait_for_url("**cursor=**")
    assert page.locator("#story-list li.item").count() > 0

    # A plan: a bad time is refused beside the field, what was typed kept; then a dose change is saved.
    page.goto(f"{server}/dashboard/members/{world.ids['alice']}")
    plan = page.locator(f"#plan-{world.plan_id}")
    plan.locator("input[name=times]").fill("9 in the morning")
    plan.locator("button[type=submit]").click()
    page.wait_for_load_state()
    plan = page.locator(f"#plan-{world.plan_id}")
    error = plan.locator(f"#plan-{world.plan_id}-times-error")
    assert "9 in the morning" in error.inner_text()
    assert plan.locator("input[name=times]").input_value() == "9 in the morning"
    assert plan.locator(".flash.error").is_visible()
    field_box = plan.locator("input[name=times]").bounding_box()
    error_box = error.bounding_box()
    assert abs(error_box["y"] - field_box["y"]) < 80  # beside the field, not at the top of the page
    check_page(page, "member-plan-refused")
    plan.locator("input[name=times]").fill("09:00")
    plan.locator("input[name=dose_mg]").fill("25")
    plan.locator("button[type=submit]").click()
    page.wait_for_url(f"**#plan-{world.plan_id}")
    plan = page.locator(f"#plan-{world.plan_id}")
    assert plan.locator(".flash.success").inner_text() == "Saved: the plan is changed."
    assert plan.locator(".flash.success").is_visible()
    assert plan.locator("input[name=dose_mg]").input_value() == "25"

    page.goto(f"{server}/dashboard/account")
    check_page(page, "account")


def test_an_admin_filters_the_audit_log(page, server, world):  # noqa: F811
    sign_in(page, server, world.emails["coach_a"])
    page.wait_for_url("**/dashboard/flags")
    page.goto(f"{server}/dashboard/members/{world.ids['ann']}")
    page.click("text=Sign out")
    sign_in(page, server, world.emails["admin"])
    page.wait_for_url("**/dashboard/flags")
    page.click("nav >> text=Audit log")
    page.wait_for_url("**/dashboard/audit")
    check_page(page, "audit")
    page.fill("input[name=member]", "ann")
    page.select_option("select[name=action]", "member.viewed")
    page.fill("input[name=staff]", "coach_a")
    page.click("#audit-filters button[type=submit]")
    page.wait_for_url("**action=member.viewed**")
    rows = page.locator("#audit tr.entry")
    assert rows.count() == 1
    assert world.emails["coach_a"] in rows.first.inner_text() and "Ann" in rows.first.inner_text()

    # axe does find a violation when there is one: a button without a name, and text without contrast.
    page.evaluate(
        "document.body.insertAdjacentHTML('beforeend', '<button></button>"
        '<p style="color:#eee;background:#fff">faint</p>\')'
    )
    found = axe_violations(page)
    assert any(v.startswith("button-name (critical)") for v in found), found
    assert any(v.startswith("color-contrast (serious)") for v in found), found
