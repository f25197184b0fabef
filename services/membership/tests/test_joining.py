"""Join flows: free, paid, application + review, invite codes, referrals, rules, blacklist, capacity, trials."""

from __future__ import annotations

import asyncio

import pytest
from conftest import OWNER

ALICE, BOB, CAROL = "wecom:alice", "wecom:bob", "wecom:carol"


async def test_free_entry_admits_at_once(h):
    cid = (await h.community())["id"]
    await h.group(cid, "g1")

    member = await h.join(cid, ALICE, display_name="上海-电商-小王")

    assert (member["status"], member["expires_at"]) == ("active", None)
    assert [e.type for e in await h.emitted(community_id=cid) if e.type.startswith("member.")] == [
        "member.joined", "member.activated"]
    assert (await h.access(cid, ALICE))["allowed"] is True


async def test_application_then_review_then_payment(h):
    cid = (await h.community(entry_policies=["application", "paid"]))["id"]
    plan = await h.plan(cid)

    applied = await h.join(cid, ALICE, application_text="我是做增长的，想交流")
    assert applied["status"] == "applied"
    assert (await h.access(cid, ALICE))["reason"] == "application_pending"
    pending = await h.ok("GET", f"/communities/{cid}/applications", OWNER)
    assert [(a["member_id"], a["application_text"]) for a in pending["data"]] == [(ALICE, "我是做增长的，想交流")]

    approved = await h.ok("POST", f"/communities/{cid}/applications/{ALICE}/decision", OWNER,
                          json={"decision": "approve"})
    assert approved["status"] == "pending_payment"
    assert (await h.access(cid, ALICE))["reason"] == "payment_required"

    await h.pay(cid, ALICE, plan["id"], 100_000)
    assert (await h.member(cid, ALICE))["status"] == "active"
    types = [e.type for e in await h.emitted(community_id=cid) if e.type.startswith("member.")]
    assert types == ["member.applied", "member.joined", "member.activated"]


async def test_rejection_needs_a_reason_and_the_person_may_apply_again(h):
    cid = (await h.community(entry_policies=["application"]))["id"]
    await h.join(cid, ALICE)

    no_reason = await h.call("POST", f"/communities/{cid}/applications/{ALICE}/decision", OWNER,
                             json={"decision": "reject"})
    rejected = await h.ok("POST", f"/communities/{cid}/applications/{ALICE}/decision", OWNER,
                          json={"decision": "reject", "reason": "定位不符"})

    assert no_reason.status_code == 403
    assert (rejected["status"], rejected["status_reason"]) == ("rejected", "定位不符")
    (event,) = await h.emitted("member.rejected")
    assert event.data["reason"] == "定位不符"
    assert (await h.join(cid, ALICE))["status"] == "applied"


async def test_the_current_rules_version_must_be_accepted(h):
    cid = (await h.community(rules="第一版群规"))["id"]
    await h.ok("POST", f"/communities/{cid}/rules", OWNER, json={"text": "第二版群规"}, status=201)

    stale = await h.call("POST", f"/communities/{cid}/join", ALICE, json={"accepted_rules_version": 1})
    current = await h.join(cid, ALICE, accepted_rules_version=2)

    assert stale.status_code == 409
    assert stale.json()["current_version"] == 2
    assert current["status"] == "active"
    rules = await h.ok("GET", f"/communities/{cid}/rules")
    assert (rules["version"], rules["text"]) == (2, "第二版群规")


async def test_joining_twice_returns_the_membership_unchanged(h):
    cid = (await h.community(entry_policies=["paid"]))["id"]
    first = await h.call("POST", f"/communities/{cid}/join", ALICE, json={})
    second = await h.call("POST", f"/communities/{cid}/join", ALICE, json={})
    assert (first.status_code, second.status_code) == (201, 200)
    assert len(await h.emitted("member.joined")) == 1


@pytest.mark.parametrize("field,value", [("role", "admin"), ("tier", "pro"), ("status", "active"),
                                         ("expires_at", "2099-01-01T00:00:00Z"), ("comp", True)])
async def test_mass_assignment_through_the_join_body_is_rejected(h, field, value):
    cid = (await h.community(entry_policies=["paid"]))["id"]

    response = await h.call("POST", f"/communities/{cid}/join", ALICE, json={field: value})

    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["body", field]
    assert (await h.call("GET", f"/communities/{cid}/members/{ALICE}", "service:test")).status_code == 404


