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
    assert "Breath 0.045 g/dL" in told and "naltrexone dose taken at 09:00 E" in told
    assert "Flag opened: severe side effect" in told
    # A symptom reported on its own (no dose), by name and severity.
    assert "Symptoms reported · tremor (moderate)" in told
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


# --- 2. triage --------------------------------------------------------------------------------------


@pytest.fixture
def caseload(app, client, world):
    """coach_a's caseload beyond alice (urgent and warning flags) and ann (an info flag, nothing
    logged): carl (abstinence goal, in the UK, six heavy days in the last 30, no flag), dora (nothing
    logged since enrolling 10 days ago), eve (one drinking day yesterday)."""
    from sqlalchemy import update

    from companion.accounts.models import Member
    from tests.safety import helpers

    address = client.environ_base.get("REMOTE_ADDR")
    client.environ_base["REMOTE_ADDR"] = "192.0.2.77"  # registration is rate-limited by address
    for name, country in (("carl", "GB"), ("dora", "US"), ("eve", "US")):
        world.ids[name], world.emails[name] = helpers.new_member(
            app, client, display_name=name.title(), timezone=world_builder.ZONE, country=country
        )
        helpers.assign(app, world.emails[name], world.emails["coach_a"])
    if address is None:
        client.environ_base.pop("REMOTE_ADDR")
    else:
        client.environ_base["REMOTE_ADDR"] = address
    carl = helpers.api_for(app, client, world.ids["carl"])
    for back in range(1, 13):
        day = world.today - back * world_builder.DAY
        r = carl.put(f"/drink-logs/{day.isoformat()}", {"standard_drinks": 8 if back % 2 else 0})
        assert r.status_code == 201, r.get_json()
    eve = helpers.api_for(app, client, world.ids["eve"])
    r = eve.put(f"/drink-logs/{(world.today - world_builder.DAY).isoformat()}", {"standard_drinks": 2})
    assert r.status_code == 201, r.get_json()
    with app.app_context(), db.unit_of_work() as session:
        session.execute(
            update(Member)
            .where(Member.id == world.ids["dora"])
            .values(enrolled_at=world_builder.now() - timedelta(days=10))
        )
    return world


def names_listed(html: str) -> list[str]:
    return re.findall(r'<tr class="member" data-id="[^"]+">\s*<td><a href="[^"]+">([^<]+)</a>', html)


def row_of(html: str, name: str) -> str:
    start = html.index(f">{name}</a>")
    return text_of(html[start : html.index("</tr>", start)])


def test_the_caseload_is_sorted_by_need(app, coach, caseload):
    html = coach.get("/dashboard/members").get_data(as_text=True)
    listed = names_listed(html)
    # Urgent flags first; then nobody-logged (the longest without an entry), then drinking against goal.
    assert listed[0] == "Alice"
    assert set(listed[1:3]) == {"Ann", "Dora"}
    assert listed[3:] == ["Carl", "Eve"]
    # Six heavy days against an abstinence goal is a risk even without a flag; the unit is named.
    carl = row_of(html, "Carl")
    assert "warning from drinking" in carl
    assert "6 d (any drinking; goal abstain)" in carl and "UK units" in carl
    assert "info from drinking" in row_of(html, "Eve") and "US drinks" in row_of(html, "Eve")
    assert "none" in row_of(html, "Dora")


def test_the_caseload_sorts_by_column_both_ways(app, coach, caseload):
    by_name = names_listed(coach.get("/dashboard/members?sort=name").get_data(as_text=True))
    assert by_name == ["Alice", "Ann", "Carl", "Dora", "Eve"]
    html = coach.get("/dashboard/members?sort=name&dir=desc").get_data(as_text=True)
    assert names_listed(html) == by_name[::-1]
    assert 'aria-sort="descending"' in html
    against = names_listed(coach.get("/dashboard/members?sort=against_goal").get_data(as_text=True))
    assert against[:2] == ["Alice", "Carl"]  # 8 and 6 drinking days against abstinence
    assert coach.get("/dashboard/members?sort=shoe_size").status_code == 400


