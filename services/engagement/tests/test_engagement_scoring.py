"""Parts 2–3: rules (defaults, caps, cooldown, minimum length, effective activity), the ledger, levels."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

T0 = datetime(2026, 11, 2, 2, 0, tzinfo=UTC)  # Monday 10:00 in Shanghai
A, B = "telegram:101", "telegram:102"


async def setup(engagement, *people: str) -> str:
    cid = await engagement.community()
    for person in people:
        await engagement.member(cid, person)
    return cid


async def verdicts(engagement, cid: str, person: str) -> list[tuple[str | None, int]]:
    rows = await engagement.get(f"/communities/{cid}/members/{person}/activities")
    return [(r["rule_type"], r["points"]) for r in reversed(rows)]


async def test_default_points_and_the_effective_activity_classifier(engagement):
    cid = await setup(engagement, A)
    minute = timedelta(minutes=1)
    await engagement.command(cid, A, "checkin", T0)
    await engagement.message(cid, A, "今天把漏斗模型用到了注册页，转化提升了3%", T0 + 1 * minute)
    await engagement.message(cid, A, "早安！", T0 + 2 * minute)
    await engagement.message(cid, A, "", T0 + 3 * minute, media_kind="sticker")
    await engagement.message(cid, A, "😂😂😂", T0 + 4 * minute)
    await engagement.message(cid, A, "https://example.com/a", T0 + 5 * minute, links=["https://example.com/a"])
    await engagement.message(cid, A, "这篇讲增长飞轮的文章很实用，推荐 https://example.com/b", T0 + 6 * minute,
                             links=["https://example.com/b"])
    await engagement.message(cid, A, "好的", T0 + 7 * minute)
    await engagement.message(cid, A, "1", T0 + 8 * minute)
    await engagement.message(cid, A, "今天把漏斗模型用到了注册页，转化提升了3%", T0 + 9 * minute)  # a repeat
    await engagement.message(cid, A, "嗯嗯对", T0 + 10 * minute)  # shorter than 5

    assert await verdicts(engagement, cid, A) == [
        ("checkin", 5), ("effective_message", 1), ("noise", 0), ("noise", 0), ("noise", 0), ("bare_link", 0),
        ("share_with_intro", 3), ("noise", 0), ("noise", 0), ("noise", 0), ("noise", 0),
    ]
    assert await engagement.points(cid, A) == 9


async def test_every_ledger_entry_says_which_rule_produced_it(engagement):
    cid = await setup(engagement, A)
    checkin = await engagement.command(cid, A, "checkin", T0)
    body = await engagement.get(f"/communities/{cid}/members/{A}/points")

    assert body["total_points"] == 5 and body["level"] == 2 and body["by_rule_type"] == {"checkin": 5}
    [entry] = body["entries"]
    assert (entry["source_event_id"], entry["rule"], entry["rule_set_version"], entry["points"]) == (
        str(checkin.id), "checkin@v0", 0, 5,
    )
    assert "打卡" in entry["reason"] and entry["day"] == "2026-11-02"


async def test_cooldown_scores_one_message_per_slot(engagement):
    cid = await setup(engagement, A)
    await engagement.message(cid, A, "第一条关于增长实验的想法", T0)
    await engagement.message(cid, A, "第二条紧跟着的补充想法", T0 + timedelta(seconds=20))
    await engagement.message(cid, A, "一分钟后的第三条想法", T0 + timedelta(seconds=60))

    assert await verdicts(engagement, cid, A) == [
        ("effective_message", 1), ("effective_message", 0), ("effective_message", 1),
    ]
    reasons = [r["reason"] for r in await engagement.get(f"/communities/{cid}/members/{A}/activities")]
    assert "cooldown" in reasons[1]


async def test_daily_cap_is_per_local_day(engagement):
    cid = await setup(engagement, A)
    # 25 effective messages a minute apart on Monday (Shanghai), cap 20; then one after local midnight.
    for i in range(25):
        await engagement.message(cid, A, f"第{i}个关于实验设计的问题", T0 + timedelta(minutes=i))
    assert await engagement.points(cid, A) == 20
    # 15:59 UTC is still Monday in Shanghai (23:59); 16:01 UTC is Tuesday.
    await engagement.message(cid, A, "周一最后一条实验记录", datetime(2026, 11, 2, 15, 59, tzinfo=UTC))
    await engagement.message(cid, A, "周二第一条实验记录", datetime(2026, 11, 2, 16, 1, tzinfo=UTC))
    assert await engagement.points(cid, A) == 21
    await engagement.command(cid, A, "checkin", T0)
    await engagement.command(cid, A, "checkin", T0 + timedelta(hours=1))  # check-in cap 5: once a day
    assert await engagement.points(cid, A) == 26


async def test_activity_of_an_unknown_member_is_kept_and_scored_once_known(engagement):
    cid = await engagement.community()
    await engagement.command(cid, A, "checkin", T0)
    await engagement.message(cid, A, "还没入群审核就先发言了", T0 + timedelta(minutes=1))
    assert await verdicts(engagement, cid, A) == [(None, 0), (None, 0)]

    await engagement.member(cid, A, type_="member.joined", status="pending_ritual")
    assert await verdicts(engagement, cid, A) == [("checkin", 5), ("effective_message", 1)]
    assert await engagement.points(cid, A) == 6


async def test_redelivered_event_has_one_effect(engagement):
    cid = await setup(engagement, A)
    envelope = await engagement.command(cid, A, "checkin", T0)
    await engagement.deliver(envelope)
    await engagement.deliver(envelope)

    assert await engagement.points(cid, A) == 5
    assert len((await engagement.get(f"/communities/{cid}/members/{A}/points"))["entries"]) == 1


async def test_an_answer_to_a_question_scores_six_once(engagement):
    cid = await setup(engagement, A, B)
    await engagement.command(cid, A, "question", T0, argument="AB测试样本量怎么算？", message_id="q1")
    await engagement.message(cid, B, "用功效分析，先定最小可检测效应", T0 + timedelta(minutes=1),
                             reply_to_message_id="q1", reply_to_sender_id=A)
    await engagement.message(cid, B, "再补充一点：显著性水平取0.05", T0 + timedelta(minutes=2),
                             reply_to_message_id="q1", reply_to_sender_id=A)

    assert await verdicts(engagement, cid, B) == [("question_answered", 6), ("effective_message", 1)]


async def test_a_rule_version_applies_from_its_effective_time(engagement):
    cid = await setup(engagement, A)
    change_at = T0 + timedelta(hours=1)
    response = await engagement.client.post(f"/communities/{cid}/rules", json={
        "effective_from": change_at.isoformat(), "note": "只算增长话题",
        "rules": {"points": {"effective_message": 2}, "keywords": ["增长", "实验"]},
    })
    assert response.status_code == 201, response.text

    await engagement.message(cid, A, "今天天气不错适合跑步", T0)
    await engagement.message(cid, A, "今天天气不错适合跑步啊", change_at)
    await engagement.message(cid, A, "今天的增长实验结果出来了", change_at + timedelta(minutes=1))

    assert await verdicts(engagement, cid, A) == [("effective_message", 1), ("noise", 0), ("effective_message", 2)]
    rules = [e["rule"] for e in (await engagement.get(f"/communities/{cid}/members/{A}/points"))["entries"]]
    assert rules == ["effective_message@v1", "effective_message@v0"]


async def test_inconsistent_rules_are_a_422_naming_the_field(engagement):
    cid = await engagement.community()
    for rules, field in (
        ({"daily_caps": {"checkin": -1}}, "daily_caps"),
        ({"level_thresholds": [0, 20, 5]}, "level_thresholds"),
        ({"points": {"effective_message": -3}}, "points"),
        ({"noise_patterns": ["(unclosed"]}, "noise_patterns"),
    ):
        response = await engagement.client.post(f"/communities/{cid}/rules", json={"rules": rules})
        assert response.status_code == 422, rules
        assert response.headers["content-type"] == "application/problem+json"
        assert field in [part for error in response.json()["errors"] for part in error["loc"]], response.json()


async def test_levels_follow_the_skool_thresholds_and_announce_each_new_level(engagement):
    cid = await setup(engagement, A)
    for day in range(5):  # 5 check-ins: 25 points → L3 (20) after L2 (5)
        await engagement.command(cid, A, "checkin", T0 + timedelta(days=day))

    standing = await engagement.get(f"/communities/{cid}/members/{A}/standing")
    assert (standing["total_points"], standing["level"], standing["next_level_at"]) == (25, 3, 65)
    assert standing["points_to_next_level"] == 40
    reached = [(e.data["level"], e.data["previous_level"]) for e in await engagement.outbox_events("level.reached")]
    assert reached == [(2, 1), (3, 2)]
    awarded = await engagement.outbox_events("points.awarded")
    assert [e.data["total_points"] for e in awarded] == [5, 10, 15, 20, 25]


async def test_content_events_score_attendance_answers_and_posts(engagement):
    from qunzhu_common.events.contracts.content import CommentPosted, GroupAttendance, PostPublished, SessionEnded

    cid = await setup(engagement, A, B)
    guest = "telegram:guest"
    await engagement.feed("post.published", PostPublished(
        community_id=cid, post_id="p1", kind="question", author_id=A, title="怎么做冷启动？", published_at=T0,
    ), community_id=cid)
    await engagement.feed("comment.posted", CommentPosted(
        community_id=cid, comment_id="c1", post_id="p1", kind="answer", author_id=B, post_author_id=A,
        post_kind="question", posted_at=T0 + timedelta(minutes=5),
    ), community_id=cid)
    session = dict(community_id=cid, session_id="s1", topic="增长飞轮", guest_id=guest, host_id="telegram:owner",
                   source_group_id="telegram:-1", target_group_ids=["telegram:-1", "telegram:-2"],
                   starts_at=T0, ends_at=T0 + timedelta(hours=1))
    await engagement.feed("session.ended", SessionEnded(
        **session, ended_at=T0 + timedelta(hours=1), talk_messages=40, questions=3,
        attendance=[GroupAttendance(group_id="telegram:-1", attendee_ids=[A, B, guest], messages=10,
                                    relayed_messages=0),
                    GroupAttendance(group_id="telegram:-2", attendee_ids=[A], messages=3, relayed_messages=40)],
    ), community_id=cid)

    assert await verdicts(engagement, cid, A) == [("question_asked", 0), ("session_attended", 5)]  # once, not twice
    assert await verdicts(engagement, cid, B) == [("question_answered", 6), ("session_attended", 5)]


async def test_a_community_template_sets_the_first_rule_version(engagement):
    from qunzhu_common.events.contracts.membership import CommunityTemplateApplied, ScoringRulePreset

    cid = await setup(engagement, A)
    await engagement.feed("community.template_applied", CommunityTemplateApplied(
        community_id=cid, template="learning", content_rhythm=[], applied_at=T0 - timedelta(days=1),
        scoring_rules=[ScoringRulePreset(action="checkin", points=8, daily_cap=8),
                       ScoringRulePreset(action="intro", points=3)],
    ), community_id=cid)
    rules = await engagement.get(f"/communities/{cid}/rules")
    assert rules["current"]["version"] == 1 and rules["current"]["rules"]["points"]["checkin"] == 8

    await engagement.command(cid, A, "checkin", T0)
    assert await verdicts(engagement, cid, A) == [("checkin", 8)]
