"""A refund end to end on the real stack: a member asks membership for their money back → `refund.requested`
on Kafka → the gateway calls (a fake) Stripe's Refunds API with the request id as idempotency key → Stripe's
signed `charge.refunded` webhook → `payment.refunded` → membership removes the member."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

from tests.integration.actions import OWNER, community_body, pay_with_stripe
from tests.integration.probes import eventually, read_topic
from tests.integration.stack import ACTOR_AUTH, STRIPE_WEBHOOK_SECRET, Stack

pytestmark = pytest.mark.integration

REFUND_SETTINGS = ("GATEWAY_STRIPE_SECRET_KEY", "GATEWAY_STRIPE_API_BASE", "GATEWAY_REFUND_BACKOFF_S",
                   "GATEWAY_REFUND_POLL_INTERVAL_S")


@pytest.fixture(scope="module")
def fake_stripe(stack: Stack) -> Iterator[list[dict]]:
    """Stripe's Refunds API on 127.0.0.1, and the stack's gateway restarted to use it (and restored after)."""
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            form = parse_qs(self.rfile.read(int(self.headers.get("content-length", 0))).decode())
            received.append({"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()},
                             "form": form})
            answer = json.dumps({"id": f"re_{uuid.uuid4().hex[:14]}", "object": "refund", "status": "pending",
                                 "amount": int(form["amount"][0]), "currency": "cny",
                                 "payment_intent": form["payment_intent"][0]}).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    gateway = stack["gateway"]
    gateway.env.update({"GATEWAY_STRIPE_SECRET_KEY": "sk_test_integration",
                        "GATEWAY_STRIPE_API_BASE": f"http://127.0.0.1:{server.server_address[1]}",
                        "GATEWAY_REFUND_BACKOFF_S": "0.2", "GATEWAY_REFUND_POLL_INTERVAL_S": "0.2"})
    gateway.restart()
    try:
        yield received
    finally:
        for name in REFUND_SETTINGS:
            gateway.env.pop(name, None)
        gateway.restart()
        server.shutdown()
        server.server_close()


def charge_refunded(payment_intent: str, refund_id: str, amount_fen: int) -> tuple[bytes, dict[str, str]]:
    """Stripe's `charge.refunded` for a refund it made, signed as Stripe signs it (no metadata: the gateway
    finds the community from the payment it saw)."""
    import stripe

    body = json.dumps({
        "id": f"evt_{uuid.uuid4().hex[:16]}", "object": "event", "type": "charge.refunded", "created": int(time.time()),
        "data": {"object": {"id": f"ch_{uuid.uuid4().hex[:14]}", "object": "charge", "payment_intent": payment_intent,
                            "amount": amount_fen, "amount_refunded": amount_fen, "currency": "cny", "refunded": True,
                            "refunds": {"data": [{"id": refund_id, "reason": "requested_by_customer"}]}}},
    })
    signature = stripe.WebhookSignature.generate_signature_header(body, STRIPE_WEBHOOK_SECRET,
                                                                  timestamp=int(time.time()))
    return body.encode(), {"Stripe-Signature": signature, "content-type": "application/json"}


async def test_a_self_service_refund_is_executed_at_stripe_and_revokes_the_member(
    stack: Stack, fake_stripe: list[dict],
) -> None:
    gateway, membership = stack["gateway"].url, stack["membership"].url
    payer = f"telegram:{uuid.uuid4().int % 10**9}"
    owner = {"X-Actor-Id": OWNER}
    async with httpx.AsyncClient(timeout=30, auth=ACTOR_AUTH) as client:
        created = await client.post(f"{membership}/communities", headers=owner,
                                    json=community_body(entry_policies=["paid"]))  # the refund removes the member
        assert created.status_code == 201, created.text
        cid = created.json()["id"]
        plan = await client.post(f"{membership}/communities/{cid}/plans", headers=owner, json={
            "name": "年费", "price_fen": 19900, "term_type": "fixed_duration", "duration_days": 365})
        assert plan.status_code == 201, plan.text
        answers = await pay_with_stripe(client, gateway, secret=STRIPE_WEBHOOK_SECRET, community_id=cid,
                                        plan_id=plan.json()["id"], payer_id=payer, amount_fen=19900)
        assert [a.status_code for a in answers] == [200], [a.text for a in answers]

        async def member() -> dict:
            answer = await client.get(f"{membership}/communities/{cid}/members/{payer}", headers=owner)
            return answer.json() if answer.status_code == 200 else {}

        joined = await eventually(member, until=lambda m: m.get("status") in ("active", "pending_ritual"),
                                  what="the payer is a member")
        payments = (await client.get(f"{membership}/communities/{cid}/members/{payer}/payments",
                                     headers={"X-Actor-Id": payer})).json()["data"]
        payment_id = payments[0]["payment_id"]

        asked = await client.post(f"{membership}/communities/{cid}/refund-requests", headers={"X-Actor-Id": payer},
                                  json={"payment_id": payment_id, "reason": "课程不适合我"})
        assert asked.status_code == 201, asked.text
        request_id = asked.json()["id"]

        async def calls() -> list[dict]:
            return [c for c in fake_stripe if c["headers"].get("idempotency-key") == request_id]

        (call,) = await eventually(calls, until=lambda found: len(found) >= 1, what="the Stripe refund call")
        assert call["path"] == "/v1/refunds"
        assert call["headers"]["authorization"] == "Bearer sk_test_integration"
        assert call["form"]["payment_intent"] == [payment_id] and call["form"]["amount"] == ["19900"]

        async def submitted() -> list[dict]:
            records = await read_topic(stack.kafka.bootstrap, "payments.events.v1")
            events = [json.loads(r.value) for r in records]
            return [e for e in events if e["type"] == "refund.submitted" and e["data"]["request_id"] == request_id]

        (event,) = await eventually(submitted, until=lambda found: len(found) >= 1, what="refund.submitted")
        assert event["community_id"] == cid and event["data"]["refund_id"].startswith("re_")
        # Access stays until Stripe confirms the refund.
        assert (await member())["status"] == joined["status"]

        body, headers = charge_refunded(payment_id, event["data"]["refund_id"], 19900)
        confirmed = await client.post(f"{gateway}/webhooks/payments/stripe", content=body, headers=headers)
        assert confirmed.status_code == 200, confirmed.text

        revoked = await eventually(member, until=lambda m: m.get("status") == "removed", what="the member revoked")
    assert "refunded" in revoked["status_reason"]
    assert len(await calls()) == 1