def test_the_caseload_searches_and_filters(app, coach, caseload):
    def listed(query: str) -> list[str]:
        r = coach.get(f"/dashboard/members?{query}")
        assert r.status_code == 200, query
        return sorted(names_listed(r.get_data(as_text=True)))

    assert listed("q=car") == ["Carl"]
    assert listed(f"q={caseload.emails['eve'][:12]}") == ["Eve"]
    assert listed("q=%25") == []  # a wildcard typed is a character searched for
    assert listed("flags=1") == ["Alice", "Ann"]
    assert listed("quiet=7") == ["Dora"]
    assert listed("medication=naltrexone") == ["Alice"]
    assert listed("medication=baclofen") == []
    assert listed("flags=1&medication=naltrexone&q=ali") == ["Alice"]
    for bad in ("quiet=-1", "quiet=soon", "medication=aspirin"):
        r = coach.get(f"/dashboard/members?{bad}")
        assert r.status_code == 400, bad
        assert bad.split("=")[0] + ":" in r.get_data(as_text=True)


def test_flags_show_their_age_and_time_left_before_escalation(app, coach, world):
    fresh = world_builder.make_flag(
        app, world.ids["ann"], rule="withdrawal_risk", age=timedelta(minutes=30), coach=world.ids["coach_a"]
    )
    html = coach.get("/dashboard/flags").get_data(as_text=True)

    def cell(flag_id):
        start = html.index(f'id="flag-{flag_id}"')
        return text_of(html[start : html.index("</tr>", start)])

    assert "30 min old" in cell(fresh) and re.search(r"escalates in 1 h (29|30) min", cell(fresh))
    assert "3 h 00 min old" in cell(world.flags["alice_urgent"])
    assert "escalation due 1 h 00 min ago" in cell(world.flags["alice_urgent"])
    assert "escalat" not in cell(world.flags["alice_warning"]).replace("escalated", "")
    assert "1 d 6 h old" in cell(world.flags["alice_warning"])


def test_a_coach_sets_their_zone_on_their_account(app, coach, world):
    r = pages.post_form(coach, "/dashboard/account", "/dashboard/account", timezone="Mars/Olympus")
    assert r.status_code == 422
    html = r.get_data(as_text=True)
    assert "timezone: Mars/Olympus is not an IANA time zone" in html
    assert 'value="Mars/Olympus"' in html  # what was typed is kept
    r = pages.post_form(coach, "/dashboard/account", "/dashboard/account", timezone="Asia/Tokyo")
    assert r.status_code == 302
    html = coach.get("/dashboard/flags").get_data(as_text=True)
    assert "times in Asia/Tokyo" in html
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d JST", html)
    [row] = audit_rows(app, "staff.timezone_changed")
    assert (row.actor_id, row.detail) == (world.ids["coach_a"], {"before": None, "after": "Asia/Tokyo"})
    # Blank: back to the browser's zone (Europe/Berlin, sent at sign-in).
    pages.post_form(coach, "/dashboard/account", "/dashboard/account", timezone="")
    assert "times in Europe/Berlin" in coach.get("/dashboard/flags").get_data(as_text=True)


# --- 4. every staff write audited; the audit page's filters -----------------------------------------


def test_every_staff_write_is_audited(app, client, coach, world):
    alice = world.ids["alice"]
    page = f"/dashboard/members/{alice}"
    created = audit_rows(app, "plan.created")  # the world's plan, made by coach_a through the service
    assert [(r.actor_id, r.subject_member_id, r.detail["plan_id"]) for r in created] == [
        (world.ids["coach_a"], alice, world.plan_id)
    ]
    assert created[0].detail["after"]["dose_mg"] == "50"
    assert created[0].detail["after"]["times"] == ["09:00"]

    was = {"was_dose_mg": "50", "was_times": "09:00", "was_end_date": ""}
    pages.post_form(
        coach, page, f"{page}/plans/{world.plan_id}", dose_mg="25", times="09:00", end_date="", **was
    )
    [changed] = audit_rows(app, "plan.changed")
    assert (changed.actor_id, changed.subject_member_id) == (world.ids["coach_a"], alice)
    assert changed.detail["before"]["steps"] == []
    assert [s["dose_mg"] for s in changed.detail["after"]["steps"]] == ["25"]
    assert changed.detail["after"]["steps"][0]["from_date"] == world.today.isoformat()

    html = coach.get(page).get_data(as_text=True)
    message_id = re.search(r'name="message_id" value="([^"]+)"', html).group(1)
    form = {"csrf_token": pages.csrf(html), "message_id": message_id, "body": "Proud of you."}
    for _ in range(2):  # sent once, audited once
        coach.post(f"{page}/messages", data=form)
    html = coach.get(page).get_data(as_text=True)
    notice = html.index('<p class="flash success" role="status">Message sent.</p>')
    assert notice > html.index('id="messages"')  # beside the messages, where the page lands
    assert "Message from Coach_A Proud of you." in text_of(story(html))
    [sent] = audit_rows(app, "message.sent")
    assert (sent.actor_id, sent.subject_member_id, sent.detail) == (
        world.ids["coach_a"],
        alice,
        {"message_id": message_id, "characters": len("Proud of you.")},
    )

    flag = world.flags["alice_urgent"]
    pages.post_form(coach, page, f"/dashboard/flags/{flag}/acknowledge", back=page)
    pages.post_form(coach, page, f"/dashboard/flags/{flag}/resolve", back=page, note="Spoke to her GP")
    for action in ("flag.acknowledged", "flag.resolved"):
        [row] = audit_rows(app, action)
        assert (row.actor_id, row.subject_member_id, row.detail) == (
            world.ids["coach_a"],
            alice,
            {"flag_id": str(flag), "rule": "severe_side_effect"},
        )


