"""What integration tests do to the platform, written once so an API change is fixed in one place."""

from __future__ import annotations

import base64
import json
import os
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from tests.integration.probes import eventually
from tests.integration.stack import ACTOR_AUTH, GATEWAY_OPERATOR_KEY, operator_client

OWNER = "telegram:10001"


def community_body(**overrides: str) -> dict[str, str]:
    body = {"name": f"社群 {uuid.uuid4().hex[:6]}", "positioning": "每天一个增长实验", "owner_id": OWNER}
    body.update(overrides)
    return body


async def create_community(client: httpx.AsyncClient, base_url: str, path: str = "/communities") -> dict:
    """Create a community as its owner (X-Actor-Id is what the gateway sets after authentication)."""
    # Through the gateway the platform operator creates it for OWNER; a service directly takes X-Actor-Id.
    if path.startswith("/api/"):
        response = await client.post(base_url + path, json=community_body(),
                                     headers={"X-API-Key": GATEWAY_OPERATOR_KEY})
    else:
        async with httpx.AsyncClient(timeout=client.timeout, auth=ACTOR_AUTH) as signed:
            response = await signed.post(base_url + path, json=community_body(), headers={"X-Actor-Id": OWNER})
    assert response.status_code == 201, response.text
    return response.json()


async def copy_status(client: httpx.AsyncClient, base_url: str, community_id: str) -> int:
    """A service's copy of a community, as the platform operator sees it (the read needs a caller)."""
    async with operator_client(timeout=client.timeout) as signed:
        return (await signed.get(f"{base_url}/communities/{community_id}")).status_code


# -- the gateway as chat platforms, payment providers and front ends reach it ---------------------------

def owner_token(gateway_data_dir: Path, subject: str = OWNER) -> str:
    """A member token as the gateway issues them (its key is derived from the key file in its data dir)."""
    from gateway.auth.tokens import issue
    from gateway.crypto import jwt_key
    from gateway.settings import GatewaySettings

    settings = GatewaySettings(data_dir=gateway_data_dir)
    key = (settings.data_dir / "gateway.key").read_bytes().strip()
    token, _ = issue(jwt_key(settings, [key]), settings, subject=subject, method="test")
    return token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def webhook_secret() -> str:
    return "whsec_" + base64.b64encode(os.urandom(24)).decode()


async def register_connector(
    client: httpx.AsyncClient, gateway: str, community_id: str, *, headers: dict[str, str], groups: list[str],
    secret: str, outbound_url: str | None = None, timeout_s: float = 60,
) -> dict:
    """A generic (Standard Webhooks) connector; retried while the gateway has not yet projected the owner."""
    secrets: dict[str, Any] = {"signing_secrets": [secret]}
    if outbound_url:
        secrets |= {"outbound_url": outbound_url, "outbound_secret": webhook_secret()}
    body = {"community_id": community_id, "platform": "generic", "identity_platform": "wechat",
            "groups": groups, "secrets": secrets}

    async def register() -> httpx.Response:
        return await client.post(f"{gateway}/api/v1/communities/{community_id}/connectors", json=body,
                                 headers=headers)

    response = await eventually(register, until=lambda r: r.status_code == 201, what="connector registered",
                                timeout=timeout_s)
    return response.json()


def signed_chat(secret: str, payload: dict, *, delivery_id: str | None = None) -> tuple[bytes, dict[str, str]]:
    """A chat webhook body and its Standard Webhooks headers, as a platform bridge sends them."""
    from gateway.webhooks.verify import sign_standard

    body = json.dumps(payload, ensure_ascii=False).encode()
    delivery_id = delivery_id or f"msg_{uuid.uuid4().hex}"
    stamp = int(time.time())
    return body, {"webhook-id": delivery_id, "webhook-timestamp": str(stamp), "content-type": "application/json",
                  "webhook-signature": sign_standard(secret, delivery_id, stamp, body)}


