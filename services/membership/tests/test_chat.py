"""What membership learns from the chat groups: the joining ritual, reconciliation of who is really in a
paid group, seats following joins and leaves."""

from __future__ import annotations

from datetime import timedelta

import pytest
from conftest import OWNER

from membership.service.ritual import intro_matches, nickname_matches

ALICE, BOB = "wecom:alice", "wecom:bob"
INTRO = "我是谁：小王，上海做跨境电商\n我需要：找物流渠道\n我能提供：亚马逊运营经验"


@pytest.mark.parametrize("text,ok", [
    (INTRO, True),
    ("我是谁: 小王 我需要: 物流 我能提供: 运营", True),
    ("我是谁：小王\n我需要：\n我能提供：运营", False),  # an empty field
    ("我是谁：小王 我能提供：运营", False),  # a field missing
    ("大家好", False),
])
def test_intro_format(text, ok):
    assert intro_matches(text, ["我是谁", "我需要", "我能提供"]) is ok


@pytest.mark.parametrize("name,ok", [
    ("上海-电商-小王", True), ("上海－电商－小王", True), ("上海_电商_小王", True), ("上海 电商 小王", True),
    ("小王", False), ("上海-小王", False), ("上海-电商-小王-备注", False), ("上海--小王", False),
])
def test_nickname_pattern(name, ok):
    assert nickname_matches(name, "城市-行业-名字") is ok


async def ritual_community(h):
    cid = (await h.community(template="networking"))["id"]  # application + paid, ritual on
    await h.ok("PATCH", f"/communities/{cid}", OWNER, json={"entry_policies": ["free"]})
    await h.group(cid, "g1", paid=False)
    return cid


async def test_a_member_is_fully_active_only_after_intro_and_nickname(h):
    cid = await ritual_community(h)
    member = await h.join(cid, ALICE, accepted_rules_version=1)
    assert member["status"] == "pending_ritual"
    assert (await h.access(cid, ALICE))["reason"] == "ritual_pending"

    await h.chat_join(cid, "wecom:g1", ALICE, name="小王")
    await h.chat_message(cid, "wecom:g1", ALICE, "大家好")
    await h.chat_message(cid, "wecom:g1", ALICE, INTRO)
    assert (await h.member(cid, ALICE))["status"] == "pending_ritual"  # the nickname is still wrong

    await h.chat_rename(cid, "wecom:g1", ALICE, "上海-电商-小王")

    member = await h.member(cid, ALICE)
    assert (member["status"], member["display_name"]) == ("active", "上海-电商-小王")
    (activated,) = await h.emitted("member.activated")
    assert activated.data["reason"] == "joining ritual completed"
    assert (await h.access(cid, ALICE))["allowed"] is True


async def test_the_nickname_may_come_first_and_a_joining_name_counts(h):
    cid = await ritual_community(h)
    await h.join(cid, ALICE, accepted_rules_version=1)
    await h.chat_join(cid, "wecom:g1", ALICE, name="北京-教育-小李")
    await h.chat_message(cid, "wecom:g1", ALICE, INTRO)
    assert (await h.member(cid, ALICE))["status"] == "active"


async def test_ritual_reminders_go_out_after_joining(h):
    cid = await ritual_community(h)
    await h.join(cid, ALICE, accepted_rules_version=1)
    h.clock.advance(hours=24)

    assert (await h.run_scheduler())["remind"] == 1

    (reminder,) = await h.actions("send_message", ALICE)
    assert reminder["group_id"] == "wecom:g1"
    assert "我是谁 / 我需要 / 我能提供" in reminder["text"] and "城市-行业-名字" in reminder["text"]


async def test_switching_the_ritual_off_releases_everyone_waiting(h):
    cid = await ritual_community(h)
    await h.join(cid, ALICE, accepted_rules_version=1)
    await h.ok("PATCH", f"/communities/{cid}/ritual", OWNER, json={"ritual_enabled": False})
    assert (await h.member(cid, ALICE))["status"] == "active"


async def test_someone_in_a_paid_group_without_membership_is_removed_by_policy(h):
    cid = (await h.community(entry_policies=["paid"]))["id"]
    await h.ok("PATCH", f"/communities/{cid}/settings", OWNER, json={"unpaid_join_policy": "remove"})
    await h.group(cid, "paid-g")

    await h.chat_join(cid, "wecom:paid-g", BOB)
    assert (await h.run_scheduler())["unpaid_joins"] == 0  # a grace for a payment on its way
    h.clock.advance(minutes=16)
    await h.run_scheduler()

    (removal,) = await h.actions("remove_member", BOB)
    assert removal["group_id"] == "wecom:paid-g"
    (flagged,) = await h.emitted("unpaid_join.flagged")
    assert (flagged.data["person_id"], flagged.data["state"]) == (BOB, "removed")


async def test_with_policy_flag_admins_decide(h):
    cid = (await h.community(entry_policies=["paid"]))["id"]
    await h.group(cid, "paid-g")
    await h.chat_join(cid, "wecom:paid-g", BOB)
    h.clock.advance(minutes=16)
    await h.run_scheduler()

    (flag,) = await h.ok("GET", f"/communities/{cid}/unpaid-joins", OWNER, params={"state": "open"})
    assert await h.actions("remove_member") == []
    decided = await h.ok("POST", f"/communities/{cid}/unpaid-joins/{flag['id']}/decision", OWNER,
                         json={"decision": "remove"})
    assert decided["state"] == "removed"
    assert len(await h.actions("remove_member", BOB)) == 1


