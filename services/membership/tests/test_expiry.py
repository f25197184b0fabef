"""The scheduler: expiry (with grace), removal from paid groups, renewal reminders in the community's zone,
the misfire policy, several schedulers at once, and the lifespan-owned task."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from conftest import OWNER
from membership.jobs import Scheduler

ALICE = "wecom:alice"


async def paid_member(h, **community):
    cid = (await h.community(entry_policies=["paid"], **community))["id"]
    plan = await h.plan(cid)
    await h.group(cid, "paid-g")
    await h.group(cid, "free-g", paid=False, role="B")
    await h.join(cid, ALICE)
    await h.pay(cid, ALICE, plan["id"], 100_000)  # ends 2027-11-26T02:00Z = 10:00 in Shanghai
    await h.ok("PUT", f"/communities/{cid}/members/{ALICE}/groups", OWNER, json={"group_id": "wecom:free-g"})
    return cid, plan


async def test_a_membership_expires_at_its_end_and_leaves_only_the_paid_groups(h):
    cid, _ = await paid_member(h)
    h.clock.set(datetime(2027, 11, 26, 1, 59, tzinfo=UTC))
    await h.run_scheduler()
    assert (await h.member(cid, ALICE))["status"] == "active"

    h.clock.set(datetime(2027, 11, 26, 2, 0, tzinfo=UTC))
    done = await h.run_scheduler()

    assert done["expire"] == 1
    member = await h.member(cid, ALICE)
    assert member["status"] == "expired"
    assert "2027-11-26 10:00" in member["status_reason"]  # said in the community's time
    assert [a["group_id"] for a in await h.actions("remove_member", ALICE)] == ["wecom:paid-g"]
    (expired,) = await h.emitted("member.expired")
    assert expired.data["group_ids"] == ["wecom:free-g"]
    assert (await h.access(cid, ALICE))["reason"] == "expired"
    assert (await h.run_scheduler())["expire"] == 0  # once only


async def test_the_grace_period_keeps_access_then_expires(h):
    cid, _ = await paid_member(h)
    await h.ok("PATCH", f"/communities/{cid}/settings", OWNER, json={"grace_period_days": 3})

    h.clock.set(datetime(2027, 11, 28, 2, 0, tzinfo=UTC))
    await h.run_scheduler()
    decision = await h.access(cid, ALICE)
    assert (decision["allowed"], decision["reason"], decision["in_grace"]) == (True, "grace", True)

    h.clock.set(datetime(2027, 11, 29, 2, 0, tzinfo=UTC))
    await h.run_scheduler()
    assert (await h.member(cid, ALICE))["status"] == "expired"


async def test_renewal_reminders_go_out_7_and_1_days_before_at_10_local(h):
    cid, _ = await paid_member(h)

    h.clock.set(datetime(2027, 11, 19, 1, 59, tzinfo=UTC))  # 09:59 in Shanghai, 7 days before
    assert (await h.run_scheduler())["remind"] == 0
    h.clock.set(datetime(2027, 11, 19, 2, 0, tzinfo=UTC))
    assert (await h.run_scheduler())["remind"] == 1
    assert (await h.run_scheduler())["remind"] == 0
    h.clock.set(datetime(2027, 11, 25, 2, 0, tzinfo=UTC))
    assert (await h.run_scheduler())["remind"] == 1

    reminders = await h.actions("send_message", ALICE)
    assert [r["group_id"] for r in reminders] == ["wecom:free-g", "wecom:free-g"]
    assert "2027-11-26 10:00" in reminders[0]["text"] and "还有 7 天" in reminders[0]["text"]
    assert "还有 1 天" in reminders[1]["text"]
    # The person is a mention placeholder: the gateway writes the name the group knows (#17), never the id.
    assert all(r["text"].startswith("{mention:" + ALICE + "} 你在") for r in reminders)
    events = await h.emitted("member.reminded")
    assert [(e.data["kind"], e.data["days_before"]) for e in events] == [("renewal", 7), ("renewal", 1)]


async def test_reminders_follow_the_community_zone_across_a_dst_change(h):
    cid = (await h.community(entry_policies=["paid"], timezone="America/New_York"))["id"]
    plan = await h.plan(cid, duration_days=10)
    await h.group(cid, "g")
    await h.join(cid, ALICE)
    h.clock.set(datetime(2027, 3, 10, 15, 0, tzinfo=UTC))  # 10:00 EST; ends 2027-03-20 10:00 EDT (14:00Z)
    await h.pay(cid, ALICE, plan["id"], 100_000)
    assert (await h.member(cid, ALICE))["expires_at"] == "2027-03-20T14:00:00Z"  # same wall-clock time

    h.clock.set(datetime(2027, 3, 13, 14, 59, tzinfo=UTC))  # 09:59 EST on the 13th
    assert (await h.run_scheduler())["remind"] == 0
    h.clock.set(datetime(2027, 3, 13, 15, 0, tzinfo=UTC))  # 10:00 EST: 7 days before
    assert (await h.run_scheduler())["remind"] == 1
    h.clock.set(datetime(2027, 3, 19, 13, 59, tzinfo=UTC))  # 09:59 EDT on the 19th
    assert (await h.run_scheduler())["remind"] == 0
    h.clock.set(datetime(2027, 3, 19, 14, 0, tzinfo=UTC))  # 10:00 EDT: 1 day before
    assert (await h.run_scheduler())["remind"] == 1


async def test_missed_reminders_send_only_the_most_imminent_one(h):
    cid, _ = await paid_member(h)
    h.clock.set(datetime(2027, 11, 25, 20, 0, tzinfo=UTC))  # down since before the 7-day reminder

    assert (await h.run_scheduler())["remind"] == 1

    (event,) = await h.emitted("member.reminded")
    assert event.data["days_before"] == 1


async def test_renewing_after_a_reminder_schedules_the_next_term_s_reminders(h):
    cid, plan = await paid_member(h)
    h.clock.set(datetime(2027, 11, 19, 2, 0, tzinfo=UTC))
    await h.run_scheduler()
    await h.pay(cid, ALICE, plan["id"], 100_000)  # now ends 2028-11-25T02:00Z

    h.clock.set(datetime(2027, 11, 25, 2, 0, tzinfo=UTC))
    assert (await h.run_scheduler()) == {"expire": 0, "remind": 0, "unpaid_joins": 0, "campaigns": 0}
    h.clock.set(datetime(2028, 11, 18, 2, 0, tzinfo=UTC))
    assert (await h.run_scheduler())["remind"] == 1


async def test_two_schedulers_at_once_expire_and_remind_once(h):
    cid, _ = await paid_member(h)
    for i in range(5):
        person = f"wecom:p{i}"
        await h.join(cid, person)
        await h.pay(cid, person, (await h.ok("GET", f"/communities/{cid}/plans"))[0]["id"], 100_000)
    ctx, runtime = h.app.state.membership, h.app.state.runtime
    replicas = [Scheduler(ctx, runtime.session_maker) for _ in range(3)]

    h.clock.set(datetime(2027, 11, 25, 2, 0, tzinfo=UTC))
    await asyncio.gather(*(r.run_once() for r in replicas))
    h.clock.set(datetime(2027, 11, 27, 0, 0, tzinfo=UTC))
    await asyncio.gather(*(r.run_once() for r in replicas))

    assert len(await h.emitted("member.reminded")) == 6
    assert len(await h.emitted("member.expired")) == 6
    assert len(await h.actions("remove_member")) == 6


async def test_the_lifespan_runs_the_scheduler_in_the_background(tmp_path, bus, clock, eventually):
    import httpx

    from conftest import Harness, membership_settings
    from membership.app import create_app

    app = create_app(membership_settings(tmp_path, run_consumers=False, run_scheduler=True,
                                         scheduler_interval_s=0.05), bus=bus, clock=clock)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            h = Harness(app, client, clock)
            cid, _ = await paid_member(h)
            clock.set(datetime(2027, 12, 1, tzinfo=UTC))

            async def expired() -> bool:
                return (await h.member(cid, ALICE))["status"] == "expired"

            await eventually(expired, what="the background scheduler to expire the membership")

            async def gauges_refreshed() -> bool:
                return 'qunzhu_membership_members{status="expired"} 1.0' in (await client.get("/metrics")).text

            await eventually(gauges_refreshed, what="the members gauge refreshed by the pass")
            assert "qunzhu_membership_expirations_total 1.0" in (await client.get("/metrics")).text


async def test_in_a_free_community_only_the_paid_tier_ends(h):
    cid = (await h.community())["id"]
    await h.ok("PATCH", f"/communities/{cid}/settings", OWNER, json={"tiers": ["free", "pro"]})
    pro = await h.plan(cid, tier="pro", duration_days=30)
    await h.join(cid, ALICE)
    await h.pay(cid, ALICE, pro["id"], 100_000)
    assert (await h.access(cid, ALICE, tier="pro"))["allowed"] is True

    h.clock.advance(days=31)
    await h.run_scheduler()

    member = await h.member(cid, ALICE)
    assert (member["status"], member["tier"], member["expires_at"]) == ("active", "", None)
    assert (await h.access(cid, ALICE, tier="pro"))["reason"] == "tier_required"
    assert (await h.access(cid, ALICE))["allowed"] is True


async def test_dissolved_communities_send_no_reminders(h):
    cid, _ = await paid_member(h)
    await h.ok("DELETE", f"/communities/{cid}", OWNER)
    h.clock.set(datetime(2027, 11, 19, 2, 0, tzinfo=UTC))
    assert (await h.run_scheduler())["remind"] == 0


async def test_a_trial_converted_by_payment_counts_as_a_conversion_at_the_full_price(h):
    cid = (await h.community(entry_policies=["paid"]))["id"]
    plan = await h.plan(cid, trial_days=7, renewal_price_fen=10)
    await h.ok("POST", f"/communities/{cid}/trials", ALICE, json={"plan_id": plan["id"]})

    await h.pay(cid, ALICE, plan["id"], 10)  # the renewal price is not the first price
    assert (await h.emitted("refund.requested"))[0].data["reason_code"] == "amount_mismatch"
    await h.pay(cid, ALICE, plan["id"], 100_000)

    member = await h.member(cid, ALICE)
    assert member["expires_at"] == "2027-11-26T02:00:00Z"  # from the payment, not after the trial
    assert "qunzhu_membership_paid_conversions_total 1.0" in (await h.client.get("/metrics")).text
