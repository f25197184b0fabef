"""Stripe notifications → orders: events as Stripe sends them (signed, and checked with the library's own
`Webhook.construct_event` before they are sent), orders made by the checkout route against stripe-mock."""

from __future__ import annotations

import asyncio
import itertools
import json
import time

import httpx
import pytest
import stripe
import test_gateway_checkout as checkout  # same folder, on sys.path
from test_gateway_checkout import COMMUNITY, PAYER

gw, membership = checkout.gw, checkout.membership  # the same fixtures, with extra_settings below

SECRET = "whsec_orders_test"
URL = "/webhooks/payments/stripe"
_ids = itertools.count(1)


@pytest.fixture
def extra_settings() -> dict:
    return {"stripe_webhook_secrets": [SECRET], "reconcile_settle_s": 0}


def event(type_: str, obj: dict, event_id: str | None = None) -> bytes:
    # A modern API version: charge.refunded carries no `refunds` list.
    return json.dumps({"id": event_id or f"evt_{next(_ids)}", "object": "event", "type": type_,
                       "api_version": "2024-06-20", "created": int(time.time()), "data": {"object": obj}}).encode()


async def send(gw, body: bytes) -> dict:
    header = stripe.WebhookSignature.generate_signature_header(body.decode(), SECRET, timestamp=int(time.time()))
    stripe.Webhook.construct_event(body, header, SECRET)  # what Stripe sends is what the library accepts
    answer = await gw.client.post(URL, content=body, headers={"Stripe-Signature": header,
                                                              "content-type": "application/json"})
    assert answer.status_code == 200, answer.text
    return answer.json()


async def new_order(gw, member_headers) -> dict:
    made = await gw.client.post(f"/api/v1/communities/{COMMUNITY}/checkout", headers=member_headers(gw.app, PAYER),
                                json={"plan_id": "yearly", "provider": "stripe", "channel": "checkout"})
    assert made.status_code == 201, made.text
    return made.json()


def completed(order: dict, pi: str, amount: int = 99900, currency: str = "cny") -> dict:
    """checkout.session.completed as Checkout sends it for our session: client_reference_id, no metadata."""
    return {"id": order["session_id"], "object": "checkout.session", "client_reference_id": order["order_id"],
            "payment_intent": pi, "payment_status": "paid", "amount_total": amount, "currency": currency,
            "metadata": {}}


def charge_refunded(charge: str, pi: str, amount_refunded: int) -> dict:
    return {"id": charge, "object": "charge", "payment_intent": pi, "amount": 99900,
            "amount_refunded": amount_refunded, "currency": "cny", "refunded": amount_refunded >= 99900,
            "metadata": {}}


def of_type(events, type_: str) -> list:
    return [e for e in events if e.type == type_]


async def poll(gw, member_headers, order_id: str) -> dict:
    return (await gw.client.get(f"/api/v1/communities/{COMMUNITY}/orders/{order_id}",
                                headers=member_headers(gw.app, PAYER))).json()


async def test_a_payment_maps_to_its_order_not_to_metadata(gw, member_headers, outbox_events):
    order = await new_order(gw, member_headers)

    assert await send(gw, event("checkout.session.completed", completed(order, "pi_A"))) == {
        "status": "accepted", "events": 1}
    intent = {"id": "pi_A", "object": "payment_intent", "amount_received": 99900, "currency": "cny",
              "metadata": {"order_id": order["order_id"]}, "latest_charge": "ch_A"}
    assert (await send(gw, event("payment_intent.succeeded", intent)))["status"] == "accepted"

    succeeded = of_type(await outbox_events(gw.app), "payment.succeeded")
    assert {e.community_id for e in succeeded} == {COMMUNITY}
    assert {(e.data["payment_id"], e.data["payer_id"], e.data["plan_id"], e.data["amount_fen"]) for e in succeeded} \
        == {("pi_A", PAYER, "yearly", 99900)}  # the same payment twice: membership applies it once
    polled = await poll(gw, member_headers, order["order_id"])
    assert polled["status"] == "paid" and polled["paid_at"]