async def test_a_payment_arriving_within_the_grace_clears_the_flag(h):
    cid = (await h.community(entry_policies=["paid"]))["id"]
    plan = await h.plan(cid)
    await h.ok("PATCH", f"/communities/{cid}/settings", OWNER, json={"unpaid_join_policy": "remove"})
    await h.group(cid, "paid-g")
    await h.chat_join(cid, "wecom:paid-g", BOB)  # the chat event overtook the payment

    await h.pay(cid, BOB, plan["id"], 100_000)
    h.clock.advance(minutes=16)
    await h.run_scheduler()

    assert await h.actions("remove_member") == []
    assert (await h.ok("GET", f"/communities/{cid}/unpaid-joins", OWNER))[0]["state"] == "cleared"


async def test_free_groups_and_members_are_not_flagged_and_blacklisted_people_are_removed_at_once(h):
    cid = (await h.community(entry_policies=["paid"]))["id"]
    await h.group(cid, "free-g", paid=False)
    await h.group(cid, "paid-g")
    await h.chat_join(cid, "wecom:free-g", BOB)
    await h.chat_join(cid, "wecom:paid-g", OWNER)
    await h.ok("POST", f"/communities/{cid}/members/wecom:spammer/blacklist", OWNER, json={"reason": "广告"},
               status=204)

    await h.chat_join(cid, "wecom:paid-g", "wecom:spammer")

    assert await h.ok("GET", f"/communities/{cid}/unpaid-joins", OWNER) == []
    (removal,) = await h.actions("remove_member")
    assert (removal["member_id"], removal["reason"]) == ("wecom:spammer", "blacklisted")


async def test_seats_follow_joins_and_leaves(h):
    cid = (await h.community())["id"]
    await h.group(cid, "a", capacity=5)
    await h.group(cid, "b", capacity=5, role="B")
    await h.join(cid, ALICE)  # seated in a

    await h.chat_join(cid, "wecom:b", ALICE)
    await h.chat_leave(cid, "wecom:a", ALICE)

    groups = {g["id"]: g["member_count"] for g in await h.ok("GET", f"/communities/{cid}/groups", OWNER)}
    assert groups == {"wecom:a": 0, "wecom:b": 1}
    events = await h.emitted("member.groups_changed")
    assert [e.data["group_ids"] for e in events] == [["wecom:a", "wecom:b"], ["wecom:b"]]


async def test_events_of_unknown_groups_are_ignored(h):
    cid = (await h.community())["id"]
    await h.chat_join(cid, "wecom:not-ours", BOB)
    await h.chat_message(cid, "wecom:not-ours", BOB, INTRO)
    assert await h.ok("GET", f"/communities/{cid}/unpaid-joins", OWNER) == []


async def test_removal_recommended_with_policy_review_waits_for_a_decision(h):
    cid = (await h.community())["id"]
    await h.group(cid, "g")
    await h.join(cid, ALICE)
    recommendation = recommended(h, cid, ALICE, "2 个月积分倒数第 3")

    await h.deliver(recommendation, topic="engagement.events.v1")
    await h.deliver(recommendation, topic="engagement.events.v1")  # duplicate

    (review,) = await h.ok("GET", f"/communities/{cid}/removal-reviews", OWNER)
    assert (review["member_id"], review["reason"]) == (ALICE, "engagement: elimination: 2 个月积分倒数第 3")
    assert (await h.member(cid, ALICE))["status"] == "active"
    member_cannot = await h.call("POST", f"/communities/{cid}/removal-reviews/{review['id']}/decision", ALICE,
                                 json={"decision": "approve"})
    assert member_cannot.status_code == 403

    await h.ok("POST", f"/communities/{cid}/removal-reviews/{review['id']}/decision", OWNER,
               json={"decision": "approve"})

    assert (await h.member(cid, ALICE))["status"] == "removed"
    (removed,) = await h.emitted("member.removed")
    assert removed.data["reason"] == "engagement: elimination: 2 个月积分倒数第 3"
    assert [a["group_id"] for a in await h.actions("remove_member", ALICE)] == ["wecom:g"]
    metrics = (await h.client.get("/metrics")).text
    assert 'qunzhu_membership_removals_total{reason="engagement"} 1.0' in metrics


async def test_removal_recommended_with_policy_auto_removes_members_but_never_staff(h):
    cid = (await h.community())["id"]
    await h.ok("PATCH", f"/communities/{cid}/settings", OWNER, json={"removal_policy": "auto"})
    await h.join(cid, ALICE)
    await h.join(cid, BOB)
    await h.ok("PUT", f"/communities/{cid}/members/{BOB}/role", OWNER, json={"role": "admin"})

    await h.deliver(recommended(h, cid, ALICE, "潜水 60 天"), topic="engagement.events.v1")
    await h.deliver(recommended(h, cid, BOB, "潜水 60 天"), topic="engagement.events.v1")

    assert (await h.member(cid, ALICE))["status"] == "removed"
    assert (await h.member(cid, BOB))["status"] == "active"
    assert await h.ok("GET", f"/communities/{cid}/removal-reviews", OWNER) == []


def recommended(h, cid, member, detail):
    # Whichever definition is registered (engagement's contract, or membership's mirror of it).
    payload = h.runtime.registry.spec_for("removal.recommended", 1).payload
    return h.envelope("removal.recommended", payload(
        community_id=cid, member_id=member, reason="elimination", detail=detail,
        evidence={"rank_from_bottom": 3, "window_days": 60}, recommended_at=h.clock() - timedelta(minutes=1)), cid)