@pytest.mark.parametrize("path,body", [
    ("/members/{m}", {"display_name": "x", "role": "owner"}),
    ("/members/{m}", {"status": "active"}),
    ("/members/{m}/role", {"role": "owner"}),
    ("/settings", {"guest_count": 0}),
])
async def test_mass_assignment_anywhere_is_rejected(h, path, body):
    cid = (await h.community())["id"]
    await h.join(cid, ALICE)
    method = "PUT" if path.endswith("/role") else "PATCH"
    actor = ALICE if path == "/members/{m}" else OWNER

    response = await h.call(method, f"/communities/{cid}" + path.format(m=ALICE), actor, json=body)

    assert response.status_code == 422
    member = await h.member(cid, ALICE)
    assert (member["role"], member["status"]) == ("member", "active")


async def test_invite_only_needs_a_valid_code_and_records_the_inviter(h):
    cid = (await h.community(entry_policies=["invite_only"]))["id"]
    invite = await h.ok("POST", f"/communities/{cid}/invites", OWNER, json={}, status=201)

    without = await h.call("POST", f"/communities/{cid}/join", ALICE, json={})
    wrong = await h.call("POST", f"/communities/{cid}/join", ALICE, json={"invite_code": "nope-nope"})
    joined = await h.join(cid, ALICE, invite_code=invite["code"])
    used_up = await h.call("POST", f"/communities/{cid}/join", BOB, json={"invite_code": invite["code"]})

    assert without.status_code == 403 and without.json()["reason"] == "invite_required"
    assert wrong.status_code == 409 and wrong.json()["reason"] == "unknown"
    assert (joined["status"], joined["referrer_id"]) == ("active", OWNER)
    assert used_up.status_code == 409 and used_up.json()["reason"] == "used_up"
    (redeemed,) = await h.emitted("invite.redeemed")
    assert (redeemed.data["inviter_id"], redeemed.data["invitee_id"]) == (OWNER, ALICE)


async def test_multi_use_codes_expire_and_can_be_revoked(h):
    cid = (await h.community(entry_policies=["invite_only"]))["id"]
    await h.join(cid, ALICE, invite_code=(await h.ok("POST", f"/communities/{cid}/invites", OWNER, json={}))["code"])
    expires = h.clock().replace(day=27).isoformat()
    invite = await h.ok("POST", f"/communities/{cid}/invites", ALICE, json={"max_uses": 2, "expires_at": expires})

    await h.join(cid, BOB, invite_code=invite["code"])
    h.clock.advance(days=2)
    late = await h.call("POST", f"/communities/{cid}/join", CAROL, json={"invite_code": invite["code"]})
    assert late.status_code == 409 and late.json()["reason"] == "expired"

    other = await h.ok("POST", f"/communities/{cid}/invites", ALICE, json={"max_uses": 5})
    await h.ok("DELETE", f"/communities/{cid}/invites/{other['id']}", ALICE)
    revoked = await h.call("POST", f"/communities/{cid}/join", CAROL, json={"invite_code": other["code"]})
    assert revoked.status_code == 409 and revoked.json()["reason"] == "revoked"
    mine = await h.ok("GET", f"/communities/{cid}/invites", ALICE)
    assert sorted((i["uses"], i["max_uses"]) for i in mine["data"]) == [(0, 5), (1, 2)]


async def test_a_single_use_code_raced_by_many_is_used_once(h):
    cid = (await h.community(entry_policies=["invite_only"]))["id"]
    code = (await h.ok("POST", f"/communities/{cid}/invites", OWNER, json={}))["code"]

    responses = await asyncio.gather(*(
        h.call("POST", f"/communities/{cid}/join", f"wecom:racer{i}", json={"invite_code": code}) for i in range(8)
    ))

    assert sorted(r.status_code for r in responses).count(201) == 1
    assert all(r.status_code in (201, 409) for r in responses)


async def test_referral_required_needs_a_member_in_good_standing(h):
    cid = (await h.community(entry_policies=["referral_required"]))["id"]

    alone = await h.call("POST", f"/communities/{cid}/join", ALICE, json={})
    by_stranger = await h.call("POST", f"/communities/{cid}/join", ALICE, json={"referrer_id": BOB})
    by_owner = await h.join(cid, ALICE, referrer_id=OWNER)
    chained = await h.join(cid, BOB, referrer_id=ALICE)

    assert alone.status_code == 403 and alone.json()["reason"] == "referral_required"
    assert by_stranger.status_code == 403 and by_stranger.json()["reason"] == "referrer_invalid"
    assert by_owner["referrer_id"] == OWNER and chained["referrer_id"] == ALICE
    chain = await h.ok("GET", f"/communities/{cid}/members/{BOB}/referrals", BOB)
    assert [(c["member_id"], c["referrer_id"]) for c in chain["chain"]] == [(BOB, ALICE), (ALICE, OWNER),
                                                                             (OWNER, None)]


