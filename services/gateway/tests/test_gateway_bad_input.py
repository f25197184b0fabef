"""No 5xx from input (issue #15): bodies that used to make a service or the gateway answer 500 are refused
with a 4xx problem, or (signed webhooks) quarantined and acknowledged — and nothing else is written."""

from __future__ import annotations

import json

import pytest
from test_gateway_chat_webhooks import register_generic, signed, whsec  # same folder, on sys.path

PROBLEM = "application/problem+json"
DEEP = b"[" * 20_000 + b"]" * 20_000
DEEP_OBJECT = b'{"name":' * 20_000 + b"1" + b"}" * 20_000
OWNER = "telegram:1"


def assert_problem(response, *statuses: int) -> None:
    assert response.status_code in statuses, (response.status_code, response.text[:300])
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["status"] == response.status_code and body["title"]


async def communities_of(platform) -> int:
    listed = await platform.client.get("/api/v1/communities", params={"owner_id": OWNER})
    assert listed.status_code == 200
    return listed.json()["count"]


@pytest.mark.parametrize("body", [DEEP, DEEP_OBJECT], ids=["array", "object"])
async def test_deep_json_to_an_api_route_is_400_and_creates_nothing(platform, member_headers, body):
    response = await platform.client.post("/api/v1/communities", content=body, headers={
        **member_headers(platform.app, OWNER), "content-type": "application/json"})

    assert_problem(response, 400)
    assert "deeper than 64" in response.json()["detail"]
    assert await communities_of(platform) == 0


async def test_deep_json_to_an_engagement_route_is_400(platform, member_headers, community_body):
    created = await platform.client.post("/api/v1/communities", json=community_body(),
                                         headers=member_headers(platform.app, OWNER))
    community_id = created.json()["id"]

    for path in (f"/api/v1/engagement/communities/{community_id}/lotteries",
                 f"/api/v1/engagement/communities/{community_id}/rules"):
        response = await platform.client.post(path, content=DEEP, headers={
            **member_headers(platform.app, OWNER), "content-type": "application/json"})
        assert_problem(response, 400)


@pytest.mark.parametrize("body", [
    b'{"name":"\\ud800"}',
    b'{"name":"\\udfff","positioning":"x","owner_id":"telegram:1"}',
    b'{"name":"\xed\xa0\x80","positioning":"x","owner_id":"telegram:1"}',  # the surrogate UTF-8-encoded
    b'{"name":"a\\u0000b","positioning":"x","owner_id":"telegram:1"}',
    b'{"name":"a","positioning":"x","owner_id":"telegram:1","rules":NaN}',
], ids=["lone-high", "lone-low", "raw-surrogate", "nul", "nan"])
async def test_unstorable_text_is_a_4xx_and_creates_nothing(platform, member_headers, body):
    response = await platform.client.post("/api/v1/communities", content=body, headers={
        **member_headers(platform.app, OWNER), "content-type": "application/json"})

    assert_problem(response, 400, 422)
    assert await communities_of(platform) == 0


@pytest.mark.parametrize("currency", ["USDT", "zz", "usd", "C1Y"])
async def test_a_plan_currency_that_is_not_iso_4217_is_422_and_no_plan_exists(
    platform, member_headers, community_body, currency
):
    headers = member_headers(platform.app, OWNER)
    created = await platform.client.post("/api/v1/communities", json=community_body(), headers=headers)
    community_id = created.json()["id"]
    plans = f"/api/v1/membership/communities/{community_id}/plans"

    response = await platform.client.post(plans, headers=headers, json={
        "name": "年卡", "price_fen": 19900, "currency": currency, "term_type": "fixed_duration", "duration_days": 365})

    assert_problem(response, 422)
    assert [e["loc"] for e in response.json()["errors"]] == [["body", "currency"]]
    listed = await platform.client.get(plans, headers=headers)
    assert listed.status_code == 200 and listed.json() == []
    good = await platform.client.post(plans, headers=headers, json={
        "name": "年卡", "price_fen": 19900, "currency": "USD", "term_type": "fixed_duration", "duration_days": 365})
    assert good.status_code == 201, good.text


