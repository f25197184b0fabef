"""Chat webhooks in: Standard Webhooks JSON — verification, rotation, dedupe, bad input, quarantine."""

from __future__ import annotations

import base64
import json
import os
import time

from gateway.webhooks.verify import sign_standard

COMMUNITY = "c-reading"


def whsec() -> str:
    return "whsec_" + base64.b64encode(os.urandom(24)).decode()


async def register_generic(gw, admin_headers, secrets: list[str], groups=("g-1",), identity="wechat") -> str:
    response = await gw.client.post(
        f"/api/v1/communities/{COMMUNITY}/connectors",
        json={"community_id": COMMUNITY, "platform": "generic", "identity_platform": identity,
              "groups": list(groups), "secrets": {"signing_secrets": secrets}},
        headers=admin_headers,
    )
    assert response.status_code == 201, response.text
    return response.json()["id"]


def signed(body: dict | bytes, secrets: list[str], *, msg_id: str = "msg_1", at: int | None = None) -> tuple:
    raw = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
    stamp = int(time.time()) if at is None else at
    signature = " ".join(sign_standard(s, msg_id, stamp, raw) for s in secrets)
    headers = {"webhook-id": msg_id, "webhook-timestamp": str(stamp), "webhook-signature": signature,
               "content-type": "application/json"}
    return raw, headers


def message(text: str, **extra) -> dict:
    return {"type": "message", "group_id": "g-1", "message_id": "m-1", "sender_id": "wxid_alice",
            "sender_name": "Alice", "text": text, "timestamp": "2026-11-26T12:00:00Z", **extra}


async def test_a_signed_message_is_in_the_outbox_before_the_200(gateway, admin_headers, outbox_events):
    secret = whsec()
    connector = await register_generic(gateway, admin_headers, [secret])
    body, headers = signed(message("看看 https://example.com/a 这个", mentions=["wxid_bob"],
                                   reply_to={"message_id": "m-0", "sender_id": "wxid_bob"}), [secret])

    response = await gateway.client.post(f"/webhooks/chat/{connector}", content=body,
                                         headers={**headers, "X-Request-ID": "wh-req-1"})

    assert response.status_code == 200
    assert response.json() == {"status": "accepted", "events": 1}
    (event,) = await outbox_events(gateway.app)
    assert event.correlation_id == "wh-req-1"
    assert event.type == "chat.message.posted"
    assert event.community_id == COMMUNITY
    assert event.data["group_id"] == "wechat:g-1"
    assert event.data["sender_id"] == "wechat:wxid_alice"
    assert event.data["mentions"] == ["wechat:wxid_bob"]
    assert event.data["reply_to_sender_id"] == "wechat:wxid_bob"
    assert event.data["links"] == ["https://example.com/a"]
    assert event.data["delivery_id"] == "msg_1"


async def test_commands_become_command_events(gateway, admin_headers, outbox_events):
    secret = whsec()
    connector = await register_generic(gateway, admin_headers, [secret])
    texts = {"打卡 第3天 读完第二章": "checkin", "签到": "checkin", "作业：思维导图": "homework",
             "接龙 周六线下聚会": "signup_chain", "？怎么提交作业": "question"}
    for index, text in enumerate(texts):
        body, headers = signed(message(text, message_id=f"m-{index}"), [secret], msg_id=f"msg_{index}")
        response = await gateway.client.post(f"/webhooks/chat/{connector}", content=body, headers=headers)
        assert response.status_code == 200

    events = await outbox_events(gateway.app)
    assert [e.type for e in events] == ["chat.command.issued"] * len(texts)
    assert [e.data["command"] for e in events] == list(texts.values())
    assert events[0].data["argument"] == "第3天 读完第二章"
    assert events[2].data["argument"] == "思维导图"


