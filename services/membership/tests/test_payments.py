"""Payments exactly once per payment id — duplicates, reordering with refunds, rejections — and the ledger."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta

import pytest
from conftest import OWNER

ALICE, BOB = "wecom:alice", "wecom:bob"


async def paid_community(h, **body):
    community = await h.community(entry_policies=["paid"], **body)
    plan = await h.plan(community["id"])
    return community["id"], plan


async def test_payment_activates_a_pending_member_and_seats_them(h):
    cid, plan = await paid_community(h)
    await h.group(cid, "g1")
    assert (await h.join(cid, ALICE))["status"] == "pending_payment"

    await h.pay(cid, ALICE, plan["id"], 100_000)

    member = await h.member(cid, ALICE)
    assert member["status"] == "active"
    assert member["tier"] == "standard"
    assert member["expires_at"] == "2027-11-26T02:00:00Z"  # 365 days from the payment
    (activated,) = await h.emitted("member.activated")
    assert activated.data["group_ids"] == ["wecom:g1"]
    assert (await h.access(cid, ALICE))["allowed"] is True


async def test_the_same_event_delivered_twice_has_one_effect(h):
    cid, plan = await paid_community(h)
    await h.join(cid, ALICE)
    event = h.payment(cid, ALICE, plan["id"], 100_000)

    await h.deliver(event)
    await h.deliver(event)

    member = await h.member(cid, ALICE)
    assert member["expires_at"] == "2027-11-26T02:00:00Z"
    assert len(await h.emitted("member.activated")) == 1
    assert len(await h.emitted("revenue.recorded")) == 1


async def test_one_payment_id_in_two_different_events_is_applied_once(h):
    cid, plan = await paid_community(h)
    await h.join(cid, ALICE)
    first = h.payment(cid, ALICE, plan["id"], 100_000, payment_id="wx-1")
    again = h.payment(cid, ALICE, plan["id"], 100_000, payment_id="wx-1")  # the provider notified twice
    assert first.id != again.id

    await h.deliver(first)
    h.clock.advance(days=3)
    await h.deliver(again)

    assert (await h.member(cid, ALICE))["expires_at"] == "2027-11-26T02:00:00Z"  # not extended twice
    summary = (await h.ok("GET", f"/communities/{cid}/ledger", OWNER))["summary"]
    assert summary[0]["captured_fen"] == 100_000


async def test_concurrent_deliveries_of_one_payment_apply_it_once(h):
    cid, plan = await paid_community(h)
    await h.join(cid, ALICE)
    events = [h.payment(cid, ALICE, plan["id"], 100_000, payment_id="wx-9") for _ in range(5)]

    results = await asyncio.gather(*(h.deliver(e) for e in events), return_exceptions=True)

    # Whatever lost a race was rolled back (the bus retries it); the effect happened once.
    for e, r in zip(events, results, strict=True):
        if isinstance(r, Exception):
            await h.deliver(e)
    summary = (await h.ok("GET", f"/communities/{cid}/ledger", OWNER))["summary"][0]
    assert (summary["captured_fen"], summary["reconciled"]) == (100_000, True)
    assert len(await h.emitted("member.activated")) == 1


async def test_a_refund_that_overtakes_its_payment_means_the_payment_never_grants(h):
    cid, plan = await paid_community(h)
    await h.join(cid, ALICE)
    success = h.payment(cid, ALICE, plan["id"], 100_000, payment_id="wx-2")
    refund = h.refund(cid, "wx-2", 100_000, refund_id="rf-2")

    await h.deliver(refund)  # reordered: the refund first
    assert (await h.member(cid, ALICE))["status"] == "pending_payment"
    await h.deliver(success)
    await h.deliver(refund)  # and both again
    await h.deliver(success)

    member = await h.member(cid, ALICE)
    assert member["status"] == "pending_payment"
    assert await h.emitted("member.activated") == []
    summary = (await h.ok("GET", f"/communities/{cid}/ledger", OWNER))["summary"][0]
    assert (summary["captured_fen"], summary["refunded_fen"], summary["net_fen"]) == (100_000, 100_000, 0)
    assert summary["owner_fen"] == summary["platform_fee_fen"] == 0
    assert summary["reconciled"] is True
    (payment,) = (await h.ok("GET", f"/communities/{cid}/payments", OWNER))["data"]
    assert (payment["outcome"], payment["refunded_fen"]) == ("refunded", 100_000)


async def test_a_full_refund_revokes_and_removes_from_paid_groups_only(h):
    cid, plan = await paid_community(h)
    await h.group(cid, "paid-1", paid=True)
    await h.group(cid, "free-1", paid=False, role="B")
    await h.join(cid, ALICE)
    await h.pay(cid, ALICE, plan["id"], 100_000, payment_id="wx-3")
    await h.ok("PUT", f"/communities/{cid}/members/{ALICE}/groups", OWNER, json={"group_id": "wecom:free-1"})

    await h.deliver(h.refund(cid, "wx-3", 100_000, reason="不想要了"))

    member = await h.member(cid, ALICE)
    assert (member["status"], member["expires_at"]) == ("removed", None)
    assert "refunded" in member["status_reason"]
    removals = await h.actions("remove_member", ALICE)
    assert [a["group_id"] for a in removals] == ["wecom:paid-1"]
    (removed,) = await h.emitted("member.removed")
    assert removed.data["group_ids"] == ["wecom:free-1"]
    assert (await h.access(cid, ALICE))["reason"] == "removed"


async def test_a_partial_refund_keeps_the_membership_and_books_the_split_in_proportion(h):
    cid, plan = await paid_community(h)
    await h.join(cid, ALICE)
    await h.pay(cid, ALICE, plan["id"], 100_000, payment_id="wx-4")

    await h.deliver(h.refund(cid, "wx-4", 40_000))

    assert (await h.member(cid, ALICE))["status"] == "active"
    summary = (await h.ok("GET", f"/communities/{cid}/ledger", OWNER))["summary"][0]
    assert summary["platform_fee_fen"] == 3_000  # 5 % of the 60 000 kept
    assert summary["owner_fen"] == 57_000
    assert summary["reconciled"] is True

    await h.deliver(h.refund(cid, "wx-4", 60_000))
    assert (await h.member(cid, ALICE))["status"] == "removed"
    summary = (await h.ok("GET", f"/communities/{cid}/ledger", OWNER))["summary"][0]
    assert (summary["net_fen"], summary["owner_fen"], summary["platform_fee_fen"]) == (0, 0, 0)


async def test_renewal_extends_from_the_current_end_and_its_refund_takes_back_only_its_time(h):
    cid, plan = await paid_community(h)
    await h.ok("PATCH", f"/communities/{cid}/plans/{plan['id']}", OWNER, json={"renewal_price_fen": 80_000})
    await h.join(cid, ALICE)
    await h.pay(cid, ALICE, plan["id"], 100_000, payment_id="first")
    h.clock.advance(days=200)

    await h.pay(cid, ALICE, plan["id"], 80_000, payment_id="renewal")  # the renewal price

    member = await h.member(cid, ALICE)
    assert member["expires_at"] == "2028-11-25T02:00:00Z"  # 2027-11-26 + 365 days
    assert len(await h.emitted("member.renewed")) == 1
    await h.deliver(h.refund(cid, "renewal", 80_000))
    member = await h.member(cid, ALICE)
    assert (member["status"], member["expires_at"]) == ("active", "2027-11-26T02:00:00Z")


async def test_fixed_term_memberships_end_on_the_anniversary_in_the_community_zone(h):
    community = await h.community(entry_policies=["paid"])  # created 2026-11-26 (Shanghai)
    cid = community["id"]
    plan = await h.plan(cid, term_type="fixed_term", duration_days=None)
    await h.join(cid, ALICE)
    h.clock.set(datetime(2027, 3, 1, 12, 0, tzinfo=UTC))

    await h.pay(cid, ALICE, plan["id"], 100_000)
    assert (await h.member(cid, ALICE))["expires_at"] == "2027-11-25T16:00:00Z"  # 2027-11-26 00:00 +08:00
    await h.pay(cid, ALICE, plan["id"], 100_000)
    assert (await h.member(cid, ALICE))["expires_at"] == "2028-11-25T16:00:00Z"


@pytest.mark.parametrize("case", ["blacklisted", "not_approved", "amount_mismatch", "unknown_plan", "currency"])
async def test_a_payment_that_cannot_be_applied_is_parked_and_refunded(h, case):
    policies = ["application", "paid"] if case == "not_approved" else ["paid"]
    community = await h.community(entry_policies=policies)
    cid = community["id"]
    plan = await h.plan(cid)
    if case == "blacklisted":
        await h.ok("POST", f"/communities/{cid}/members/{ALICE}/blacklist", OWNER, json={"reason": "spam"},
                   status=204)
    if case == "not_approved":
        await h.join(cid, ALICE)
    amount, plan_id = (50_000 if case == "amount_mismatch" else 100_000), plan["id"]
    if case == "unknown_plan":
        plan_id = "no-such-plan"
    event = h.payment(cid, ALICE, plan_id, amount, payment_id="wx-x")
    if case == "currency":
        data = event.data | {"currency": "USD"}
        event = event.model_copy(update={"data": data})

    await h.deliver(event)

    expected_code = {"blacklisted": "blacklisted", "not_approved": "not_eligible",
                     "amount_mismatch": "amount_mismatch", "unknown_plan": "unknown_plan",
                     "currency": "currency_mismatch"}[case]
    (command,) = await h.emitted("refund.requested")
    assert (command.data["reason_code"], command.data["payment_id"], command.data["amount_fen"]) == (
        expected_code, "wx-x", amount)
    assert await h.emitted("member.activated") == []
    ledger = (await h.ok("GET", f"/communities/{cid}/ledger", OWNER))["summary"][0]
    assert (ledger["suspense_fen"], ledger["owner_fen"], ledger["reconciled"]) == (amount, 0, True)

    await h.deliver(h.refund(cid, "wx-x", amount))  # the payments side carried out the command
    ledger = (await h.ok("GET", f"/communities/{cid}/ledger", OWNER))["summary"][0]
    assert (ledger["suspense_fen"], ledger["net_fen"], ledger["reconciled"]) == (0, 0, True)


async def test_self_service_refund_inside_the_window_sends_the_command_once(h):
    cid, plan = await paid_community(h)
    await h.join(cid, ALICE)
    await h.pay(cid, ALICE, plan["id"], 100_000, payment_id="wx-5")
    h.clock.advance(hours=71)

    first = await h.call("POST", f"/communities/{cid}/refund-requests", ALICE,
                         json={"payment_id": "wx-5", "reason": "不合适"})
    again = await h.call("POST", f"/communities/{cid}/refund-requests", ALICE, json={"payment_id": "wx-5"})

    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]
    (command,) = await h.emitted("refund.requested")
    assert command.data | {"request_id": None, "requested_at": None} == {
        "request_id": None, "community_id": cid, "payment_id": "wx-5", "provider": "wechatpay",
        "payer_id": ALICE, "amount_fen": 100_000, "currency": "CNY", "reason_code": "self_service",
        "reason": "不合适", "requested_at": None,
    }
    assert (await h.member(cid, ALICE))["status"] == "active"  # until the refund really happens
    await h.deliver(h.refund(cid, "wx-5", 100_000))
    assert (await h.member(cid, ALICE))["status"] == "removed"


async def test_self_service_refund_after_the_window_is_refused_with_the_reason(h):
    cid, plan = await paid_community(h)
    await h.join(cid, ALICE)
    await h.pay(cid, ALICE, plan["id"], 100_000, payment_id="wx-6")
    h.clock.advance(hours=72, seconds=1)

    response = await h.call("POST", f"/communities/{cid}/refund-requests", ALICE, json={"payment_id": "wx-6"})

    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"].endswith("refund-window-closed")
    assert "72 h" in problem["detail"] and "2026-11-29 10:00" in problem["detail"]  # Shanghai time
    assert problem["window_ends_at"] == "2026-11-29T02:00:00+00:00"
    assert await h.emitted("refund.requested") == []


async def test_only_the_payer_may_ask_for_a_self_service_refund(h):
    cid, plan = await paid_community(h)
    for person in (ALICE, BOB):
        await h.join(cid, person)
    await h.pay(cid, ALICE, plan["id"], 100_000, payment_id="wx-7")
    await h.pay(cid, BOB, plan["id"], 100_000, payment_id="wx-8")

    response = await h.call("POST", f"/communities/{cid}/refund-requests", BOB, json={"payment_id": "wx-7"})
    other = await h.community(entry_policies=["paid"])
    cross = await h.call("POST", f"/communities/{other['id']}/refund-requests", ALICE,
                         json={"payment_id": "wx-7"})

    assert response.status_code == 403
    assert cross.status_code == 404  # another community's payment does not exist there
    assert await h.emitted("refund.requested") == []


async def test_referral_commission_is_booked_and_reconciles(h):
    cid, plan = await paid_community(h)
    await h.ok("PATCH", f"/communities/{cid}/settings", OWNER, json={"referral_commission_bps": 1000})
    await h.join(cid, ALICE)
    await h.pay(cid, ALICE, plan["id"], 100_000)
    await h.join(cid, BOB, referrer_id=ALICE)

    await h.pay(cid, BOB, plan["id"], 100_000, payment_id="bob-1")

    ledger = await h.ok("GET", f"/communities/{cid}/ledger", OWNER)
    summary = ledger["summary"][0]
    assert (summary["referral_commission_fen"], summary["platform_fee_fen"], summary["owner_fen"]) == (
        10_000, 10_000, 180_000)
    assert {e["beneficiary_id"] for e in ledger["entries"] if e["account"] == "referrer"} == {ALICE}
    assert summary["reconciled"] is True


async def test_ledger_always_reconciles_under_duplicates_reordering_and_partial_refunds(h):
    """A random storm of payments and refunds, each delivered several times in shuffled order."""
    rng = random.Random(20261126)
    cid, plan = await paid_community(h)
    await h.ok("PATCH", f"/communities/{cid}/settings", OWNER, json={"referral_commission_bps": 777})
    await h.join(cid, "wecom:referrer")
    await h.pay(cid, "wecom:referrer", plan["id"], 100_000)
    events, expected_net = [], 100_000
    for i in range(12):
        person = f"wecom:p{i}"
        await h.join(cid, person, referrer_id="wecom:referrer" if i % 2 else None)
        amount = 100_000 + rng.randrange(0, 3) * 333  # odd amounts: rounding matters
        pid = f"pay-{i}"
        events.append(h.payment(cid, person, plan["id"], amount, payment_id=pid))
        refunded = 0
        for j in range(rng.randrange(0, 3)):
            part = rng.randrange(1, amount - refunded + 1) if j == 0 else amount - refunded
            if part <= 0:
                break
            events.append(h.refund(cid, pid, part, refund_id=f"{pid}-r{j}"))
            refunded += part
        expected_net += amount - refunded
    deliveries = events * 2
    rng.shuffle(deliveries)

    for event in deliveries:
        await h.deliver(event)

    summary = (await h.ok("GET", f"/communities/{cid}/ledger", OWNER))["summary"][0]
    assert summary["reconciled"] is True
    assert summary["net_fen"] == expected_net
    assert summary["net_fen"] == (summary["owner_fen"] + summary["platform_fee_fen"]
                                  + summary["referral_commission_fen"] + summary["suspense_fen"])
    payments = (await h.ok("GET", f"/communities/{cid}/payments", OWNER, params={"limit": 200}))["data"]
    for payment in payments:
        member = await h.member(cid, payment["payer_id"])
        fully = payment["refunded_fen"] == payment["amount_fen"]
        assert payment["outcome"] == ("refunded" if fully else "granted"), payment
        # Refunded in full before its success arrived: never granted; after: granted, then revoked.
        assert member["status"] in (("pending_payment", "removed") if fully else ("active",)), (payment, member)


async def test_paying_again_after_expiry_reactivates(h):
    cid, plan = await paid_community(h)
    await h.join(cid, ALICE)
    await h.pay(cid, ALICE, plan["id"], 100_000)
    h.clock.advance(days=400)
    await h.run_scheduler()
    assert (await h.member(cid, ALICE))["status"] == "expired"

    await h.pay(cid, ALICE, plan["id"], 100_000)

    member = await h.member(cid, ALICE)
    assert member["status"] == "active"
    assert member["expires_at"] == (h.clock() + timedelta(days=365)).isoformat().replace("+00:00", "Z")


async def test_refunding_a_paid_tier_in_a_free_community_keeps_the_member(h):
    cid = (await h.community())["id"]
    await h.ok("PATCH", f"/communities/{cid}/settings", OWNER, json={"tiers": ["free", "pro"]})
    pro = await h.plan(cid, tier="pro")
    await h.join(cid, ALICE)
    await h.pay(cid, ALICE, pro["id"], 100_000, payment_id="tier-1")

    await h.deliver(h.refund(cid, "tier-1", 100_000))

    member = await h.member(cid, ALICE)
    assert (member["status"], member["tier"], member["expires_at"]) == ("active", "", None)
