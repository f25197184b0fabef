"""People who arrive from the chat (#17): the per-community chat join/leave policy, and the owner deciding an
unpaid-join flag at any time (the grace only delays the automatic action)."""

from __future__ import annotations

import pytest

from conftest import OWNER

BOB = "wecom:bob"


async def paid_community_with_unpaid_join(h, policy: str = "remove") -> tuple[str, dict]:
    cid = (await h.community(entry_policies=["paid"]))["id"]
    await h.ok("PATCH", f"/communities/{cid}/settings", OWNER, json={"unpaid_join_policy": policy})
    await h.group(cid, "paid-g")
    await h.chat_join(cid, "wecom:paid-g", BOB)
    (flag,) = await h.ok("GET", f"/communities/{cid}/unpaid-joins", OWNER, params={"state": "pending"})
    return cid, flag


@pytest.mark.parametrize("decision,state,removals", [("remove", "removed", 1), ("dismiss", "dismissed", 0),
                                                     ("keep", "dismissed", 0)])
async def test_the_owner_decides_a_flag_during_its_grace_and_the_sweep_then_does_nothing(h, decision, state,
                                                                                        removals):
    cid, flag = await paid_community_with_unpaid_join(h)

    decided = await h.ok("POST", f"/communities/{cid}/unpaid-joins/{flag['id']}/decision", OWNER,
                         json={"decision": decision})
    assert (decided["state"], decided["decided_by"]) == (state, OWNER)
    assert len(await h.actions("remove_member", BOB)) == removals
    (resolved,) = await h.emitted("unpaid_join.resolved")
    assert (resolved.data["flag_id"], resolved.data["state"], resolved.data["decided_by"]) == (flag["id"], state, OWNER)

    h.clock.advance(minutes=16)
    assert (await h.run_scheduler())["unpaid_joins"] == 0  # the grace ended: nothing left to act on
    assert len(await h.actions("remove_member", BOB)) == removals  # exactly once
    assert await h.emitted("unpaid_join.flagged") == []
    again = await h.call("POST", f"/communities/{cid}/unpaid-joins/{flag['id']}/decision", OWNER,
                         json={"decision": "remove"})
    assert again.status_code == 409 and "already" in again.json()["detail"]


async def test_after_the_sweep_removed_someone_a_decision_is_409(h):
    cid, flag = await paid_community_with_unpaid_join(h)
    h.clock.advance(minutes=16)
    await h.run_scheduler()
    response = await h.call("POST", f"/communities/{cid}/unpaid-joins/{flag['id']}/decision", OWNER,
                            json={"decision": "dismiss"})
    assert response.status_code == 409
    assert len(await h.actions("remove_member", BOB)) == 1


# -- the chat join policy ---------------------------------------------------------------------------------

ALICE = "wecom:alice"


async def test_defaults_follow_the_community_kind_and_the_owner_sets_them(h):
    free = (await h.community())["id"]
    paid = (await h.community(entry_policies=["paid"]))["id"]
    settings = await h.ok("GET", f"/communities/{free}/settings", OWNER)
    assert (settings["chat_join_policy"], settings["chat_leave_policy"]) == ("admit", "keep")
    assert (await h.ok("GET", f"/communities/{paid}/settings", OWNER))["chat_join_policy"] == "flag"

    changed = await h.ok("PATCH", f"/communities/{paid}/settings", OWNER,
                         json={"chat_join_policy": "ignore", "chat_leave_policy": "pause"})
    assert (changed["chat_join_policy"], changed["chat_leave_policy"]) == ("ignore", "pause")
    bad = await h.call("PATCH", f"/communities/{paid}/settings", OWNER, json={"chat_join_policy": "welcome"})
    assert bad.status_code == 422
    await h.join(free, ALICE)
    member = await h.call("PATCH", f"/communities/{free}/settings", ALICE, json={"chat_leave_policy": "end"})
    assert member.status_code == 403


async def test_community_events_carry_the_chat_join_policy_in_force_for_the_gateways_door(h):
    free = (await h.community())["id"]
    paid = (await h.community(entry_policies=["paid"]))["id"]
    await h.ok("PATCH", f"/communities/{paid}/settings", OWNER, json={"chat_join_policy": "ignore"})
    created = {e.community_id: e.data["chat_join_policy"] for e in await h.emitted("community.created")}
    assert created == {free: "admit", paid: "flag"}  # unset: the default it stands for
    (updated,) = await h.emitted("community.updated", paid)
    assert updated.data["chat_join_policy"] == "ignore"


