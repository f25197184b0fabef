"""The gateway as its own process on PostgreSQL and Kafka: the owner projected from membership's events
registers a connector, a signed webhook lands once on chat.events.v1 however often it is delivered."""

from __future__ import annotations

import base64
import json
import os
import time
from pathlib import Path

import httpx
import pytest

from tests.integration.actions import OWNER, create_community
from tests.integration.probes import eventually, metric, read_topic
from tests.integration.stack import Stack

pytestmark = pytest.mark.integration


def owner_token(stack: Stack) -> str:
    """A member token as the gateway issues them: the key is derived from its key file in its data dir."""
    from gateway.auth.tokens import issue
    from gateway.crypto import jwt_key
    from gateway.settings import GatewaySettings

    settings = GatewaySettings(data_dir=Path(stack["gateway"].env["GATEWAY_DATA_DIR"]))
    key = (settings.data_dir / "gateway.key").read_bytes().strip()
    token, _ = issue(jwt_key(settings, [key]), settings, subject=OWNER, method="test")
    return token


async def test_a_signed_chat_webhook_reaches_kafka_once(stack: Stack) -> None:
    from gateway.webhooks.verify import sign_standard

    gateway = stack["gateway"].url
    secret = "whsec_" + base64.b64encode(os.urandom(24)).decode()
    async with httpx.AsyncClient(timeout=10) as client:
        community = await create_community(client, stack["membership"].url)
        headers = {"Authorization": f"Bearer {owner_token(stack)}"}
        body = {"community_id": community["id"], "platform": "generic", "identity_platform": "wechat",
                "groups": [f"g-{community['id']}"], "secrets": {"signing_secrets": [secret]}}

        async def register() -> httpx.Response:
            return await client.post(f"{gateway}/api/v1/communities/{community['id']}/connectors",
                                     json=body, headers=headers)

        # 403 until the gateway has consumed community.created and knows the owner.
        registered = await eventually(register, until=lambda r: r.status_code == 201, what="owner projected")
        connector = registered.json()
        assert secret not in registered.text

        message = json.dumps({"type": "message", "group_id": f"g-{community['id']}", "message_id": "m-1",
                              "sender_id": "wxid_a", "text": "打卡 第1天"}, ensure_ascii=False).encode()
        delivery = f"msg-{community['id']}"
        stamp = int(time.time())
        signed = {"webhook-id": delivery, "webhook-timestamp": str(stamp),
                  "webhook-signature": sign_standard(secret, delivery, stamp, message)}
        url = f"{gateway}/webhooks/chat/{connector['id']}"
        answers = [await client.post(url, content=message, headers=signed) for _ in range(3)]
        forged = await client.post(url, content=message, headers={**signed, "webhook-signature": "v1,AAAA"})

        def sign(body: dict, webhook_id: str) -> tuple[bytes, dict]:
            raw = json.dumps({"group_id": f"g-{community['id']}", **body}, ensure_ascii=False).encode()
            at = int(time.time())
            return raw, {"webhook-id": webhook_id, "webhook-timestamp": str(at),
                         "webhook-signature": sign_standard(secret, webhook_id, at, raw)}

        # The same chat message under a new webhook-id (a bridge re-sending it): no second event. Then the
        # names directory on PostgreSQL: an @-name nobody carries yet, resolved when 赵六 joins.
        later = [
            sign(json.loads(message), f"resent-{community['id']}"),
            sign({"type": "message", "message_id": "m-2", "sender_id": "wxid_li", "sender_name": "李一天",
                  "text": "@赵六 早", "mention_names": ["赵六"]}, f"named-{community['id']}"),
            sign({"type": "member_joined", "member_id": "wxid_zhao", "display_name": "赵六"},
                 f"joined-{community['id']}"),
        ]
        resent, named, joined = [await client.post(url, content=b, headers=h) for b, h in later]

    assert [a.json()["status"] for a in answers] == ["accepted", "duplicate", "duplicate"]
    assert forged.status_code == 401
    assert [a.json()["status"] for a in (resent, named, joined)] == ["duplicate", "accepted", "accepted"]

    async def ours() -> list:
        records = await read_topic(stack.kafka.bootstrap, "chat.events.v1")
        return [json.loads(r.value) for r in records if json.loads(r.value)["data"].get("delivery_id") == delivery]

    (event,) = await eventually(ours, until=lambda found: len(found) >= 1, what="the event on Kafka")
    assert event["type"] == "chat.command.issued"
    assert event["community_id"] == community["id"]
    assert event["data"]["command"] == "checkin"
    assert len(await ours()) == 1

    async def resolved() -> list:
        records = await read_topic(stack.kafka.bootstrap, "chat.events.v1")
        return [e for e in (json.loads(r.value) for r in records)
                if e["type"] == "chat.mention.resolved" and e["community_id"] == community["id"]]

    (mention,) = await eventually(resolved, until=lambda found: len(found) >= 1, what="the mention resolved")
    assert (mention["data"]["message_id"], mention["data"]["sender_id"], mention["data"]["mentioned_id"]) == (
        "m-2", "wechat:wxid_li", "wechat:wxid_zhao")
    records = await read_topic(stack.kafka.bootstrap, "chat.events.v1")
    copies = [e for e in (json.loads(r.value) for r in records)
              if e["community_id"] == community["id"] and e["data"].get("message_id") == "m-1"]
    assert len(copies) == 1  # the re-sent copy under another webhook-id made none
    assert await metric(gateway, "qunzhu_gateway_webhooks_total", platform="generic", outcome="duplicate") >= 2
