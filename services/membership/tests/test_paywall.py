"""The paywall's access decision: member × resource tier × level × reading limit, with the reason."""

from __future__ import annotations

from datetime import timedelta

from conftest import OWNER

ALICE = "wecom:alice"


async def tiered(h):
    cid = (await h.community(entry_policies=["paid"]))["id"]
    await h.ok("PATCH", f"/communities/{cid}/settings", OWNER, json={"tiers": ["basic", "pro"]})
    basic = await h.plan(cid, tier="basic", price_fen=10_000)
    pro = await h.plan(cid, tier="pro", price_fen=50_000)
    return cid, basic, pro


async def test_tiers_rank_from_lowest_to_highest(h):
    cid, basic, pro = await tiered(h)
    await h.join(cid, ALICE)
    await h.pay(cid, ALICE, basic["id"], 10_000)

    assert (await h.access(cid, ALICE, tier="basic"))["allowed"] is True
    denied = await h.access(cid, ALICE, tier="pro")
    assert (denied["allowed"], denied["reason"]) == (False, "tier_required")
    assert (await h.access(cid, ALICE, tier="platinum"))["reason"] == "tier_required"

    await h.pay(cid, ALICE, pro["id"], 50_000)  # an upgrade
    assert (await h.access(cid, ALICE, tier="pro"))["allowed"] is True


async def test_levels_are_compared_with_the_members_level(h):
    cid, basic, _ = await tiered(h)
    await h.join(cid, ALICE)
    await h.pay(cid, ALICE, basic["id"], 10_000)

    low = await h.access(cid, ALICE, min_level=3, member_level=2)
    high = await h.access(cid, ALICE, min_level=3, member_level=3)

    assert (low["allowed"], low["reason"]) == (False, "level_required")
    assert high["allowed"] is True


async def test_the_new_member_reading_limit(h):
    cid, basic, _ = await tiered(h)
    await h.ok("PATCH", f"/communities/{cid}/settings", OWNER, json={"reading_limit_days": 7})
    await h.join(cid, ALICE)
    await h.pay(cid, ALICE, basic["id"], 10_000)
    joined = h.clock()

    old = await h.access(cid, ALICE, published_at=(joined - timedelta(days=8)).isoformat())
    recent = await h.access(cid, ALICE, published_at=(joined - timedelta(days=6)).isoformat())
    owner = await h.access(cid, OWNER, published_at=(joined - timedelta(days=800)).isoformat())

    assert (old["allowed"], old["reason"]) == (False, "reading_limit")
    assert old["visible_from"] == "2026-11-19T02:00:00Z"
    assert recent["allowed"] is True
    assert (owner["allowed"], owner["reason"]) == (True, "staff")
    bad = await h.call("PATCH", f"/communities/{cid}/settings", OWNER, json={"reading_limit_days": 5})
    assert bad.status_code == 422  # N in 7..100
    await h.ok("PATCH", f"/communities/{cid}/settings", OWNER, json={"reading_limit_off": True})
    assert (await h.access(cid, ALICE, published_at=(joined - timedelta(days=8)).isoformat()))["allowed"]


async def test_every_kind_of_outsider_is_denied_with_its_reason(h):
    cid = (await h.community(entry_policies=["application", "paid"]))["id"]
    plan = await h.plan(cid)
    people = {s: f"wecom:{s}" for s in ("applied", "rejected", "pending", "removed", "blacklisted")}
    for person in people.values():
        await h.join(cid, person)
    await h.ok("POST", f"/communities/{cid}/applications/{people['rejected']}/decision", OWNER,
               json={"decision": "reject", "reason": "不符合"})
    for key in ("pending", "removed"):
        await h.ok("POST", f"/communities/{cid}/applications/{people[key]}/decision", OWNER,
                   json={"decision": "approve"})
    await h.pay(cid, people["removed"], plan["id"], 100_000)
    await h.ok("POST", f"/communities/{cid}/members/{people['removed']}/removal", OWNER, json={"reason": "违规"})
    await h.ok("POST", f"/communities/{cid}/members/{people['blacklisted']}/blacklist", OWNER,
               json={"reason": "广告"}, status=204)

    reasons = {key: (await h.access(cid, person))["reason"] for key, person in people.items()}
    reasons["stranger"] = (await h.access(cid, "wecom:stranger"))["reason"]

    assert reasons == {"applied": "application_pending", "rejected": "application_rejected",
                       "pending": "payment_required", "removed": "removed", "blacklisted": "blacklisted",
                       "stranger": "not_a_member"}


async def test_a_member_may_ask_about_themself_but_not_about_others(h):
    cid, basic, _ = await tiered(h)
    await h.join(cid, ALICE)
    await h.join(cid, "wecom:bob")

    mine = await h.call("GET", f"/communities/{cid}/access", ALICE, params={"member_id": ALICE})
    theirs = await h.call("GET", f"/communities/{cid}/access", ALICE, params={"member_id": "wecom:bob"})
    owner = await h.call("GET", f"/communities/{cid}/access", OWNER, params={"member_id": "wecom:bob"})

    assert (mine.status_code, theirs.status_code, owner.status_code) == (200, 403, 200)
    assert mine.json()["reason"] == "payment_required"


async def test_a_dissolved_community_denies_everyone_and_refunds_later_payments(h):
    cid, basic, _ = await tiered(h)
    await h.join(cid, ALICE)
    await h.ok("DELETE", f"/communities/{cid}", OWNER)

    await h.pay(cid, ALICE, basic["id"], 10_000)

    assert (await h.access(cid, ALICE))["reason"] == "community_dissolved"
    (command,) = await h.emitted("refund.requested")
    assert command.data["reason_code"] == "community_dissolved"
    assert (await h.call("POST", f"/communities/{cid}/join", "wecom:late", json={})).status_code == 409
    (dissolved,) = await h.emitted("community.dissolved")
    assert dissolved.data["status"] == "dissolved"