async def test_admit_a_chat_join_makes_an_active_member_exactly_once(h):
    cid = (await h.community())["id"]
    await h.group(cid, "g1", paid=False)
    envelope = h.envelope("chat.member.joined", joined(ALICE, "wecom:g1", h.clock(), name="李一天"), cid)

    await h.deliver(envelope)
    await h.deliver(envelope)  # redelivered: the inbox skips it
    await h.chat_join(cid, "wecom:g1", ALICE, name="李一天")  # the same join under a new delivery id

    member = await h.member(cid, ALICE)
    assert (member["status"], member["display_name"]) == ("active", "李一天")
    assert len([e for e in await h.emitted("member.joined") if e.data["member_id"] == ALICE]) == 1
    assert len([e for e in await h.emitted("member.activated") if e.data["member_id"] == ALICE]) == 1
    groups = {g["id"]: g["member_count"] for g in await h.ok("GET", f"/communities/{cid}/groups", OWNER)}
    assert groups == {"wecom:g1": 1}
    assert (await h.access(cid, ALICE))["allowed"] is True


async def test_admit_never_opens_a_paid_group(h):
    cid = (await h.community())["id"]  # free, with a paid group for a premium tier
    await h.group(cid, "vip", paid=True)
    await h.chat_join(cid, "wecom:vip", ALICE)
    assert (await h.call("GET", f"/communities/{cid}/members/{ALICE}", "service:test")).status_code == 404
    (flag,) = await h.ok("GET", f"/communities/{cid}/unpaid-joins", OWNER)
    assert (flag["person_id"], flag["group_id"]) == (ALICE, "wecom:vip")


async def test_admit_starts_the_joining_ritual(h):
    cid = (await h.community(template="networking"))["id"]
    await h.ok("PATCH", f"/communities/{cid}", OWNER, json={"entry_policies": ["free"]})
    await h.group(cid, "g1", paid=False)

    await h.chat_join(cid, "wecom:g1", ALICE, name="小王")
    assert (await h.member(cid, ALICE))["status"] == "pending_ritual"
    h.clock.advance(hours=24)
    await h.run_scheduler()
    (reminder,) = await h.actions("send_message", ALICE)
    assert reminder["group_id"] == "wecom:g1"

    await h.chat_message(cid, "wecom:g1", ALICE, "我是谁：小王\n我需要：物流\n我能提供：运营")
    await h.chat_rename(cid, "wecom:g1", ALICE, "上海-电商-小王")
    assert (await h.member(cid, ALICE))["status"] == "active"


async def test_a_paid_community_flags_by_default_and_ignore_does_nothing(h):
    cid = (await h.community(entry_policies=["paid"]))["id"]
    await h.group(cid, "paid-g")
    await h.chat_join(cid, "wecom:paid-g", ALICE)
    assert (await h.call("GET", f"/communities/{cid}/members/{ALICE}", "service:test")).status_code == 404
    assert len(await h.ok("GET", f"/communities/{cid}/unpaid-joins", OWNER)) == 1

    await h.ok("PATCH", f"/communities/{cid}/settings", OWNER, json={"chat_join_policy": "ignore"})
    await h.chat_join(cid, "wecom:paid-g", BOB)
    flags = await h.ok("GET", f"/communities/{cid}/unpaid-joins", OWNER)
    assert [f["person_id"] for f in flags] == [ALICE]


async def test_admit_does_not_let_back_someone_an_admin_removed_nor_the_blacklisted(h):
    cid = (await h.community())["id"]
    await h.group(cid, "g1", paid=False)
    await h.join(cid, ALICE)
    await h.ok("POST", f"/communities/{cid}/members/{ALICE}/removal", OWNER, json={"reason": "广告"},
               status=(200, 204))
    await h.chat_join(cid, "wecom:g1", ALICE)
    assert (await h.member(cid, ALICE))["status"] == "removed"

    await h.ok("POST", f"/communities/{cid}/members/wecom:spammer/blacklist", OWNER, json={"reason": "广告"},
               status=204)
    await h.chat_join(cid, "wecom:g1", "wecom:spammer")
    assert (await h.call("GET", f"/communities/{cid}/members/wecom:spammer", "service:test")).status_code == 404
    (removal,) = await h.actions("remove_member", "wecom:spammer")
    assert removal["reason"] == "blacklisted"


