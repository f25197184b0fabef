"""Ops settle a payment held for review: POST /api/v1/ops/payment-reviews/{order_id}/decision, grant or refund,
exactly once. Stripe events are signed and checked with `stripe.Webhook.construct_event`, orders made by the
checkout route against stripe-mock, refunds run by the refund worker (stripe-mock; WeChat Pay's loopback
stand-in of the refund tests, which checks the merchant's request signature)."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import pytest
import test_gateway_checkout as checkout  # same folder, on sys.path
import test_gateway_refunds as refunds
from test_gateway_checkout import COMMUNITY, PAYER
from test_gateway_stripe_orders import charge_refunded, completed, event, new_order, poll, send

from gateway.models import PaymentOrder, ProviderRefund, RefundOrder
from qunzhu_common.timeutil import utcnow

gw, membership = checkout.gw, checkout.membership
providers, refund_gateway, merchant_key = refunds.providers, refunds.refund_gateway, refunds.merchant_key
SECRET = "whsec_orders_test"


@pytest.fixture
def extra_settings() -> dict:
    return {"stripe_webhook_secrets": [SECRET], "reconcile_settle_s": 0}


def decision_url(order_id: str) -> str:
    return f"/api/v1/ops/payment-reviews/{order_id}/decision"


async def held_for_review(gw, member_headers, pi: str, amount: int) -> dict:
    order = await new_order(gw, member_headers)
    assert (await send(gw, event("checkout.session.completed", completed(order, pi, amount=amount))))["events"] == 0
    assert (await poll(gw, member_headers, order["order_id"]))["status"] == "review"
    return order


async def refund_rows(gw, order_id: str) -> list[ProviderRefund]:
    from sqlalchemy import select

    async with gw.app.state.runtime.session_maker() as session:
        return list((await session.execute(select(ProviderRefund).where(ProviderRefund.order_id == order_id)))
                    .scalars().all())


async def test_grant_sends_what_was_paid_once_with_the_refunds_held_against_it(
    gw, member_headers, admin_headers, outbox_events, metric_value,
):
    order = await held_for_review(gw, member_headers, "pi_G", amount=120000)  # the order is 99900
    # A partial refund made at the Dashboard while the order waits: held, not sent (no payment went out).
    early = await send(gw, event("charge.refunded", charge_refunded("ch_G", "pi_G", 20100)))
    assert early == {"status": "ignored", "events": 0}
    assert [r.status for r in await refund_rows(gw, order["order_id"])] == ["held"]

    member = await gw.client.post(decision_url(order["order_id"]), headers=member_headers(gw.app, PAYER),
                                  json={"decision": "grant"})
    assert member.status_code == 403
    granted = await gw.client.post(decision_url(order["order_id"]), headers=admin_headers,
                                   json={"decision": "grant", "note": "overpaid by a coupon mistake"})
    assert granted.status_code == 200, granted.text
    assert granted.json() == {"order_id": order["order_id"], "status": "paid", "decision": "grant", "events": 2,
                              "refund_request_id": None, "refund_fen": 0}

    again = await gw.client.post(decision_url(order["order_id"]), headers=admin_headers, json={"decision": "refund"})
    assert again.status_code == 409 and again.headers["content-type"].startswith("application/problem+json")
    # Stripe's payment_intent.succeeded of the same payment, after the decision: nothing more, no new review.
    late = await send(gw, event("payment_intent.succeeded", {
        "id": "pi_G", "object": "payment_intent", "amount_received": 120000, "currency": "cny",
        "metadata": {"order_id": order["order_id"]}}))
    assert late["events"] == 0

    events = await outbox_events(gw.app)
    assert [(e.type, e.community_id) for e in events] == [("payment.succeeded", COMMUNITY),
                                                          ("payment.refunded", COMMUNITY)]
    assert (events[0].data["payment_id"], events[0].data["amount_fen"], events[0].data["payer_id"]) == (
        "pi_G", 120000, PAYER)
    assert (events[1].data["payment_id"], events[1].data["amount_fen"]) == ("pi_G", 20100)
    polled = await poll(gw, member_headers, order["order_id"])
    assert polled["status"] == "paid" and polled["paid_at"]
    assert [r.status for r in await refund_rows(gw, order["order_id"])] == ["emitted"]
    assert (await gw.client.get("/api/v1/ops/payment-reviews", headers=admin_headers)).json()["count"] == 0
    assert metric_value(gw.app, "qunzhu_gateway_orders_total", provider="stripe", channel="checkout",
                        outcome="granted") == 1


async def test_refund_has_the_worker_refund_it_at_stripe_and_tells_membership_nothing(
    gw, member_headers, admin_headers, outbox_events,
):
    order = await held_for_review(gw, member_headers, "pi_RV", amount=100)

    refunded = await gw.client.post(decision_url(order["order_id"]), headers=admin_headers,
                                    json={"decision": "refund", "note": "paid 1 yuan: a test payment"})
    assert refunded.status_code == 200, refunded.text
    request_id = f"review-{order['order_id']}"
    assert refunded.json() | {"events": 0} == {"order_id": order["order_id"], "status": "refunded",
                                               "decision": "refund", "events": 0,
                                               "refund_request_id": request_id, "refund_fen": 100}
    assert (await gw.client.post(decision_url(order["order_id"]), headers=admin_headers,
                                 json={"decision": "refund"})).status_code == 409

    assert await gw.app.state.refund_worker.run_once() == 1  # at stripe-mock, with the request id as key
    assert await gw.app.state.refund_worker.run_once() == 0  # once
    async with gw.app.state.runtime.session_maker() as session:
        row = await session.get(RefundOrder, request_id)
    assert (row.status, row.payment_id, row.amount_fen, row.currency, row.reason_code) == (
        "submitted", "pi_RV", 100, "CNY", "payment_review")

    # Stripe then tells us about our refund: recorded (settled), but no refund of a payment membership never saw.
    ours = {"id": "re_RV", "object": "refund", "amount": 100, "charge": "ch_RV", "payment_intent": "pi_RV",
            "currency": "cny", "status": "succeeded", "metadata": {"request_id": request_id,
                                                                   "community_id": COMMUNITY}}
    assert (await send(gw, event("refund.created", ours)))["events"] == 0
    assert (await send(gw, event("charge.refunded", charge_refunded("ch_RV", "pi_RV", 100))))["events"] == 0
    assert [r.status for r in await refund_rows(gw, order["order_id"])] == ["settled"]

    types = [e.type for e in await outbox_events(gw.app)]
    assert types == ["refund.submitted"]  # no payment.succeeded, no payment.refunded
    assert (await poll(gw, member_headers, order["order_id"]))["status"] == "refunded"


async def test_two_decisions_at_once_settle_it_once(gw, member_headers, admin_headers, outbox_events):
    order = await held_for_review(gw, member_headers, "pi_TW", amount=100)
    url = decision_url(order["order_id"])
    answers = await asyncio.gather(gw.client.post(url, headers=admin_headers, json={"decision": "grant"}),
                                   gw.client.post(url, headers=admin_headers, json={"decision": "refund"}))
    assert sorted(a.status_code for a in answers) == [200, 409]
    (won,) = [a.json() for a in answers if a.status_code == 200]
    async with gw.app.state.runtime.session_maker() as session:
        request = await session.get(RefundOrder, f"review-{order['order_id']}")
    payments = [e for e in await outbox_events(gw.app) if e.type == "payment.succeeded"]
    assert (len(payments), request is not None) == ((1, False) if won["decision"] == "grant" else (0, True))


async def test_an_order_not_under_review_is_not_decided(gw, member_headers, admin_headers):
    order = await new_order(gw, member_headers)
    created = await gw.client.post(decision_url(order["order_id"]), headers=admin_headers, json={"decision": "grant"})
    missing = await gw.client.post(decision_url("qz" + "0" * 24), headers=admin_headers, json={"decision": "grant"})
    odd = await gw.client.post(decision_url(order["order_id"]), headers=admin_headers, json={"decision": "keep"})
    assert (created.status_code, missing.status_code, odd.status_code) == (409, 404, 422)


async def test_wechatpay_refund_of_a_review_refunds_the_rest_with_the_paid_total(
    refund_gateway, providers, admin_headers, outbox_events,
):
    order_id = "qz" + "5" * 24
    async with refund_gateway() as gw:
        async with gw.app.state.runtime.session_maker() as session, session.begin():
            session.add(PaymentOrder(
                id=order_id, community_id=refunds.COMMUNITY, plan_id="monthly", payer_id="wecom:alice",
                provider="wechatpay", channel="jsapi", kind="new", amount_fen=19900, currency="CNY",
                request_hash="0" * 64, expires_at=utcnow() + timedelta(minutes=30), status="review",
                provider_payment_id="4200000077", paid_amount_fen=29900, paid_currency="CNY",
                review_reason="amount differs: paid 29900 CNY, the order is 19900 CNY"))
            session.add(ProviderRefund(  # a REFUND.SUCCESS that arrived while the order waited
                provider="wechatpay", refund_id="rf-early", payment_id="4200000077", order_id=order_id,
                amount_fen=10000, currency="CNY", status="held", refunded_at=utcnow()))

        answer = await gw.client.post(decision_url(order_id), headers=admin_headers, json={"decision": "refund"})
        assert answer.status_code == 200, answer.text
        assert answer.json()["refund_fen"] == 19900  # what is left of the 29900 paid
        assert await gw.app.state.refund_worker.run_once() == 1
        async with gw.app.state.runtime.session_maker() as session:
            assert (await session.get(ProviderRefund, ("wechatpay", "rf-early"))).status == "settled"
            assert (await session.get(RefundOrder, f"review-{order_id}")).status == "submitted"
        assert [e.type for e in await outbox_events(gw.app)] == ["refund.submitted"]

    (call,) = providers.calls(refunds.WECHAT_PATH)
    assert json.loads(call["body"])["amount"] == {"refund": 19900, "total": 29900, "currency": "CNY"}
    assert json.loads(call["body"])["out_refund_no"] == f"review-{order_id}"