# -- signed generic webhooks: quarantined with the reason, answered 200 ---------------------------------


def message(**extra) -> dict:
    return {"type": "message", "group_id": "g-1", "message_id": "m-1", "sender_id": "wxid_alice",
            "sender_name": "Alice", "text": "hi", "timestamp": "2026-11-26T12:00:00Z", **extra}


BAD_WEBHOOKS = {
    "timestamp-9999": json.dumps(message(timestamp="9999-99-99")).encode(),
    "timestamp-1e20": json.dumps(message(timestamp=1e20)).encode(),
    "timestamp-overflow": json.dumps(message(timestamp="9999-12-31T23:59:59-14:00")).encode(),
    "mentions-5": json.dumps(message(mentions=5)).encode(),
    "reply-to-str": json.dumps(message(reply_to="str")).encode(),
    "sender-object": json.dumps(message(sender_id={"id": 1})).encode(),
    "red-packet-1e20": json.dumps({"type": "red_packet", "group_id": "g-1", "sender_id": "a",
                                   "amount_fen": 1e20}).encode(),
    "deep": b'{"type":"message","group_id":"g-1","x":' + DEEP + b"}",
    "lone-surrogate": b'{"type":"message","group_id":"g-1","sender_id":"a","text":"\\ud800"}',
    "nul": b'{"type":"message","group_id":"g-1","sender_id":"a","text":"a\\u0000"}',
    "events-not-list": b'{"events":{"type":"message"}}',
}


async def test_signed_generic_webhooks_that_cannot_be_normalised_are_quarantined_with_200(
    gateway, admin_headers, outbox_events
):
    secret = whsec()
    connector = await register_generic(gateway, admin_headers, [secret])
    url = f"/webhooks/chat/{connector}"

    for msg_id, body in BAD_WEBHOOKS.items():
        raw, headers = signed(body, [secret], msg_id=msg_id)
        response = await gateway.client.post(url, content=raw, headers=headers)
        assert response.status_code == 200, (msg_id, response.status_code, response.text[:200])
        assert response.json() == {"status": "quarantined", "events": 0}, msg_id

    assert await outbox_events(gateway.app) == []
    listed = await gateway.client.get("/api/v1/ops/quarantine", params={"source": f"chat:{connector}", "limit": 50},
                                      headers=admin_headers)
    reasons = {row["delivery_id"]: row["reason"] for row in listed.json()["data"]}
    assert set(reasons) == set(BAD_WEBHOOKS)
    assert "timestamp" in reasons["timestamp-9999"] and "timestamp" in reasons["timestamp-1e20"]
    assert "mentions" in reasons["mentions-5"] and "reply_to" in reasons["reply-to-str"]
    assert "deeper than 64" in reasons["deep"]
    assert "surrogate" in reasons["lone-surrogate"] and "NUL" in reasons["nul"]


async def test_a_deep_telegram_update_is_quarantined(gateway, admin_headers):
    response = await gateway.client.post(
        "/api/v1/communities/c-reading/connectors", headers=admin_headers,
        json={"community_id": "c-reading", "platform": "telegram", "groups": ["-1001"],
              "secrets": {"bot_token": "123456:AAE-bot-token-value", "secret_token": "tg-secret-token-0123456789"}})
    connector = response.json()["id"]

    delivered = await gateway.client.post(
        f"/webhooks/chat/{connector}", content=b'{"update_id":1,"message":' + DEEP + b"}",
        headers={"X-Telegram-Bot-Api-Secret-Token": "tg-secret-token-0123456789",
                 "content-type": "application/json"})

    assert delivered.status_code == 200
    assert delivered.json()["status"] == "quarantined"