async def test_a_blacklisted_person_cannot_rejoin_any_of_the_owners_communities(h):
    first = (await h.community())["id"]
    second = (await h.community(entry_policies=["paid"]))["id"]
    plan = await h.plan(second)
    elsewhere = (await h.community(owner="wecom:other-owner"))["id"]
    await h.group(first, "g1")
    await h.join(first, ALICE)

    await h.ok("POST", f"/communities/{first}/members/{ALICE}/blacklist", OWNER, json={"reason": "发广告"},
               status=204)

    assert (await h.member(first, ALICE))["status"] == "blacklisted"
    assert [a["group_id"] for a in await h.actions("remove_member", ALICE)] == ["wecom:g1"]
    for cid in (first, second):
        refused = await h.call("POST", f"/communities/{cid}/join", ALICE, json={})
        assert refused.status_code == 403 and refused.json()["type"].endswith("blacklisted")
    assert (await h.join(elsewhere, ALICE))["status"] == "active"  # another owner's community
    await h.pay(second, ALICE, plan["id"], 100_000)  # paying does not get around it either
    assert (await h.emitted("refund.requested"))[0].data["reason_code"] == "blacklisted"
    assert (await h.access(second, ALICE))["reason"] == "blacklisted"

    listed = await h.ok("GET", f"/communities/{second}/blacklist", OWNER)
    assert [(b["person_id"], b["reason"]) for b in listed] == [(ALICE, "发广告")]
    await h.ok("DELETE", f"/communities/{second}/blacklist/{ALICE}", OWNER, status=204)
    assert (await h.join(first, ALICE))["status"] == "active"


async def test_a_full_group_sends_the_next_member_to_the_next_open_group(h):
    cid = (await h.community())["id"]
    await h.group(cid, "a1", capacity=2, position=0)
    await h.group(cid, "core", capacity=100, role="B")
    await h.group(cid, "a2", capacity=1, position=1)

    for i in range(4):
        await h.join(cid, f"wecom:m{i}")

    groups = {g["id"]: g["member_count"] for g in await h.ok("GET", f"/communities/{cid}/groups", OWNER)}
    assert groups == {"wecom:a1": 2, "wecom:a2": 1, "wecom:core": 0}
    seats = [(await h.emitted("member.activated"))[i].data["group_ids"] for i in range(4)]
    assert seats == [["wecom:a1"], ["wecom:a1"], ["wecom:a2"], []]  # the 4th waits for a seat

    await h.group(cid, "a3", capacity=10, position=2)  # a new group seats whoever waits
    (assigned,) = await h.emitted("member.groups_changed")
    assert (assigned.data["member_id"], assigned.data["group_ids"]) == ("wecom:m3", ["wecom:a3"])


async def test_concurrent_joins_never_overfill_a_group(h):
    cid = (await h.community())["id"]
    await h.group(cid, "small", capacity=3)

    await asyncio.gather(*(h.join(cid, f"wecom:c{i}") for i in range(10)))

    (group,) = await h.ok("GET", f"/communities/{cid}/groups", OWNER)
    assert group["member_count"] == 3
    shrink = await h.call("PATCH", f"/communities/{cid}/groups/wecom:small", OWNER, json={"capacity": 2})
    assert shrink.status_code == 409


async def test_a_trial_gives_access_once(h):
    cid = (await h.community(entry_policies=["paid"]))["id"]
    plan = await h.plan(cid, trial_days=7)

    trial = await h.ok("POST", f"/communities/{cid}/trials", ALICE, json={"plan_id": plan["id"]}, status=201)
    assert (trial["status"], trial["expires_at"]) == ("active", "2026-12-03T02:00:00Z")
    h.clock.advance(days=8)
    await h.run_scheduler()
    assert (await h.member(cid, ALICE))["status"] == "expired"
    again = await h.call("POST", f"/communities/{cid}/trials", ALICE, json={"plan_id": plan["id"]})
    assert again.status_code == 409
