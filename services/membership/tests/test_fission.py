"""Invitations and fission: leaderboard by period in the community's zone, commission, campaigns."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from conftest import OWNER

ALICE, BOB = "wecom:alice", "wecom:bob"


async def setup(h):
    cid = (await h.community(entry_policies=["paid"]))["id"]
    await h.ok("PATCH", f"/communities/{cid}/settings", OWNER, json={"referral_commission_bps": 1000})
    plan = await h.plan(cid)
    await h.group(cid, "g", capacity=500)
    for person in (ALICE, BOB):
        await h.join(cid, person)
        await h.pay(cid, person, plan["id"], 100_000)
    return cid, plan


async def bring(h, cid, plan, referrer, n, prefix):
    for i in range(n):
        person = f"wecom:{prefix}{i}"
        await h.join(cid, person, referrer_id=referrer)
        await h.pay(cid, person, plan["id"], 100_000)


async def test_the_leaderboard_counts_invites_and_commission_per_period(h):
    cid, plan = await setup(h)
    await bring(h, cid, plan, ALICE, 3, "a")
    await bring(h, cid, plan, BOB, 1, "b")
    h.clock.advance(days=2)
    await bring(h, cid, plan, BOB, 3, "c")

    today = await h.ok("GET", f"/communities/{cid}/leaderboard", ALICE, params={"period": "day"})
    month = await h.ok("GET", f"/communities/{cid}/leaderboard", ALICE, params={"period": "month"})
    custom = await h.ok("GET", f"/communities/{cid}/leaderboard", ALICE, params={
        "period": "custom", "start": "2026-11-01T00:00:00Z", "end": "2026-12-31T00:00:00Z"})

    assert [(r["member_id"], r["invites"], r["commission_fen"]) for r in today["data"]] == [(BOB, 3, 30_000)]
    assert today["starts_at"] == "2026-11-27T16:00:00Z"  # local midnight in Shanghai
    assert [(r["rank"], r["member_id"], r["invites"]) for r in month["data"]] == [(1, BOB, 4), (2, ALICE, 3)]
    assert [(r["member_id"], r["invites"], r["commission_fen"]) for r in custom["data"]] == [
        (BOB, 4, 40_000), (ALICE, 3, 30_000)]


async def test_a_refunded_referral_takes_its_commission_back(h):
    cid, plan = await setup(h)
    await h.join(cid, "wecom:x", referrer_id=ALICE)
    await h.pay(cid, "wecom:x", plan["id"], 100_000, payment_id="x-pay")
    await h.deliver(h.refund(cid, "x-pay", 100_000))

    board = await h.ok("GET", f"/communities/{cid}/leaderboard", ALICE, params={"period": "day"})

    assert board["data"] == []  # the join was undone and so was the commission


async def test_a_member_goal_campaign_shows_progress_and_is_announced_once_reached(h):
    cid, plan = await setup(h)
    campaign = await h.ok("POST", f"/communities/{cid}/campaigns", OWNER, json={
        "kind": "member_goal", "title": "群满 5 人", "reward": "群主发 ¥500 红包", "goal": 5,
        "group_id": "wecom:g"}, status=201)
    assert (campaign["progress"], campaign["percent"]) == (2, 40.0)
    await h.run_scheduler()
    assert await h.emitted("campaign.goal_reached") == []

    await bring(h, cid, plan, ALICE, 3, "n")
    await h.run_scheduler()
    await h.run_scheduler()

    seen = await h.ok("GET", f"/communities/{cid}/campaigns/{campaign['id']}", BOB)
    assert (seen["state"], seen["progress"], seen["percent"]) == ("goal_reached", 5, 100.0)
    assert len(await h.emitted("campaign.goal_reached")) == 1
    (announcement,) = await h.actions("announce")
    assert announcement["group_id"] == "wecom:g" and "¥500" in announcement["text"]


async def test_an_invite_contest_names_its_winners_when_it_ends(h):
    cid, plan = await setup(h)
    ends = h.clock() + timedelta(days=7)
    contest = await h.ok("POST", f"/communities/{cid}/campaigns", OWNER, json={
        "kind": "invite_contest", "title": "邀请赛", "reward": "第一名 ¥10,000", "places": 1,
        "starts_at": h.clock().isoformat(), "ends_at": ends.isoformat()}, status=201)
    await bring(h, cid, plan, ALICE, 2, "a")
    await bring(h, cid, plan, BOB, 1, "b")
    live = await h.ok("GET", f"/communities/{cid}/campaigns/{contest['id']}", BOB)
    assert [(r["member_id"], r["invites"]) for r in live["leaders"]] == [(ALICE, 2), (BOB, 1)]

    h.clock.set(ends + timedelta(minutes=1))
    await bring(h, cid, plan, BOB, 3, "late")  # after the end: does not count
    await h.run_scheduler()

    (finished,) = await h.emitted("campaign.finished")
    assert finished.data["winners"] == [{"place": 1, "member_id": ALICE, "invites": 2}]
    assert "第1名 {mention:wecom:alice}" in (await h.actions("announce"))[0]["text"]  # the gateway names her


async def test_campaign_rules_are_checked(h):
    cid, _ = await setup(h)
    no_goal = await h.call("POST", f"/communities/{cid}/campaigns", OWNER,
                           json={"kind": "member_goal", "title": "x", "reward": "y"})
    member = await h.call("POST", f"/communities/{cid}/campaigns", ALICE,
                          json={"kind": "member_goal", "title": "x", "reward": "y", "goal": 3})
    past = await h.call("POST", f"/communities/{cid}/campaigns", OWNER, json={
        "kind": "invite_contest", "title": "x", "reward": "y",
        "starts_at": datetime(2020, 1, 1, tzinfo=UTC).isoformat(),
        "ends_at": datetime(2020, 2, 1, tzinfo=UTC).isoformat()})
    assert (no_goal.status_code, member.status_code, past.status_code) == (422, 403, 422)
