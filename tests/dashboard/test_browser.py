"""The dashboard in a real browser: Debian's Chromium, headless, driven by Playwright through its
`executable_path` (never `playwright install`), against the app served by a real HTTP server thread on
the test database.

The member page's screenshot is kept in test-results/dashboard/ (gitignored) for people to look at.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from companion import db
from tests.conftest import PASSWORD
from tests.dashboard import world as world_builder

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# As root in a closed network: no sandbox, and none of Chromium's calls home (STACK.md 3.9).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-results" / "dashboard"


@pytest.fixture
def server(app) -> Iterator[str]:
    """The app on a free port, in a thread of this process (so it shares the test database)."""
    http = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{http.server_port}"
    http.shutdown()
    thread.join(timeout=10)
    db.session.remove()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from playwright.sync_api import sync_playwright

    assert os.path.exists(CHROMIUM), "Debian's chromium is missing: make test installs it (.ci/system-deps)"
    # Point Playwright at an empty browsers folder: nothing is (or could be) downloaded.
    os.environ["PLAYWRIGHT_BROWSERS_PATH"] = str(tmp_path_factory.mktemp("no-browsers"))
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(20_000)
    yield context.new_page()
    context.close()


@pytest.fixture
def world(app, client):
    return world_builder.build(app, client)


def sign_in(page, server: str, email: str) -> None:
    page.goto(f"{server}/dashboard/login")
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")


def test_a_coach_works_the_queue_and_a_member(page, server, world):
    sign_in(page, server, world.emails["coach_a"])
    page.wait_for_url("**/dashboard/flags")

    # The queue: urgent first, then oldest; bob (coach_b's) is not there.
    rows = page.locator("#queue tr.flag")
    assert rows.count() == 3
    assert rows.first.get_attribute("id") == f"flag-{world.flags['alice_urgent']}"
    assert page.locator(f"#flag-{world.flags['bob_urgent']}").count() == 0

    # Acknowledge the urgent flag in place: back on the same row, now acknowledged.
    urgent = page.locator(f"#flag-{world.flags['alice_urgent']}")
    urgent.locator("button.ack").click()
    page.wait_for_load_state()
    assert "Flag acknowledged." in page.inner_text(".flash")
    assert urgent.get_attribute("data-status") == "acknowledged"
    assert urgent.locator("button.ack").count() == 0

    # Open the member: summary and the six charts, with bars drawn.
    urgent.locator("a").first.click()
    page.wait_for_url(f"**/dashboard/members/{world.ids['alice']}")
    assert page.locator("h1").inner_text().startswith("Alice")
    charts = page.locator("svg.chart")
    assert charts.count() == 6
    for css in ("drinks", "cravings", "pacs", "adherence", "breath", "side-effects"):
        box = page.locator(f"svg.chart.{css}").bounding_box()
        assert box and box["width"] > 300 and box["height"] > 50, css
    bars = page.locator("svg.chart.drinks rect.bar")
    assert bars.count() >= 15
    assert page.locator("svg.chart.drinks rect.bar.hi").count() >= 1
    tallest = max(bars.nth(i).bounding_box()["height"] for i in range(bars.count()))
    assert tallest > 40  # drawn to scale, not collapsed

    # 90 days: same charts, a wider window.
    page.click("text=show 90 days")
    page.wait_for_url("**days=90")
    assert page.locator("svg.chart").count() == 6

    # Send a message: it shows in the list.
    page.fill("textarea[name=body]", "Well done on the alcohol-free days.")
    page.click("text=Send message")
    page.wait_for_url("**#messages")
    assert "Message sent." in page.inner_text(".flash")
    assert "Well done on the alcohol-free days." in page.inner_text("#message-list")

    # The member page, kept for people to look at; it must hold the charts, not a blank page.
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "member-page.png"
    page.goto(f"{server}/dashboard/members/{world.ids['alice']}?days=30")
    page.screenshot(path=str(shot), full_page=True)
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 40_000, len(data)  # five charts of bars and dots; a blank page is a few KB
    chart_shot = page.locator("svg.chart.drinks").screenshot()
    assert len(chart_shot) > 3_000


def test_outside_the_caseload_is_not_found(page, server, world):
    sign_in(page, server, world.emails["coach_a"])
    page.wait_for_url("**/dashboard/flags")
    response = page.goto(f"{server}/dashboard/members/{world.ids['bob']}")
    assert response.status == 404
    assert "Bob" not in page.content()


def test_an_insurer_analyst_cannot_open_the_dashboard(page, server, world):
    sign_in(page, server, world.emails["analyst"])
    assert "for coaches and admins" in page.inner_text(".flash")
    response = page.goto(f"{server}/dashboard/flags")
    assert page.url.startswith(f"{server}/dashboard/login")
    assert response.status == 200 and page.locator("#password").count() == 1


def test_a_forged_form_is_refused(page, server, world):
    sign_in(page, server, world.emails["coach_a"])
    page.wait_for_url("**/dashboard/flags")
    row = page.locator(f"#flag-{world.flags['alice_urgent']}")
    row.locator("form input[name=csrf_token]").first.evaluate("input => { input.value = 'forged' }")
    row.locator("button.ack").click()
    page.wait_for_load_state()
    assert "form has expired" in page.content()
    page.goto(f"{server}/dashboard/flags")
    assert row.get_attribute("data-status") == "open"