def test_the_audit_page_filters_by_staff_member_action_and_day(app, client, world):
    alice, ann = world.ids["alice"], world.ids["ann"]
    pages.sign_in(client, world.emails["coach_a"])
    client.get(f"/dashboard/members/{alice}")
    client.get(f"/dashboard/members/{ann}")
    client.post(
        "/dashboard/logout",
        data={"csrf_token": pages.csrf(client.get("/dashboard/flags").get_data(as_text=True))},
    )
    pages.sign_in(client, world.emails["admin"])
    client.get(f"/dashboard/members/{ann}")

    def listed(query: str) -> list[tuple[str, str]]:
        r = client.get(f"/dashboard/audit?{query}")
        assert r.status_code == 200, query
        html = r.get_data(as_text=True)
        rows = re.findall(
            r'<tr class="entry" data-action="([^"]+)">\s*<td>[^<]*</td>\s*<td>([^<]+)</td>', html
        )
        return rows

    viewed = listed("action=member.viewed")
    assert viewed == [
        ("member.viewed", world.emails["admin"]),
        ("member.viewed", world.emails["coach_a"]),
        ("member.viewed", world.emails["coach_a"]),
    ]
    assert listed("action=member.viewed&staff=Coach_A") == viewed[1:]  # by display name
    assert listed(f"action=member.viewed&staff={world.emails['admin'][:10]}") == viewed[:1]  # by email
    assert len(listed("action=member.viewed&member=ann")) == 2  # by the member's name
    assert len(listed(f"action=member.viewed&member={world.emails['alice']}")) == 1  # by email
    assert len(listed(f"action=member.viewed&member={alice}")) == 1  # by id
    assert {a for a, _ in listed("action=plan")} == {"plan.created"}  # a prefix
    today = world_builder.now().date().isoformat()  # the admin reads in UTC (no zone sent, none set)
    assert len(listed(f"action=member.viewed&from={today}&to={today}")) == 3
    tomorrow = (world_builder.now().date() + timedelta(days=1)).isoformat()
    assert listed(f"action=member.viewed&from={tomorrow}") == []
    long_ago = (world.today - timedelta(days=400)).isoformat()
    assert len(listed(f"action=member.viewed&from={long_ago}")) == 3
    for bad in ("from=yesterday", "to=2026-13-01", f"from={tomorrow}&to={today}"):
        r = client.get(f"/dashboard/audit?{bad}")
        assert r.status_code == 400, bad
        assert re.search(r"(from|to):", r.get_data(as_text=True)), bad


# --- 3. plans ---------------------------------------------------------------------------------------


def plan_section(html: str, key: str) -> str:
    start = html.index(f'id="plan-{key}"')
    return html[start : html.index("</section>", start)]


def stored_plans(app, member_id):
    from companion.medications.models import MedicationPlan

    with app.app_context():
        return list(
            db.session.execute(
                select(MedicationPlan)
                .where(MedicationPlan.member_id == member_id)
                .order_by(MedicationPlan.created_at)
            ).scalars()
        )


