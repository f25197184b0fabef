"""Checkout: the gateway creates the order and a Stripe Checkout Session at stripe-mock (Stripe's own mock,
which validates every request against Stripe's OpenAPI); membership is a stand-in answering the plan."""

from __future__ import annotations

import json
from datetime import datetime
from urllib.parse import parse_qs

import httpx
import pytest

COMMUNITY = "c-1"
PAYER = "telegram:42"
PLAN = {"id": "yearly", "community_id": COMMUNITY, "name": "年度会员", "price_fen": 99900, "currency": "CNY",
        "renewal_price_fen": 69900, "active": True, "term_type": "fixed_term", "tier": "basic"}


class Membership:
    """Answers the plans, the caller's membership and their payments, as membership would."""

    def __init__(self, status: str | None = "pending_payment", paid_before: bool = False) -> None:
        self.status, self.paid_before = status, paid_before

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.endswith("/plans"):
            return httpx.Response(200, json=[PLAN])
        if path.endswith("/payments"):
            data = [{"outcome": "granted", "kind": "new"}] if self.paid_before else []
            return httpx.Response(200, json={"data": data, "count": len(data)})
        if "/members/" in path:
            if self.status is None:
                return httpx.Response(404, json={"title": "Not found"})
            return httpx.Response(200, json={"status": self.status, "member_id": PAYER})
        return httpx.Response(200, json={"status": "ok"})


@pytest.fixture
def membership() -> Membership:
    return Membership()


@pytest.fixture
def extra_settings() -> dict:
    """Gateway settings a test module adds (override the fixture)."""
    return {}


@pytest.fixture
async def gw(tmp_path, standalone_gateway, stripe_mock, membership, extra_settings):
    """A gateway whose Stripe is stripe-mock and whose membership is the stand-in above."""
    async with standalone_gateway(tmp_path, respond=membership, stripe_secret_key="sk_test_123",
                                  stripe_api_base=stripe_mock, **extra_settings) as gateway:
        yield gateway


class Recorder(httpx.AsyncBaseTransport):
    """Passes the Stripe calls on to stripe-mock and keeps what was sent."""

    def __init__(self) -> None:
        self.sent: list[httpx.Request] = []
        self._inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(request)
        return await self._inner.handle_async_request(request)


@pytest.fixture
def stripe_calls(gw) -> list[httpx.Request]:
    """The requests the gateway sent to stripe-mock (its StripeClient's HTTPX client, recorded)."""
    recorder = Recorder()
    client = gw.app.state.orders.deps.clients["stripe"]
    http = client._requestor._client  # stripe.HTTPXClient
    http._client_async = httpx.AsyncClient(transport=recorder, timeout=10)
    return recorder.sent


def _form(request: httpx.Request) -> dict[str, list[str]]:
    return parse_qs(request.content.decode())


async def test_checkout_creates_a_stripe_session(gw, member_headers, stripe_calls):
    headers = {**member_headers(gw.app, PAYER), "Idempotency-Key": "k-1"}
    body = {"plan_id": "yearly", "provider": "stripe", "channel": "checkout"}

    first = await gw.client.post(f"/api/v1/communities/{COMMUNITY}/checkout", json=body, headers=headers)
    again = await gw.client.post(f"/api/v1/communities/{COMMUNITY}/checkout", json=body, headers=headers)

    assert first.status_code == 201, first.text
    order = first.json()
    assert again.json() == order  # the same order, no second session
    assert len(stripe_calls) == 1
    assert order["status"] == "created" and order["amount_fen"] == 99900 and order["currency"] == "CNY"
    assert order["kind"] == "new" and order["checkout_url"].startswith("https://")
    assert 6 <= len(order["order_id"]) <= 32 and order["order_id"].isalnum()
    sent = _form(stripe_calls[0])
    assert stripe_calls[0].url.path == "/v1/checkout/sessions"
    assert stripe_calls[0].headers["idempotency-key"] == f"checkout-{order['order_id']}"
    assert sent["mode"] == ["payment"] and sent["client_reference_id"] == [order["order_id"]]
    assert sent["line_items[0][price_data][unit_amount]"] == ["99900"]
    assert sent["line_items[0][price_data][currency]"] == ["cny"]
    for prefix in ("metadata", "payment_intent_data[metadata]"):
        assert sent[f"{prefix}[order_id]"] == [order["order_id"]]
        assert sent[f"{prefix}[community_id]"] == [COMMUNITY]
        assert sent[f"{prefix}[payer_id]"] == [PAYER]
        assert sent[f"{prefix}[plan_id]"] == ["yearly"]
    assert sent["success_url"][0].endswith(order["order_id"])
    # Stripe wants a session to live 30 minutes at least: the order's 30 min + a minute's margin.
    expires = datetime.fromisoformat(order["expires_at"]).timestamp()
    assert 59 <= int(sent["expires_at"][0]) - expires <= 61

    polled = await gw.client.get(f"/api/v1/communities/{COMMUNITY}/orders/{order['order_id']}",
                                 headers=member_headers(gw.app, PAYER))
    assert polled.status_code == 200 and polled.json()["status"] == "created"
    stranger = await gw.client.get(f"/api/v1/communities/{COMMUNITY}/orders/{order['order_id']}",
                                   headers=member_headers(gw.app, "telegram:99"))
    assert stranger.status_code == 404


