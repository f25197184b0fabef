"""Part 3: surveys — choice, scale and text questions, one response per member, CSV export."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from engagement.models import Survey

A, B, C = "telegram:1", "telegram:2", "telegram:3"
QUESTIONS = [
    {"kind": "choice", "text": "你从哪里知道本群？", "options": ["朋友推荐", "公众号", "知识星球"]},
    {"kind": "multi_choice", "text": "想要哪些活动？", "options": ["分享会", "线下聚会", "打卡"],
     "required": False},
    {"kind": "scale", "text": "满意度", "scale_min": 1, "scale_max": 5},
    {"kind": "text", "text": "建议", "required": False},
]


async def setup(engagement) -> tuple[str, str]:
    cid = await engagement.community()
    for person in (A, B, C):
        await engagement.member(cid, person)
    await engagement.client.post(f"/communities/{cid}/rules", json={
        "rules": {"points": {"survey_answered": 3}}, "effective_from": "2020-01-01T00:00:00Z"})
    response = await engagement.client.post(f"/communities/{cid}/surveys", json={
        "title": "社群满意度调查", "group_id": "telegram:-100", "questions": QUESTIONS,
        "closes_at": (datetime.now(UTC) + timedelta(days=3)).isoformat()})
    assert response.status_code == 201, response.text
    return cid, response.json()["id"]


async def test_responses_are_validated_replaced_and_exported_as_csv(engagement):
    cid, sid = await setup(engagement)
    url = f"/communities/{cid}/surveys/{sid}/responses"
    first = await engagement.client.post(url, json={"person_id": A, "answers": [2, [1, 2], 4, "多办线下"]})
    assert first.status_code == 201, first.text
    again = await engagement.client.post(url, json={"person_id": A, "answers": [2, [3, 1], 5, "=HYPERLINK(x)"]})
    assert again.status_code == 200 and again.json()["answers"] == [2, [1, 3], 5, "=HYPERLINK(x)"]
    assert (await engagement.client.post(url, json={"person_id": B, "answers": [1, [], 3, None]})).status_code == 201

    for answers, reason in (([4, [1], 3, ""], "option number 1–3"), ([1, [1, 1], 3, ""], "distinct"),
                            ([1, [1], 6, ""], "whole number 1–5"), ([1, [1], 3], "4 questions"),
                            ([None, [1], 3, ""], "is required"), ([1, [1], True, ""], "whole number")):
        bad = await engagement.client.post(url, json={"person_id": C, "answers": answers})
        assert bad.status_code == 422 and reason in bad.json()["detail"], (answers, bad.text)

    assert (await engagement.get(f"/communities/{cid}/surveys/{sid}"))["responses"] == 2
    exported = await engagement.client.get(f"/communities/{cid}/surveys/{sid}/export.csv")
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    text = exported.content.decode("utf-8")
    assert text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert rows[0][:4] == ["person_id", "submitted_at", "updated_at", "Q1 你从哪里知道本群？"]
    by_person = {r[0]: r[3:] for r in rows[1:]}
    assert by_person == {A: ["公众号", "分享会; 打卡", "5", "'=HYPERLINK(x)"], B: ["朋友推荐", "", "3", ""]}
    # points once per member, whatever the resubmissions
    assert await engagement.points(cid, A) == 3 and await engagement.points(cid, B) == 3
    participated = await engagement.outbox_events("activity.participated")
    assert sorted(e.data["person_id"] for e in participated) == [A, B]


async def test_late_responses_are_refused_and_bad_surveys_rejected(engagement):
    cid, sid = await setup(engagement)
    async with engagement.runtime.session_maker() as session, session.begin():
        await session.execute(update(Survey).where(Survey.id == sid)
                              .values(closes_at=datetime.now(UTC) - timedelta(seconds=1)))
    late = await engagement.client.post(f"/communities/{cid}/surveys/{sid}/responses",
                                        json={"person_id": A, "answers": [1, [1], 3, ""]})
    assert late.status_code == 409 and "closed at" in late.json()["detail"]
    bad = await engagement.client.post(f"/communities/{cid}/surveys", json={
        "title": "x", "questions": [{"kind": "choice", "text": "only one option", "options": ["a"]}]})
    assert bad.status_code == 422
    scale = await engagement.client.post(f"/communities/{cid}/surveys", json={
        "title": "x", "questions": [{"kind": "scale", "text": "s", "scale_min": 5, "scale_max": 5}]})
    assert scale.status_code == 422
