"""Business metrics on engagement's own /metrics: points by rule type, levels, lurkers…"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from prometheus_client.parser import text_string_to_metric_families

T0 = datetime(2026, 11, 2, 2, 0, tzinfo=UTC)


async def samples(engagement) -> dict[tuple[str, tuple], float]:
    text = (await engagement.client.get("/metrics")).text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text) for s in family.samples
    }


async def test_scoring_is_visible_in_the_metrics(engagement):
    cid = await engagement.community()
    person = "telegram:1"
    await engagement.member(cid, person, joined_at=T0 - timedelta(days=40))
    await engagement.command(cid, person, "checkin", T0)
    await engagement.message(cid, person, "早安", T0)
    await engagement.message(cid, "telegram:unknown", "还不是成员", T0)
    as_of = (T0 + timedelta(days=20)).isoformat()
    await engagement.client.post(f"/communities/{cid}/jobs/lurkers", params={"as_of": as_of})

    from engagement.jobs.runner import run_all

    await run_all(engagement.app)  # also refreshes the members-by-level gauge
    got = await samples(engagement)
    assert got[("qunzhu_engagement_points_awarded_points_total", (("rule_type", "checkin"),))] == 5
    assert got[("qunzhu_engagement_activities_scored_total", (("rule_type", "noise"),))] == 1
    assert got[("qunzhu_engagement_activities_pending_total", ())] == 1
    assert got[("qunzhu_engagement_levels_reached_total", (("level", "2"),))] == 1
    assert got[("qunzhu_engagement_lurkers_flagged_total", ())] == 1
    assert got[("qunzhu_engagement_members_by_level_members", (("level", "2"),))] == 1