async def test_refund_before_payment_with_no_metadata_anywhere(gw, member_headers, outbox_events, admin_headers):
    order = await new_order(gw, member_headers)
    refunded = event("charge.refunded", charge_refunded("ch_B", "pi_B", 99900))

    early = await send(gw, refunded)
    assert early == {"status": "ignored", "events": 0}  # kept, not quarantined
    assert await outbox_events(gw.app) == []
    quarantined = await gw.client.get("/api/v1/ops/quarantine", headers=admin_headers)
    assert quarantined.json()["count"] == 0

    paid = await send(gw, event("checkout.session.completed", completed(order, "pi_B")))
    assert paid == {"status": "accepted", "events": 2}
    again = await send(gw, event("charge.refunded", charge_refunded("ch_B", "pi_B", 99900)))  # a resend
    assert again == {"status": "ignored", "events": 0}
    intent = await send(gw, event("payment_intent.succeeded", {
        "id": "pi_B", "object": "payment_intent", "amount_received": 99900, "currency": "cny", "metadata": {}}))
    assert intent == {"status": "accepted", "events": 1}  # the held refund went out once, with the checkout

    events = await outbox_events(gw.app)
    refunds = of_type(events, "payment.refunded")
    assert len(refunds) == 1
    assert (refunds[0].community_id, refunds[0].data["payment_id"], refunds[0].data["amount_fen"]) == (
        COMMUNITY, "pi_B", 99900)
    assert [e.type for e in events][:2] == ["payment.succeeded", "payment.refunded"]


async def test_two_partial_refunds_without_a_refunds_list_add_up(gw, member_headers, outbox_events):
    order = await new_order(gw, member_headers)
    await send(gw, event("checkout.session.completed", completed(order, "pi_C")))

    first = event("charge.refunded", charge_refunded("ch_C", "pi_C", 30000), event_id="evt_partial_1")
    assert (await send(gw, first))["events"] == 1
    assert (await send(gw, first))["status"] == "duplicate"
    assert (await send(gw, event("charge.refunded", charge_refunded("ch_C", "pi_C", 99900))))["events"] == 1
    # The refund objects of the same two refunds, named by Stripe's ids, arrive later: already counted.
    for refund_id, amount in (("re_C1", 30000), ("re_C2", 69900)):
        late = await send(gw, event("refund.updated", {
            "id": refund_id, "object": "refund", "amount": amount, "charge": "ch_C", "payment_intent": "pi_C",
            "currency": "cny", "status": "succeeded", "metadata": {}}))
        assert late == {"status": "ignored", "events": 0}

    refunds = of_type(await outbox_events(gw.app), "payment.refunded")
    assert [r.data["amount_fen"] for r in refunds] == [30000, 69900]
    assert len({r.data["refund_id"] for r in refunds}) == 2
    assert all(r.community_id == COMMUNITY and r.data["payment_id"] == "pi_C" for r in refunds)


async def test_refund_objects_count_when_succeeded_and_once(gw, member_headers, outbox_events):
    order = await new_order(gw, member_headers)
    await send(gw, event("checkout.session.completed", completed(order, "pi_D")))
    refund = {"id": "re_D", "object": "refund", "amount": 20000, "charge": "ch_D", "payment_intent": "pi_D",
              "currency": "cny", "status": "pending", "metadata": {}}

    assert (await send(gw, event("refund.created", refund)))["events"] == 0
    assert (await send(gw, event("refund.updated", {**refund, "status": "succeeded"})))["events"] == 1
    assert (await send(gw, event("charge.refund.updated", {**refund, "status": "succeeded"})))["events"] == 0
    # charge.refunded that knows nothing more than the refund already recorded adds nothing.
    assert (await send(gw, event("charge.refunded", charge_refunded("ch_D", "pi_D", 20000))))["events"] == 0

    refunds = of_type(await outbox_events(gw.app), "payment.refunded")
    assert [(r.data["refund_id"], r.data["amount_fen"]) for r in refunds] == [("re_D", 20000)]