async def test_other_generic_events(gateway, admin_headers, outbox_events):
    secret = whsec()
    connector = await register_generic(gateway, admin_headers, [secret])
    batch = {"events": [
        {"type": "member_joined", "group_id": "g-1", "member_id": "wxid_new", "inviter_id": "wxid_alice"},
        {"type": "member_left", "group_id": "g-1", "member_id": "wxid_old", "removed_by": "wxid_owner"},
        {"type": "reaction", "group_id": "g-1", "message_id": "m-1", "reactor_id": "wxid_bob", "emoji": "👍"},
        {"type": "red_packet", "group_id": "g-1", "sender_id": "wxid_owner", "amount_fen": 50000, "count": 20},
        {"type": "message_recalled", "group_id": "g-1", "message_id": "m-1", "sender_id": "wxid_bob",
         "operator_id": "wxid_owner"},
    ]}
    body, headers = signed(batch, [secret])

    response = await gateway.client.post(f"/webhooks/chat/{connector}", content=body, headers=headers)

    assert response.json() == {"status": "accepted", "events": 5}
    events = await outbox_events(gateway.app)
    assert [e.type for e in events] == [
        "chat.member.joined", "chat.member.left", "chat.reaction.added", "chat.red_packet.sent",
        "chat.message.recalled"]
    assert events[0].data["inviter_id"] == "wechat:wxid_alice"
    assert events[3].data["amount_fen"] == 50000
    assert (events[4].data["message_id"], events[4].data["sender_id"], events[4].data["operator_id"]) == (
        "m-1", "wechat:wxid_bob", "wechat:wxid_owner")


async def test_key_rotation_accepts_any_current_secret(gateway, admin_headers, outbox_events):
    old, new = whsec(), whsec()
    connector = await register_generic(gateway, admin_headers, [new, old])

    body, headers = signed(message("hi"), [whsec(), old], msg_id="signed-by-old")  # one bad, one good signature
    assert (await gateway.client.post(f"/webhooks/chat/{connector}", content=body, headers=headers)).status_code == 200
    body, headers = signed(message("hi", message_id="m-2"), [new], msg_id="signed-by-new")
    assert (await gateway.client.post(f"/webhooks/chat/{connector}", content=body, headers=headers)).status_code == 200
    assert len(await outbox_events(gateway.app)) == 2


async def test_forged_missing_or_stale_signatures_are_401_without_side_effect(
    gateway, admin_headers, outbox_events, metric_value
):
    secret = whsec()
    connector = await register_generic(gateway, admin_headers, [secret])
    url = f"/webhooks/chat/{connector}"
    body, headers = signed(message("hi"), [secret])

    forged = await gateway.client.post(url, content=body, headers={**headers, "webhook-signature": "v1,AAAA"})
    wrong_secret = await gateway.client.post(url, content=body, headers=signed(message("hi"), [whsec()])[1])
    tampered = await gateway.client.post(url, content=body.replace(b"hi", b"ho"), headers=headers)
    missing = await gateway.client.post(url, content=body)
    stale_body, stale = signed(message("hi"), [secret], at=int(time.time()) - 301)
    too_old = await gateway.client.post(url, content=stale_body, headers=stale)
    future_body, future = signed(message("hi"), [secret], at=int(time.time()) + 301)
    too_new = await gateway.client.post(url, content=future_body, headers=future)

    for response in (forged, wrong_secret, tampered, missing, too_old, too_new):
        assert response.status_code == 401, response.text
        assert response.headers["content-type"] == "application/problem+json"
    assert missing.json()["reason"] == "missing"
    assert too_old.json()["reason"] == "timestamp"
    assert await outbox_events(gateway.app) == []
    name = "qunzhu_gateway_webhook_verification_failures_total"
    assert metric_value(gateway.app, name, platform="generic", reason="signature") == 3
    assert metric_value(gateway.app, name, platform="generic", reason="timestamp") == 2
    # Nothing was recorded as delivered: the genuine delivery still goes through afterwards.
    assert (await gateway.client.post(url, content=body, headers=headers)).json()["status"] == "accepted"


async def test_a_replayed_delivery_is_200_duplicate_and_written_once(
    gateway, admin_headers, outbox_events, metric_value
):
    secret = whsec()
    connector = await register_generic(gateway, admin_headers, [secret])
    body, headers = signed(message("打卡"), [secret], msg_id="msg_replayed")

    first = await gateway.client.post(f"/webhooks/chat/{connector}", content=body, headers=headers)
    second = await gateway.client.post(f"/webhooks/chat/{connector}", content=body, headers=headers)

    assert first.json()["status"] == "accepted"
    assert second.status_code == 200
    assert second.json() == {"status": "duplicate", "events": 0}
    assert len(await outbox_events(gateway.app)) == 1
    assert metric_value(gateway.app, "qunzhu_gateway_webhooks_total", platform="generic", outcome="duplicate") == 1