def test_a_dose_change_is_saved_visibly_and_the_field_shows_the_new_dose(app, coach, world):
    alice = world.ids["alice"]
    page = f"/dashboard/members/{alice}"
    action = f"{page}/plans/{world.plan_id}"
    r = pages.submit(coach, page, action, dose_mg="25")
    assert r.status_code == 302 and r.headers["Location"].endswith(f"#plan-{world.plan_id}")
    html = coach.get(page).get_data(as_text=True)
    section = plan_section(html, world.plan_id)
    # The success message sits in the plan's own section, styled as a success; not at the page's top.
    assert '<p class="flash success" role="status">Saved: the plan is changed.</p>' in section
    assert "Saved: the plan is changed." not in html[: html.index('id="plans"')]
    # The field shows the dose now in force, not the plan's first dose.
    fields = pages.form_fields(html, action)
    assert (fields["dose_mg"], fields["was_dose_mg"]) == ("25", "25")
    [plan] = stored_plans(app, alice)
    assert plan.dose_mg == 50  # the past is not rewritten: the change is a step from today
    assert plan.steps == [{"from_date": world.today.isoformat(), "dose_mg": "25", "times": ["09:00"]}]
    # Sent again unchanged: nothing to save, said so.
    pages.submit(coach, page, action)
    assert "Nothing to save" in plan_section(coach.get(page).get_data(as_text=True), world.plan_id)


def test_a_refused_plan_form_shows_each_error_beside_its_field_with_what_was_typed(app, coach, world):
    alice = world.ids["alice"]
    page = f"/dashboard/members/{alice}"
    action = f"{page}/plans/{world.plan_id}"
    key = f"plan-{world.plan_id}"
    r = pages.submit(coach, page, action, dose_mg="-3")
    assert r.status_code == 422
    section = plan_section(r.get_data(as_text=True), world.plan_id)
    assert re.search(rf'id="{key}-dose_mg-error">Must be positive', section)
    assert 'value="-3"' in section
    r = pages.submit(coach, page, action, dose_mg="30", times="25:00, 09:00", **{"steps-0-dose_mg": "abc"})
    assert r.status_code == 422
    html = r.get_data(as_text=True)
    section = plan_section(html, world.plan_id)
    assert 'class="flash error" role="alert"' in section and "Not saved" in section
    times_error = unescape(re.search(rf'id="{key}-times-error">([^<]+)<', section).group(1))
    assert "“25:00”" in times_error
    assert re.search(rf'id="{key}-steps-0-dose_mg-error">[^<]*[Nn]ot a valid', section)
    assert re.search(rf'id="{key}-steps-0-from_date-error">[^<]*', section)  # a step without its date
    # What was typed is kept.
    fields = pages.form_fields(html, action)
    assert (fields["dose_mg"], fields["times"], fields["steps-0-dose_mg"]) == ("30", "25:00, 09:00", "abc")
    assert 'aria-invalid="true"' in section
    [plan] = stored_plans(app, alice)
    assert plan.steps == [] and plan.dose_mg == 50


def test_steps_ahead_make_a_taper_and_are_edited_from_the_page(app, coach, world):
    alice = world.ids["alice"]
    page = f"/dashboard/members/{alice}"
    action = f"{page}/plans/{world.plan_id}"
    week, fortnight = (world.today + timedelta(days=d) for d in (7, 14))
    r = pages.submit(
        coach,
        page,
        action,
        **{
            "steps-0-from_date": week.isoformat(),
            "steps-0-dose_mg": "25",
            "steps-0-times": "09:00",
            "steps-1-from_date": fortnight.isoformat(),
            "steps-1-dose_mg": "12.5",
            "steps-1-times": "09:00",
        },
    )
    assert r.status_code == 302, r.get_data(as_text=True)[:2000]
    [plan] = stored_plans(app, alice)
    assert [(s["from_date"], s["dose_mg"]) for s in plan.steps] == [
        (week.isoformat(), "25"),
        (fortnight.isoformat(), "12.5"),
    ]
    # The rows show them, with blank rows for more; change today's dose: the steps ahead stay.
    fields = pages.form_fields(coach.get(page).get_data(as_text=True), action)
    assert (fields["steps-0-dose_mg"], fields["steps-1-dose_mg"], fields["steps-2-dose_mg"]) == (
        "25",
        "12.5",
        "",
    )
    assert pages.submit(coach, page, action, dose_mg="40").status_code == 302
    [plan] = stored_plans(app, alice)
    assert [(s["from_date"], s["dose_mg"]) for s in plan.steps] == [
        (world.today.isoformat(), "40"),
        (week.isoformat(), "25"),
        (fortnight.isoformat(), "12.5"),
    ]
    # Remove the last step: today's step (the dose in force) is kept.
    r = pages.submit(
        coach, page, action, **{"steps-1-from_date": "", "steps-1-dose_mg": "", "steps-1-times": ""}
    )
    assert r.status_code == 302
    [plan] = stored_plans(app, alice)
    assert [(s["from_date"], s["dose_mg"]) for s in plan.steps] == [
        (world.today.isoformat(), "40"),
        (week.isoformat(), "25"),
    ]
    # A step in the past is history: refused, beside the steps, nothing stored.
    r = pages.submit(
        coach,
        page,
        action,
        **{
            "steps-2-from_date": (world.today - timedelta(days=3)).isoformat(),
            "steps-2-dose_mg": "10",
            "steps-2-times": "09:00",
        },
    )
    assert r.status_code == 422
    assert "history" in plan_section(r.get_data(as_text=True), world.plan_id) or "Step" in plan_section(
        r.get_data(as_text=True), world.plan_id
    )
    assert len(stored_plans(app, alice)[0].steps) == 2