async def test_amount_or_currency_mismatch_is_held_for_review(gw, member_headers, outbox_events, admin_headers,
                                                            metric_value):
    order = await new_order(gw, member_headers)
    other = await new_order(gw, member_headers)

    assert (await send(gw, event("checkout.session.completed", completed(order, "pi_E", amount=100))))[
        "events"] == 0
    assert (await send(gw, event("checkout.session.completed", completed(other, "pi_F", currency="usd"))))[
        "events"] == 0

    assert of_type(await outbox_events(gw.app), "payment.succeeded") == []
    assert (await poll(gw, member_headers, order["order_id"]))["status"] == "review"
    listed = await gw.client.get("/api/v1/ops/payment-reviews", headers=admin_headers)
    assert listed.status_code == 200 and listed.json()["count"] == 2
    assert {r["payment_id"] for r in listed.json()["data"]} == {"pi_E", "pi_F"}
    for reason in ("amount", "currency"):
        assert metric_value(gw.app, "qunzhu_gateway_payment_reviews_total", provider="stripe", reason=reason) == 1
    assert (await gw.client.get("/api/v1/ops/payment-reviews",
                                headers=member_headers(gw.app, PAYER))).status_code == 403


async def test_checkout_expired_expires_the_order(gw, member_headers):
    order = await new_order(gw, member_headers)
    await send(gw, event("checkout.session.expired", {"id": order["session_id"], "object": "checkout.session",
                                                      "client_reference_id": order["order_id"], "metadata": {}}))
    assert (await poll(gw, member_headers, order["order_id"]))["status"] == "expired"


async def test_reconciliation_reports_every_difference_once(gw, member_headers, admin_headers, metric_value):
    from test_gateway_checkout import Recorder

    order = await new_order(gw, member_headers)
    await send(gw, event("checkout.session.completed", completed(order, "pi_R")))
    await send(gw, event("charge.refunded", charge_refunded("ch_lost", "pi_lost", 5000)))  # its payment never came
    recorder = Recorder()
    gw.app.state.orders.deps.clients["stripe"]._requestor._client._client_async = httpx.AsyncClient(
        transport=recorder, timeout=10)

    found = await gw.app.state.orders.reconcile()
    await gw.app.state.orders.reconcile()  # the next day's overlapping window finds the same, stored once

    kinds = {(d.kind, d.reference) for d in found["stripe"]}
    assert ("payment_missing_at_provider", "pi_R") in kinds  # stripe-mock lists only its canned payment
    assert ("refund_held", "ch_lost:refunded:5000") in kinds
    assert any(kind == "refund_missing_here" for kind, _ in kinds)  # stripe-mock's canned refund
    listed = (await gw.client.get("/api/v1/ops/reconciliation", headers=admin_headers)).json()
    assert listed["count"] == len(found["stripe"])
    assert metric_value(gw.app, "qunzhu_gateway_reconciliation_differences", provider="stripe",
                        kind="payment_missing_at_provider") == 1
    assert metric_value(gw.app, "qunzhu_gateway_reconciliation_differences", provider="stripe",
                        kind="payment_amount_differs") == 0
    assert metric_value(gw.app, "qunzhu_gateway_reconciliation_runs_total", provider="stripe", outcome="ok") == 2
    paths = [(r.url.path, dict(r.url.params)) for r in recorder.sent]
    assert {p for p, _ in paths} == {"/v1/payment_intents", "/v1/refunds"}
    assert all("created[gte]" in q and "created[lt]" in q for _, q in paths)


