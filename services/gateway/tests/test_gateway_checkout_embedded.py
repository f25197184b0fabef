"""The checkout flow end to end with the real services (embedded) and stripe-mock: a paid join waits in
pending_payment → checkout → Stripe's events (signed, checked with the library) → the member is active;
two partial refunds under a modern API version (no refunds list) add up and end the access."""

from __future__ import annotations

import json
import time

import pytest
import stripe

from qunzhu.embedded import embedded_platform

SECRET = "whsec_embedded_checkout"
OWNER, PAYER = "telegram:1", "telegram:42"


@pytest.fixture
async def platform(tmp_path, monkeypatch, stripe_mock, serve_gateway):
    monkeypatch.setenv("GATEWAY_STRIPE_SECRET_KEY", "sk_test_embedded")
    monkeypatch.setenv("GATEWAY_STRIPE_API_BASE", stripe_mock)
    monkeypatch.setenv("GATEWAY_STRIPE_WEBHOOK_SECRETS", json.dumps([SECRET]))
    async with embedded_platform(tmp_path) as app, serve_gateway(app) as gateway:
        yield gateway


async def send(platform, type_: str, obj: dict, event_id: str) -> dict:
    body = json.dumps({"id": event_id, "object": "event", "type": type_, "api_version": "2024-06-20",
                       "created": int(time.time()), "data": {"object": obj}}).encode()
    header = stripe.WebhookSignature.generate_signature_header(body.decode(), SECRET, timestamp=int(time.time()))
    stripe.Webhook.construct_event(body, header, SECRET)
    answer = await platform.client.post("/webhooks/payments/stripe", content=body,
                                        headers={"Stripe-Signature": header, "content-type": "application/json"})
    assert answer.status_code == 200, answer.text
    return answer.json()


async def test_paid_join_checkout_then_partial_refunds(platform, member_headers, community_body, eventually):
    client, owner, payer = platform.client, member_headers(platform.app, OWNER), member_headers(platform.app, PAYER)
    community = (await client.post("/api/v1/communities", headers=owner,
                                   json=community_body(entry_policies=["paid"]))).json()
    cid = community["id"]
    plan = await client.post(f"/api/v1/membership/communities/{cid}/plans", headers=owner, json={
        "name": "年度会员", "price_fen": 99900, "term_type": "fixed_duration", "duration_days": 365})
    assert plan.status_code == 201, plan.text
    plan_id = plan.json()["id"]
    rules = community.get("rules_version") or 1
    joined = await client.post(f"/api/v1/membership/communities/{cid}/join", headers=payer,
                               json={"accepted_rules_version": rules, "plan_id": plan_id})
    assert joined.status_code in (200, 201), joined.text
    assert joined.json()["status"] == "pending_payment"

    made = await client.post(f"/api/v1/communities/{cid}/checkout", headers={**payer, "Idempotency-Key": "j-1"},
                             json={"plan_id": plan_id, "provider": "stripe", "channel": "checkout"})
    assert made.status_code == 201, made.text
    order = made.json()
    assert (order["amount_fen"], order["currency"], order["kind"]) == (99900, "CNY", "new")

    # The payer pays on Stripe's page; Stripe tells us (no metadata needed: the session names our order).
    await send(platform, "checkout.session.completed", {
        "id": order["session_id"], "object": "checkout.session", "client_reference_id": order["order_id"],
        "payment_intent": "pi_E2E", "payment_status": "paid", "amount_total": 99900, "currency": "cny",
        "metadata": {}}, "evt_e2e_paid")

    async def member_status() -> str:
        got = await client.get(f"/api/v1/membership/communities/{cid}/members/{PAYER}", headers=owner)
        return got.json().get("status", "") if got.status_code == 200 else ""

    await eventually(lambda: _is(member_status, "active"), within=20, what="the membership")
    polled = await client.get(f"/api/v1/communities/{cid}/orders/{order['order_id']}", headers=payer)
    assert polled.json()["status"] == "paid"

    for event_id, cumulative in (("evt_e2e_r1", 30000), ("evt_e2e_r2", 99900)):
        await send(platform, "charge.refunded", {
            "id": "ch_E2E", "object": "charge", "payment_intent": "pi_E2E", "amount": 99900,
            "amount_refunded": cumulative, "currency": "cny", "metadata": {}}, event_id)

    async def refunded_fen() -> int:
        got = await client.get(f"/api/v1/membership/communities/{cid}/members/{PAYER}/payments", headers=owner)
        return sum(p["refunded_fen"] for p in got.json().get("data", [])) if got.status_code == 200 else -1

    await eventually(lambda: _is(refunded_fen, 99900), within=20, what="the membership")
    await eventually(lambda: _is_not(member_status, "active"), within=20, what="the membership")


async def _is(read, expected) -> bool:
    return await read() == expected


async def _is_not(read, unexpected) -> bool:
    return await read() != unexpected