def test_a_coach_starts_a_plan_once_whatever_the_resubmissions(app, coach, world):
    ann = world.ids["ann"]
    page = f"/dashboard/members/{ann}"
    action = f"{page}/plans"
    html = coach.get(page).get_data(as_text=True)
    # Missing medication and times: errors beside them, the rest kept.
    fields = pages.form_fields(html, action)
    r = coach.post(action, data={**fields, "dose_mg": "333", "times": ""})
    assert r.status_code == 422
    section = plan_section(r.get_data(as_text=True), "new")
    assert 'id="plan-new-medication-error"' in section and 'value="333"' in section
    r = coach.post(action, data={**fields, "medication": "acamprosate", "dose_mg": "333", "times": ""})
    assert r.status_code == 422
    section = plan_section(r.get_data(as_text=True), "new")
    assert 'id="plan-new-times-error"' in section and 'id="plan-new-medication-error"' not in section
    assert '<option value="acamprosate" selected>' in section
    assert stored_plans(app, ann) == []
    form = {
        **pages.form_fields(r.get_data(as_text=True), action),
        "medication": "acamprosate",
        "dose_mg": "666",
        "times": "08:00, 14:00, 20:00",
        "steps-0-from_date": (world.today + timedelta(days=10)).isoformat(),
        "steps-0-dose_mg": "333",
        "steps-0-times": "08:00, 20:00",
        "steps-0-taper": "1",  # the coach marks the lower step a taper (issue 19)
    }
    assert form["plan_id"] == fields["plan_id"]  # the refused form keeps its id: a retry stores once
    for _ in range(2):
        r = coach.post(action, data=form)
        assert r.status_code == 302
    [plan] = stored_plans(app, ann)
    assert (plan.medication, plan.dose_mg, len(plan.times), plan.start_date) == (
        "acamprosate",
        666,
        3,
        world.today,
    )
    assert [(s["dose_mg"], s.get("taper")) for s in plan.steps] == [("333", True)]
    assert str(plan.id) == form["plan_id"]
    html = coach.get(page).get_data(as_text=True)
    assert "Saved: a new acamprosate plan." in plan_section(html, str(plan.id))
    [created] = [r for r in audit_rows(app, "plan.created") if r.subject_member_id == ann]
    assert created.detail["after"]["medication"] == "acamprosate"


def test_the_member_page_reads_in_a_bounded_number_of_round_trips(app, coach, world):
    """Round trips dominate the member page under load (docs/performance/dashboard.md): its statements
    are counted, so a change that adds one per item (or per kind) is seen here, not only in bench/."""
    from sqlalchemy import event

    statements: list[str] = []
    with app.app_context():
        engine = db.session.get_bind()

    def count(conn, cursor, statement, *args):
        statements.append(" ".join(statement.split())[:80])

    event.listen(engine, "before_cursor_execute", count)
    try:
        for path in (
            f"/dashboard/members/{world.ids['alice']}",
            f"/dashboard/members/{world.ids['alice']}?days=90",
        ):
            statements.clear()
            assert coach.get(path).status_code == 200
            # 11 before the story (docs/performance/dashboard.md), 3 for it: every kind of entry in one
            # statement, the flags' events, the check-ins' side effects; one more (the staff's names) when
            # the page shows a message or a flag acknowledged or closed (none here).
            # Since: the server-side session's row (issue 21), the week's PACS totals (issue 19) and the
            # check that an admin exists for escalations (issue 26's banner): one each, per page.
            assert len(statements) <= 17, statements
    finally:
        event.remove(engine, "before_cursor_execute", count)