@pytest.mark.parametrize("obj", [
    {"id": "re_x", "object": "refund", "status": "succeeded", "amount": "lots", "charge": "ch_x"},
    {"id": "re_y", "object": "refund", "status": "succeeded", "amount": 10**12, "charge": "ch_y"},
    {"id": "re_" + "z" * 300, "object": "refund", "status": "succeeded", "amount": 1, "charge": "ch_z"},
    {"id": "re_w", "object": "refund", "status": "succeeded", "amount": 1, "charge": {"id": "ch_w"}},
])
async def test_refunds_stripe_cannot_send_are_quarantined_not_5xx(gw, obj, outbox_events):
    answer = await send(gw, event("refund.updated", obj))
    assert answer == {"status": "quarantined", "events": 0}
    assert await outbox_events(gw.app) == []


async def test_odd_order_references_are_not_ours(gw, outbox_events):
    answer = await send(gw, event("checkout.session.completed", {
        "id": "cs_odd", "client_reference_id": 12345, "payment_intent": "pi_odd", "payment_status": "paid",
        "amount_total": 100, "currency": "cny", "metadata": {"order_id": ["x"]}}))
    assert answer["status"] == "quarantined"  # neither an order of ours nor the documented metadata


class _Listed:
    def __init__(self, items: list[dict]) -> None:
        self.items = [stripe.StripeObject.construct_from(i, "sk_test") for i in items]

    def auto_paging_iter(self):
        async def each():
            for item in self.items:
                yield item
        return each()


class _Lister:
    def __init__(self, items: list[dict]) -> None:
        self.items = items

    async def list_async(self, params=None):
        return _Listed(self.items)


async def test_reconciliation_sees_payments_only_stripe_knows_and_amounts_that_differ(gw, member_headers):
    from types import SimpleNamespace

    from gateway.orders import reconcile

    order = await new_order(gw, member_headers)
    await send(gw, event("checkout.session.completed", completed(order, "pi_same")))
    now = int(time.time())
    stripe_side = SimpleNamespace(v1=SimpleNamespace(
        payment_intents=_Lister([
            {"id": "pi_same", "status": "succeeded", "amount_received": 50000, "currency": "cny", "created": now},
            {"id": "pi_lost", "status": "succeeded", "amount_received": 99900, "currency": "cny", "created": now,
             "metadata": {"order_id": "qzlost"}},
            {"id": "pi_open", "status": "requires_payment_method", "amount_received": 0, "currency": "cny"}]),
        refunds=_Lister([])))
    deps = gw.app.state.orders.deps
    fake = reconcile.ChannelDeps(settings=deps.settings, http=deps.http, clients={"stripe": stripe_side})

    found = await reconcile.run(gw.app.state.runtime.session_maker, fake, gw.app.state.gateway.metrics)

    kinds = {(d.kind, d.reference): d.detail for d in found["stripe"]}
    assert "payment_amount_differs" in {k for k, _ in kinds} and ("payment_amount_differs", "pi_same") in kinds
    assert "qzlost" in kinds[("payment_missing_here", "pi_lost")]
    assert not any(ref == "pi_open" for _, ref in kinds)


async def test_a_delayed_payment_method_pays_later(gw, member_headers, outbox_events):
    order = await new_order(gw, member_headers)
    unpaid = {**completed(order, "pi_late"), "payment_status": "unpaid"}

    assert (await send(gw, event("checkout.session.completed", unpaid)))["events"] == 0
    assert (await poll(gw, member_headers, order["order_id"]))["status"] == "created"
    paid = await send(gw, event("checkout.session.async_payment_succeeded", {**unpaid, "payment_status": "paid"}))

    assert paid == {"status": "accepted", "events": 1}
    assert [e.data["payment_id"] for e in of_type(await outbox_events(gw.app), "payment.succeeded")] == ["pi_late"]
    assert (await poll(gw, member_headers, order["order_id"]))["status"] == "paid"


