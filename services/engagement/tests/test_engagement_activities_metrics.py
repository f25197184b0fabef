"""Part 8: every activity counts its participants and completions on /metrics, each series from 0."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import update

from engagement.metrics import ACTIVITY_KINDS
from engagement.models import Lottery

A, B = "telegram:1", "telegram:2"


async def samples(engagement) -> dict[tuple[str, str], float]:
    text = (await engagement.client.get("/metrics")).text
    return {(s.name, s.labels.get("activity", "")): s.value
            for family in text_string_to_metric_families(text) for s in family.samples
            if s.name.startswith("qunzhu_engagement_activity_")}


async def test_activity_series_start_at_zero_and_count_participants_and_completions(engagement):
    before = await samples(engagement)
    for activity in ACTIVITY_KINDS:
        assert before[("qunzhu_engagement_activity_participants_total", activity)] == 0
        assert before[("qunzhu_engagement_activity_completions_total", activity)] == 0

    cid = await engagement.community()
    for person in (A, B):
        await engagement.member(cid, person)
    lottery = (await engagement.client.post(f"/communities/{cid}/lotteries", json={
        "title": "福利", "closes_at": (datetime.now(UTC) + timedelta(hours=1)).isoformat()})).json()
    for person in (A, B, A):
        await engagement.client.post(f"/communities/{cid}/lotteries/{lottery['id']}/entries",
                                     json={"person_id": person})
    async with engagement.runtime.session_maker() as session, session.begin():
        await session.execute(update(Lottery).values(closes_at=datetime.now(UTC) - timedelta(seconds=1)))
    await engagement.client.post(f"/communities/{cid}/lotteries/{lottery['id']}/draw")
    survey = (await engagement.client.post(f"/communities/{cid}/surveys", json={
        "title": "调查", "questions": [{"kind": "text", "text": "建议"}]})).json()
    await engagement.client.post(f"/communities/{cid}/surveys/{survey['id']}/responses",
                                 json={"person_id": A, "answers": ["多办活动"]})

    after = await samples(engagement)
    assert after[("qunzhu_engagement_activity_participants_total", "lottery")] == 2
    assert after[("qunzhu_engagement_activity_completions_total", "lottery")] == 1
    assert after[("qunzhu_engagement_activity_participants_total", "survey")] == 1
    assert after[("qunzhu_engagement_activity_completions_total", "survey")] == 1
    assert after[("qunzhu_engagement_activity_participants_total", "poll")] == 0