# -- leaving every group ----------------------------------------------------------------------------------


async def two_groups_and_alice(h, leave: str) -> str:
    cid = (await h.community())["id"]
    await h.ok("PATCH", f"/communities/{cid}/settings", OWNER, json={"chat_leave_policy": leave})
    await h.group(cid, "a", paid=False)
    await h.group(cid, "b", paid=False, role="B")
    await h.chat_join(cid, "wecom:a", ALICE)
    await h.chat_join(cid, "wecom:b", ALICE)
    return cid


async def test_keep_leaves_the_membership_as_it_is(h):
    cid = await two_groups_and_alice(h, "keep")
    await h.chat_leave(cid, "wecom:a", ALICE)
    await h.chat_leave(cid, "wecom:b", ALICE)
    assert (await h.member(cid, ALICE))["status"] == "active"


async def test_pause_when_the_last_group_is_left_and_resume_on_return(h):
    cid = await two_groups_and_alice(h, "pause")
    await h.chat_leave(cid, "wecom:a", ALICE)
    assert (await h.member(cid, ALICE))["status"] == "active"  # still in b
    left = h.envelope("chat.member.left", left_event(ALICE, "wecom:b", h.clock()), cid)
    await h.deliver(left)
    await h.deliver(left)

    member = await h.member(cid, ALICE)
    assert (member["status"], member["status_reason"]) == ("paused", "left every chat group")
    assert (await h.access(cid, ALICE))["reason"] == "paused"
    changed = [e for e in await h.emitted("member.groups_changed") if e.data["status"] == "paused"]
    assert len(changed) == 1

    await h.chat_join(cid, "wecom:b", ALICE)
    assert (await h.member(cid, ALICE))["status"] == "active"
    assert (await h.access(cid, ALICE))["allowed"] is True


async def test_pause_in_a_paid_community_resumes_a_paid_membership(h):
    cid = (await h.community(entry_policies=["paid"]))["id"]
    plan = await h.plan(cid)
    await h.ok("PATCH", f"/communities/{cid}/settings", OWNER, json={"chat_leave_policy": "pause"})
    await h.group(cid, "paid-g")
    await h.join(cid, ALICE)
    await h.pay(cid, ALICE, plan["id"], 100_000)
    await h.chat_leave(cid, "wecom:paid-g", ALICE)
    assert (await h.member(cid, ALICE))["status"] == "paused"

    await h.chat_join(cid, "wecom:paid-g", ALICE)  # no unpaid-join flag: they paid
    assert (await h.member(cid, ALICE))["status"] == "active"
    assert await h.ok("GET", f"/communities/{cid}/unpaid-joins", OWNER) == []


async def test_end_when_the_last_group_is_left_and_a_chat_join_admits_again(h):
    cid = await two_groups_and_alice(h, "end")
    await h.chat_leave(cid, "wecom:a", ALICE)
    await h.chat_leave(cid, "wecom:b", ALICE)
    member = await h.member(cid, ALICE)
    assert (member["status"], member["status_reason"]) == ("removed", "left every chat group")
    assert await h.actions("remove_member", ALICE) == []  # nothing to remove them from
    (removed,) = await h.emitted("member.removed")
    assert removed.data["member_id"] == ALICE

    await h.chat_join(cid, "wecom:a", ALICE)
    assert (await h.member(cid, ALICE))["status"] == "active"


async def test_staff_are_never_paused(h):
    cid = (await h.community())["id"]
    await h.ok("PATCH", f"/communities/{cid}/settings", OWNER, json={"chat_leave_policy": "end"})
    await h.group(cid, "a", paid=False)
    await h.chat_join(cid, "wecom:a", OWNER)
    await h.chat_leave(cid, "wecom:a", OWNER)
    assert (await h.member(cid, OWNER))["status"] == "active"


def joined(person: str, group_id: str, at, name: str = ""):
    import uuid

    from qunzhu_common.events.contracts.chat import ChatMemberJoined

    return ChatMemberJoined(platform=group_id.split(":", 1)[0], group_id=group_id, delivery_id=uuid.uuid4().hex,
                            member_id=person, display_name=name, joined_at=at)


def left_event(person: str, group_id: str, at):
    import uuid

    from qunzhu_common.events.contracts.chat import ChatMemberLeft

    return ChatMemberLeft(platform=group_id.split(":", 1)[0], group_id=group_id, delivery_id=uuid.uuid4().hex,
                          member_id=person, left_at=at)