async def test_oversized_bodies_are_413_and_unknown_connectors_404(gateway, admin_headers, outbox_events):
    secret = whsec()
    connector = await register_generic(gateway, admin_headers, [secret])
    big = message("x" * (1024 * 1024))
    body, headers = signed(big, [secret])

    too_big = await gateway.client.post(f"/webhooks/chat/{connector}", content=body, headers=headers)

    async def chunks():
        yield body  # no content-length: the limit applies while reading

    streamed = await gateway.client.post(
        f"/webhooks/chat/{connector}", content=chunks(), headers={k: v for k, v in headers.items()}
    )
    unknown = await gateway.client.post("/webhooks/chat/nope", content=b"{}", headers=headers)

    assert too_big.status_code == 413
    assert streamed.status_code == 413
    assert unknown.status_code == 404
    assert await outbox_events(gateway.app) == []


async def test_signed_but_unnormalisable_payloads_are_quarantined(
    gateway, admin_headers, outbox_events, metric_value
):
    secret = whsec()
    connector = await register_generic(gateway, admin_headers, [secret])
    url = f"/webhooks/chat/{connector}"
    cases = {
        "unmapped": message("hi", group_id="g-unknown"),
        "unknown-type": {"type": "poke", "group_id": "g-1"},
        "invalid": message("hi", media_kind="hologram"),
    }
    for msg_id, payload in cases.items():
        body, headers = signed(payload, [secret], msg_id=msg_id)
        response = await gateway.client.post(url, content=body, headers=headers)
        assert response.status_code == 200
        assert response.json()["status"] == "quarantined"
    body, headers = signed(b"not json", [secret], msg_id="garbage")
    assert (await gateway.client.post(url, content=body, headers=headers)).json()["status"] == "quarantined"
    # A platform retrying a quarantined delivery gets the duplicate answer, not a second row.
    assert (await gateway.client.post(url, content=body, headers=headers)).json()["status"] == "duplicate"

    assert await outbox_events(gateway.app) == []
    assert metric_value(gateway.app, "qunzhu_gateway_webhooks_total", platform="generic", outcome="quarantined") == 4
    listed = await gateway.client.get("/api/v1/ops/quarantine", params={"source": f"chat:{connector}"},
                                      headers=admin_headers)
    assert listed.status_code == 200
    page = listed.json()
    assert page["count"] == 4
    reasons = {row["delivery_id"]: row["reason"] for row in page["data"]}
    assert "not mapped" in reasons["unmapped"]
    assert "poke" in reasons["unknown-type"]
    assert "media_kind" in reasons["invalid"]
    assert "not JSON" in reasons["garbage"]
    assert {row["payload"] for row in page["data"] if row["delivery_id"] == "garbage"} == {"not json"}
    assert (await gateway.client.get("/api/v1/ops/quarantine")).status_code == 401


async def test_a_connector_over_its_delivery_rate_gets_429_and_nothing_is_recorded(
    tmp_path, standalone_gateway, admin_headers, outbox_events, metric_value,
):
    secret = whsec()
    async with standalone_gateway(tmp_path, webhook_rate_per_s=0.01, webhook_burst=2) as gw:
        connector = await register_generic(gw, admin_headers, [secret])
        url = f"/webhooks/chat/{connector}"
        # Forged deliveries are refused before they count: they cannot use up the platform's allowance.
        body, headers = signed(message("伪造"), [whsec()], msg_id="msg_forged")
        assert (await gw.client.post(url, content=body, headers=headers)).status_code == 401

        answers = []
        for index in range(3):
            body, headers = signed(message(f"第{index}条", message_id=f"m-{index}"), [secret], msg_id=f"msg_{index}")
            answers.append(await gw.client.post(url, content=body, headers=headers))

        assert [a.status_code for a in answers] == [200, 200, 429]
        limited = answers[2]
        assert limited.headers["content-type"] == "application/problem+json"
        assert int(limited.headers["retry-after"]) >= 1
        assert [e.data["message_id"] for e in await outbox_events(gw.app)] == ["m-0", "m-1"]
        assert metric_value(gw.app, "qunzhu_gateway_webhooks_total", platform="generic", outcome="rate_limited") == 1
