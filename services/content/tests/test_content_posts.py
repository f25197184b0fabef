"""Posts: who may author, draft → scheduled → published → archived, Q&A, comments, 精华, the paywall hook."""

from __future__ import annotations

from datetime import timedelta

import pytest


@pytest.fixture
async def c(bus, start_content_at, seed_community, clock):
    async with start_content_at() as content:
        yield await seed_community(bus, content, clock, groups=1)


def article(**overrides) -> dict:
    body = {
        "title": "社群定位的三个问题",
        "body_md": "# 定位\n…",
        "tags": ["定位"],
        "level": "beginner",
        "attachments": [{"name": "导图.png", "url": "media://abc", "kind": "image"}],
    }
    body.update(overrides)
    return body


async def test_only_owner_admins_and_guests_author(c, member_event, bus, eventually, outbox_events):
    for actor in (c.owner, c.admin, c.guest):
        response = await c.post("/posts", article(publish=True), actor=actor)
        assert response.status_code == 201, response.text
        assert (response.json()["state"], response.json()["author_id"]) == ("published", actor)
    denied = await c.post("/posts", article(), actor=c.member)
    assert denied.status_code == 403 and denied.headers["content-type"] == "application/problem+json"
    assert (await c.post("/posts", article(), actor="wecom:stranger")).status_code == 403

    # The projection follows membership: a guest who lost the role may no longer author.
    await member_event(bus, c.id, c.guest, role="member", type="member.role_changed", at=c.t0 + timedelta(minutes=1))
    await eventually(lambda: _status(c.post("/posts", article(), actor=c.guest), 403), what="guest demoted")
    # An older event delivered late does not roll the role back.
    await member_event(bus, c.id, c.guest, role="guest", type="member.activated", at=c.t0)
    assert (await c.post("/posts", article(), actor=c.guest)).status_code == 403

    events = await outbox_events(c.content, "post.published")
    assert [e["data"]["author_id"] for e in events] == [c.owner, c.admin, c.guest]
    assert events[0]["data"]["level"] == "beginner" and events[0]["data"]["tags"] == ["定位"]


async def test_draft_scheduled_published_archived(c, clock, outbox_events):
    draft = (await c.post("/posts", article(), actor=c.guest)).json()
    assert draft["state"] == "draft"
    assert (await c.get(f"/posts/{draft['id']}", actor=c.member)).status_code == 404  # drafts are private
    assert (await c.get("/posts")).json()["count"] == 0

    at = (c.t0 + timedelta(hours=1)).isoformat()
    scheduled = await c.post(f"/posts/{draft['id']}/schedule", {"publish_at": at}, actor=c.guest)
    assert scheduled.json()["state"] == "scheduled", scheduled.text
    clock.set(c.t0 + timedelta(hours=1, seconds=1))
    assert (await c.tick()).fired == 1
    read = await c.get(f"/posts/{draft['id']}", actor=c.member)
    assert (read.status_code, read.json()["state"]) == (200, "published")
    assert len(await outbox_events(c.content, "post.published")) == 1

    assert (await c.post(f"/posts/{draft['id']}/archive", actor=c.member)).status_code == 403
    archived = await c.post(f"/posts/{draft['id']}/archive", actor=c.admin)
    assert archived.json()["state"] == "archived"
    assert (await c.post(f"/posts/{draft['id']}/publish", actor=c.admin)).status_code == 409


async def test_questions_answers_comments_and_featured(c, clock, outbox_events):
    question = await c.post("/questions", {"title": "付费群定价多少合适？"}, actor=c.member)
    assert question.status_code == 201 and question.json()["kind"] == "question"
    qid = question.json()["id"]
    answer = await c.post(f"/posts/{qid}/comments", {"body_md": "先从 ¥199/年 试起"}, actor=c.guest)
    clock.advance(seconds=1)
    comment = await c.post(f"/posts/{qid}/comments", {"body_md": "同问"}, actor=c.gold)
    assert (answer.json()["kind"], comment.json()["kind"]) == ("answer", "comment")
    listed = await c.get(f"/posts/{qid}/comments", actor=c.member)
    assert [x["kind"] for x in listed.json()] == ["answer", "comment"]
    events = await outbox_events(c.content, "comment.posted")
    assert [(e["data"]["kind"], e["data"]["post_author_id"]) for e in events] == [
        ("answer", c.member),
        ("comment", c.member),
    ]

    assert (await c.post(f"/posts/{qid}/featured", {"featured": True}, actor=c.guest, method="PUT")).status_code == 403
    featured = await c.post(f"/posts/{qid}/featured", {"featured": True}, actor=c.admin, method="PUT")
    assert featured.json()["featured"] is True
    assert [p["id"] for p in (await c.get("/posts", featured="true")).json()["data"]] == [qid]
    (event,) = await outbox_events(c.content, "post.featured")
    assert (event["data"]["by_id"], event["data"]["author_id"]) == (c.admin, c.member)


async def test_reading_goes_through_the_paywall_decision(c):
    gold = (await c.post("/posts", article(required_tier="gold", publish=True), actor=c.owner)).json()
    free = (await c.post("/posts", article(publish=True), actor=c.owner)).json()
    blocked = await c.get(f"/posts/{gold['id']}", actor=c.member)
    assert blocked.status_code == 402 and blocked.json()["required_tier"] == "gold"
    assert (await c.get(f"/posts/{gold['id']}", actor=c.gold)).status_code == 200
    assert (await c.get(f"/posts/{gold['id']}", actor=c.guest)).status_code == 200  # staff and guests read all
    assert (await c.get(f"/posts/{free['id']}", actor=c.member)).status_code == 200
    assert (await c.get(f"/posts/{free['id']}", actor="wecom:outsider")).status_code == 402
    assert (await c.post(f"/posts/{gold['id']}/comments", {"body_md": "?"}, actor=c.member)).status_code == 402
    teaser = (await c.get("/posts", actor=c.member)).json()["data"][0]
    assert "body_md" not in teaser


async def test_content_mix_report_and_warning(c, outbox_events):
    for level in ["advanced"] * 4 + ["beginner"]:
        assert (await c.post("/posts", article(level=level, publish=True))).status_code == 201
    report = (await c.get("/content-mix")).json()
    shares = {s["level"]: s for s in report["shares"]}
    assert (report["posts"], shares["advanced"]["actual_pct"], shares["advanced"]["target_pct"]) == (5, 80.0, 20.0)
    # beginner is 20 % for a 30 % target: exactly 10 points off, not more.
    assert report["off_levels"] == ["intermediate", "advanced"]
    (warning,) = await outbox_events(c.content, "content_mix.deviated")
    assert warning["data"]["off_levels"] == ["intermediate", "advanced"]
    # The same deviation is not announced again at every post (beginner 2/6 is on target, the rest still off).
    await c.post("/posts", article(level="beginner", publish=True))
    assert len(await outbox_events(c.content, "content_mix.deviated")) == 1
    bad = await c.post("/content-mix", {"beginner_pct": 50, "intermediate_pct": 50, "advanced_pct": 50}, method="PUT")
    assert bad.status_code == 422


async def _status(response_coro, expected: int) -> bool:
    return (await response_coro).status_code == expected