def chat_message(group: str, sender: str, text: str) -> dict:
    return {"type": "message", "group_id": group, "message_id": f"m-{uuid.uuid4().hex[:12]}", "sender_id": sender,
            "sender_name": sender, "text": text, "timestamp": datetime.now(UTC).isoformat()}


async def send_chat(client: httpx.AsyncClient, gateway: str, connector_id: str, secret: str,
                    payload: dict) -> httpx.Response:
    body, headers = signed_chat(secret, payload)
    return await client.post(f"{gateway}/webhooks/chat/{connector_id}", content=body, headers=headers)


async def create_plan(client: httpx.AsyncClient, gateway: str, community_id: str, *, headers: dict[str, str],
                      price_fen: int = 99900) -> dict:
    """A yearly paid plan, created by the owner through the gateway."""
    response = await client.post(
        f"{gateway}/api/v1/membership/communities/{community_id}/plans", headers=headers,
        json={"name": "年费", "price_fen": price_fen, "term_type": "fixed_duration", "duration_days": 365},
    )
    assert response.status_code == 201, response.text
    return response.json()


async def pay_with_stripe(client: httpx.AsyncClient, gateway: str, *, secret: str, community_id: str,
                          plan_id: str, payer_id: str, amount_fen: int,
                          with_payment_intent: bool = False) -> list[httpx.Response]:
    """Stripe's `checkout.session.completed` for a paid checkout, signed as Stripe signs it; with
    `with_payment_intent`, also the `payment_intent.succeeded` Stripe sends for the same payment."""
    import stripe

    payment = uuid.uuid4().hex[:16]
    metadata = {"community_id": community_id, "plan_id": plan_id, "payer_id": payer_id}
    events = [("checkout.session.completed", {
        "id": f"cs_{payment}", "payment_intent": f"pi_{payment}", "payment_status": "paid",
        "amount_total": amount_fen, "currency": "cny", "metadata": metadata})]
    if with_payment_intent:
        events.append(("payment_intent.succeeded", {
            "id": f"pi_{payment}", "amount_received": amount_fen, "currency": "cny", "metadata": metadata}))
    answers = []
    for index, (type_, obj) in enumerate(events):
        body = json.dumps({"id": f"evt_{payment}_{index}", "object": "event", "type": type_,
                           "created": int(time.time()), "data": {"object": obj}})
        signature = stripe.WebhookSignature.generate_signature_header(body, secret, timestamp=int(time.time()))
        answers.append(await client.post(f"{gateway}/webhooks/payments/stripe", content=body.encode(),
                                         headers={"Stripe-Signature": signature, "content-type": "application/json"}))
    return answers


async def register_content_group(client: httpx.AsyncClient, gateway: str, community_id: str, group_id: str, *,
                                 headers: dict[str, str]) -> None:
    """Tell content about a chat group (retried until content has consumed `community.created`)."""
    async def put() -> httpx.Response:
        return await client.put(f"{gateway}/api/v1/content/communities/{community_id}/groups",
                                json={"group_id": group_id}, headers=headers)

    await eventually(put, until=lambda r: r.status_code == 200, what="content group registered")


async def schedule_broadcast(client: httpx.AsyncClient, gateway: str, community_id: str, text: str, *,
                             headers: dict[str, str], in_s: float = 1) -> dict:
    """A one-off broadcast to every group of the community, due in `in_s` seconds."""
    starts_at = (datetime.now(UTC) + timedelta(seconds=in_s)).isoformat()
    response = await client.post(f"{gateway}/api/v1/content/communities/{community_id}/schedules",
                                 json={"text": text, "starts_at": starts_at}, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


@contextmanager
def bot_bridge() -> Iterator[tuple[str, list[dict]]]:
    """An operator's bot bridge on 127.0.0.1 that accepts every action the gateway sends it (200)."""
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            received.append(json.loads(self.rfile.read(int(self.headers.get("content-length", 0)))))
            self.send_response(200)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/actions", received
    finally:
        server.shutdown()
        server.server_close()