async def test_renewal_pays_the_renewal_price(gw, member_headers, membership, stripe_calls):
    membership.status, membership.paid_before = "active", True
    answer = await gw.client.post(f"/api/v1/communities/{COMMUNITY}/checkout", headers=member_headers(gw.app, PAYER),
                                  json={"plan_id": "yearly", "provider": "stripe", "channel": "checkout"})
    assert answer.status_code == 201, answer.text
    assert (answer.json()["kind"], answer.json()["amount_fen"]) == ("renewal", 69900)
    assert _form(stripe_calls[0])["line_items[0][price_data][unit_amount]"] == ["69900"]


async def test_checkout_refusals(gw, member_headers, membership, admin_headers):
    url = f"/api/v1/communities/{COMMUNITY}/checkout"
    body = {"plan_id": "yearly", "provider": "stripe", "channel": "checkout"}
    me = member_headers(gw.app, PAYER)

    assert (await gw.client.post(url, json=body)).status_code == 401
    assert (await gw.client.post(url, json=body, headers=admin_headers)).status_code == 403
    assert (await gw.client.post(url, json={**body, "plan_id": "nope"}, headers=me)).status_code == 422
    assert (await gw.client.post(url, json={**body, "channel": "jsapi"}, headers=me)).status_code == 422
    assert (await gw.client.post(url, json={**body, "amount_fen": 1}, headers=me)).status_code == 422
    reused = {**me, "Idempotency-Key": "same"}
    assert (await gw.client.post(url, json=body, headers=reused)).status_code == 201
    other = await gw.client.post(url, json={**body, "referrer": "telegram:7"}, headers=reused)
    assert other.status_code == 409 and other.headers["content-type"] == "application/problem+json"
    membership.status = None
    not_joined = await gw.client.post(url, json=body, headers=me)
    assert not_joined.status_code == 409 and "join" in not_joined.json()["detail"]
    membership.status = "applied"
    assert (await gw.client.post(url, json=body, headers=me)).status_code == 409


async def test_unpaid_orders_expire(gw, member_headers, metric_value):
    from sqlalchemy import update

    from gateway.models import PaymentOrder
    from qunzhu_common.timeutil import utcnow

    made = await gw.client.post(f"/api/v1/communities/{COMMUNITY}/checkout", headers=member_headers(gw.app, PAYER),
                                json={"plan_id": "yearly", "provider": "stripe", "channel": "checkout"})
    order_id = made.json()["order_id"]
    async with gw.app.state.runtime.session_maker() as session, session.begin():
        await session.execute(update(PaymentOrder).where(PaymentOrder.id == order_id).values(expires_at=utcnow()))
    assert await gw.app.state.orders.expire_due() == 1
    assert metric_value(gw.app, "qunzhu_gateway_orders_total", provider="stripe", channel="checkout",
                        outcome="expired") == 1
    polled = await gw.client.get(f"/api/v1/communities/{COMMUNITY}/orders/{order_id}",
                                 headers=member_headers(gw.app, PAYER))
    assert polled.json()["status"] == "expired"
    assert json.loads(json.dumps(polled.json()))["checkout_url"]


class FailingOnce(Recorder):
    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(request)
        if len(self.sent) == 1:
            raise httpx.ConnectError("connection refused", request=request)
        return await self._inner.handle_async_request(request)


async def test_an_unreachable_provider_then_a_retry_opens_the_same_order(gw, member_headers):
    recorder = FailingOnce()
    gw.app.state.orders.deps.clients["stripe"]._requestor._client._client_async = httpx.AsyncClient(
        transport=recorder, timeout=10)
    headers = {**member_headers(gw.app, PAYER), "Idempotency-Key": "k-retry"}
    body = {"plan_id": "yearly", "provider": "stripe", "channel": "checkout"}

    failed = await gw.client.post(f"/api/v1/communities/{COMMUNITY}/checkout", json=body, headers=headers)
    retried = await gw.client.post(f"/api/v1/communities/{COMMUNITY}/checkout", json=body, headers=headers)

    assert failed.status_code == 502 and failed.json()["type"].endswith("payment-provider-unavailable")
    assert retried.status_code == 201 and retried.json()["checkout_url"]
    first, second = (_form(r) for r in recorder.sent)
    assert first == second  # the same parameters under the same idempotency key
    assert recorder.sent[0].headers["idempotency-key"] == recorder.sent[1].headers["idempotency-key"]


async def test_orders_are_counted(gw, member_headers, metric_value):
    await gw.client.post(f"/api/v1/communities/{COMMUNITY}/checkout", headers=member_headers(gw.app, PAYER),
                         json={"plan_id": "yearly", "provider": "stripe", "channel": "checkout"})
    assert metric_value(gw.app, "qunzhu_gateway_orders_total", provider="stripe", channel="checkout",
                        outcome="opened") == 1