async def post_signed(gw, body: bytes) -> httpx.Response:
    header = stripe.WebhookSignature.generate_signature_header(body.decode(), SECRET, timestamp=int(time.time()))
    stripe.Webhook.construct_event(body, header, SECRET)
    return await gw.client.post(URL, content=body, headers={"Stripe-Signature": header,
                                                            "content-type": "application/json"})


async def add_order(gw, order_id: str, *, amount_fen: int = 99900) -> None:
    """An order row as the checkout route writes it (its transaction committing after Stripe's event)."""
    from datetime import timedelta

    from gateway.models import PaymentOrder
    from qunzhu_common.timeutil import utcnow

    async with gw.app.state.runtime.session_maker() as session, session.begin():
        session.add(PaymentOrder(
            id=order_id, community_id=COMMUNITY, plan_id="yearly", payer_id=PAYER, provider="stripe",
            channel="checkout", kind="new", amount_fen=amount_fen, currency="CNY", request_hash="0" * 64,
            expires_at=utcnow() + timedelta(minutes=30)))


async def test_an_order_of_ours_not_known_yet_is_retried_then_takes_effect_once(gw, outbox_events, admin_headers,
                                                                              metric_value):
    order_id = "qz" + "7" * 24
    body = event("checkout.session.completed", completed({"session_id": "cs_late", "order_id": order_id}, "pi_L"),
                 event_id="evt_order_late")

    first = await post_signed(gw, body)
    again = await post_signed(gw, body)  # Stripe retries (the same event id): still not known, kept once
    assert [a.status_code for a in (first, again)] == [503, 503]
    assert first.headers["content-type"].startswith("application/problem+json")
    assert first.json()["type"].endswith("retry-later") and first.headers["retry-after"]
    assert metric_value(gw.app, "qunzhu_gateway_webhook_retries_requested_total", platform="stripe",
                        reason="order_unknown") == 2
    kept = (await gw.client.get("/api/v1/ops/quarantine", headers=admin_headers)).json()
    assert [(q["delivery_id"], q["retry_requested"]) for q in kept["data"]] == [("evt_order_late", True)]
    assert await outbox_events(gw.app) == []

    await add_order(gw, order_id)
    retried = await post_signed(gw, body)  # the event id was not used up: Stripe's retry is processed
    assert (retried.status_code, retried.json()) == (200, {"status": "accepted", "events": 1})
    assert (await post_signed(gw, body)).json()["status"] == "duplicate"

    (paid,) = of_type(await outbox_events(gw.app), "payment.succeeded")
    assert (paid.community_id, paid.data["payment_id"], paid.data["payer_id"]) == (COMMUNITY, "pi_L", PAYER)
    assert (await gw.client.get("/api/v1/ops/quarantine", headers=admin_headers)).json()["count"] == 0


async def test_a_front_ends_own_reference_is_not_retried(gw, outbox_events):
    """A client_reference_id that is not one of our order ids: the documented metadata path, as before."""
    answer = await post_signed(gw, event("checkout.session.completed", {
        "id": "cs_own", "client_reference_id": "cart-42", "payment_intent": "pi_own", "payment_status": "paid",
        "amount_total": 99900, "currency": "cny",
        "metadata": {"community_id": COMMUNITY, "plan_id": "yearly", "payer_id": PAYER}}))
    assert (answer.status_code, answer.json()["status"]) == (200, "accepted")


async def test_a_resend_from_the_dashboard_is_one_effect(gw, member_headers, outbox_events):
    """Stripe's resend repeats the event id (signed anew): answered `duplicate`, nothing twice."""
    order = await new_order(gw, member_headers)
    body = event("checkout.session.completed", completed(order, "pi_resend"), event_id="evt_resend")
    assert (await send(gw, body))["status"] == "accepted"
    await asyncio.sleep(1.1)  # a later signature timestamp, as a resend has
    assert await send(gw, body) == {"status": "duplicate", "events": 0}
    assert len(of_type(await outbox_events(gw.app), "payment.succeeded")) == 1
