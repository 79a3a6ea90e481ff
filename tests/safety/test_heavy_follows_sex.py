"""Issue 19 item 8: `heavy` is derived from grams and the member's current sex; a change of sex
derives it again for every stored log, and the summary and the safety rules see the new value."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from tests.safety import helpers

NOW = datetime(2026, 11, 21, 2, 0, tzinfo=UTC)  # 2026-11-20 21:00 in New York
TODAY = date(2026, 11, 20)
DAY = timedelta(days=1)


def test_a_change_of_sex_re_derives_heavy_days_for_flags_and_measures(app, client, redis):
    with helpers.travel(NOW - 30 * DAY):
        member_id, _ = helpers.new_member(app, client, timezone="America/New_York", sex="male")
    with helpers.travel(NOW):
        member = helpers.api_for(app, client, member_id)
        # 21 days dry, then 4.3 US drinks (60 g) on 3 of the last 7: under a man's 70 g, over a woman's 56 g.
        for back in range(21):
            drinks = "4.3" if back in (0, 2, 4) else "0"
            r = member.put(f"/drink-logs/{TODAY - back * DAY}", {"standard_drinks": drinks})
            assert r.status_code == 201, r.get_json()
        assert member.get(f"/drink-logs/{TODAY}").get_json()["heavy"] is False
        assert member.get("/me/summary").get_json()["week"]["heavy_days"] == 0
        assert helpers.scan(member_id, redis) == "scan"
        assert helpers.flags_of(app, member_id) == []
        redis.delete("celery")

        assert member.patch("/me", {"sex": "female"}).status_code == 200
        logs = member.get(f"/drink-logs?from={TODAY - 20 * DAY}&to={TODAY}").get_json()["items"]
        assert {log["date"] for log in logs if log["heavy"]} == {str(TODAY - b * DAY) for b in (0, 2, 4)}
        assert member.get("/me/summary").get_json()["week"]["heavy_days"] == 3
        # The change asked for a scan; the rules now see a relapse after three dry weeks.
        assert [m["kwargs"]["member_id"] for m in helpers.queued(redis, "safety.scan_member")] == [
            str(member_id)
        ]
        helpers.forget_debounce(redis)  # as if the debounce window had passed
        assert helpers.run_queued(app, redis, "safety.scan_member") == 1
        assert [f.rule for f in helpers.flags_of(app, member_id)] == ["relapse_pattern"]

        # Unspecified uses the women's threshold: nothing changes, nothing is asked.
        assert member.patch("/me", {"sex": "unspecified"}).status_code == 200
        assert helpers.queued(redis, "safety.scan_member") == []
        assert member.get("/me/summary").get_json()["week"]["heavy_days"] == 3
