"""Part 3 — webhook security: for every provider the gateway takes webhooks from (Standard Webhooks chat
bridges, Telegram, WeCom, OneBot 11 and the QQ official bot, Stripe, WeChat Pay), forged, re-signed, stale,
replayed, oversized, truncated and mistyped deliveries are refused with the right status as RFC 9457
problems, with no side effect at all: every table of every service's database and every topic's end offset
move exactly as much as the valid deliveries sent alongside them (measured once on their own), which also
proves the pipeline was live.
"""

from __future__ import annotations

import base64
import json
import os
import time
import uuid
from collections import Counter
from dataclasses import dataclass

import httpx
import pytest
import stripe
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tests import summary
from tests.integration.actions import bearer, create_plan, owner_token
from tests.integration.probes import eventually
from tests.integration.stack import GATEWAY_OPERATOR_KEY, STRIPE_WEBHOOK_SECRET
from tests.security.effects import assert_problem, delta, settled, snapshot
from tests.security.harness import WECHATPAY_APIV3_KEY, WECHATPAY_SERIAL, SecurityStack, wechatpay_certificate

pytestmark = pytest.mark.integration

GENERIC_SECRET = "whsec_" + base64.b64encode(b"security-suite-generic-secret-01").decode()
OTHER_SECRET = "whsec_" + base64.b64encode(b"an-attacker-guessed-this-secret!").decode()
TG_SECRET = "telegram-secret-token-0123456789"
WECOM_TOKEN, WECOM_CORP = "wecom-token", "ww0123456789"
WECOM_AES = base64.b64encode(b"k" * 32).decode().rstrip("=")
OTHER_AES = base64.b64encode(b"x" * 32).decode().rstrip("=")
ONEBOT_SECRET, ONEBOT_SELF_ID = "security-suite-onebot-secret", "3889000001"
QQ_APP_ID, QQ_SECRET = "102000001", "security-suite-qq-bot-secret"
LIMIT = 1024 * 1024  # the gateway's default webhook body limit
JSON_CT = {"content-type": "application/json"}


@dataclass
class Request:
    """One delivery as a provider sends it: where, what and with which headers."""

    url: str
    body: bytes
    headers: dict[str, str]
    params: dict[str, str] | None = None

    def but(self, *, body: bytes | None = None, headers: dict[str, str] | None = None,
            params: dict[str, str] | None = None) -> Request:
        return Request(self.url, self.body if body is None else body, {**self.headers, **(headers or {})},
                       {**(self.params or {}), **(params or {})} or None)


class Providers:
    """Signers for each provider, bound to the connectors of one community."""

    def __init__(self, gateway: str, community_id: str, plan_id: str, connectors: dict[str, str],
                 groups: dict[str, str], wechatpay_key) -> None:  # noqa: ANN001
        self.gw, self.cid, self.plan_id = gateway, community_id, plan_id
        self.connectors, self.groups, self.wechatpay_key = connectors, groups, wechatpay_key

    # -- chat ---------------------------------------------------------------------------------------
    def generic(self, *, secret: str = GENERIC_SECRET, at: int | None = None, body: bytes | None = None,
                delivery_id: str | None = None) -> Request:
        from gateway.webhooks.verify import sign_standard

        body = body if body is not None else json.dumps({
            "type": "message", "group_id": self.groups["generic"], "message_id": uuid.uuid4().hex,
            "sender_id": uuid.uuid4().hex[:10], "text": "打卡 第1天"}, ensure_ascii=False).encode()
        delivery_id, at = delivery_id or f"msg_{uuid.uuid4().hex}", at or int(time.time())
        return Request(f"{self.gw}/webhooks/chat/{self.connectors['generic']}", body, {
            **JSON_CT, "webhook-id": delivery_id, "webhook-timestamp": str(at),
            "webhook-signature": sign_standard(secret, delivery_id, at, body)})

    def telegram(self, *, token: str = TG_SECRET) -> Request:
        update = {"update_id": uuid.uuid4().int % 10**9, "message": {
            "message_id": uuid.uuid4().int % 10**9, "date": int(time.time()), "text": "今天的增长实验笔记",
            "chat": {"id": int(self.groups["telegram"]), "type": "supergroup"},
            "from": {"id": uuid.uuid4().int % 10**9, "first_name": "Li"}}}
        return Request(f"{self.gw}/webhooks/chat/{self.connectors['telegram']}", json.dumps(update).encode(),
                       {**JSON_CT, "X-Telegram-Bot-Api-Secret-Token": token})

    def wecom(self, *, token: str = WECOM_TOKEN, aes: str = WECOM_AES, corp: str = WECOM_CORP,
              at: int | None = None) -> Request:
        from gateway.webhooks.wecom_crypto import encrypt, signature

        xml = (f"<xml><ChatId>{self.groups['wecom']}</ChatId><From><UserId>u{uuid.uuid4().hex[:8]}</UserId></From>"
               f"<MsgType>text</MsgType><Text><Content>今天的复盘</Content></Text>"
               f"<MsgId>{uuid.uuid4().hex}</MsgId><CreateTime>{int(time.time())}</CreateTime></xml>")
        encrypted = encrypt(aes, xml.encode(), corp)
        stamp, nonce = str(at or int(time.time())), "n0nce"
        body = f"<xml><ToUserName><![CDATA[{corp}]]></ToUserName><Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>"
        return Request(f"{self.gw}/webhooks/chat/{self.connectors['wecom']}", body.encode(),
                       {"content-type": "text/xml"},
                       {"msg_signature": signature(token, stamp, nonce, encrypted), "timestamp": stamp, "nonce": nonce})

    def onebot(self, *, secret: str = ONEBOT_SECRET, self_id: str = ONEBOT_SELF_ID, at: int | None = None) -> Request:
        from gateway.webhooks.onebot import sign

        event = {"time": at or int(time.time()), "self_id": int(ONEBOT_SELF_ID), "post_type": "message",
                 "message_type": "group", "sub_type": "normal", "message_id": uuid.uuid4().int % 2**31,
                 "group_id": int(self.groups["onebot"]), "user_id": uuid.uuid4().int % 10**9,
                 "message": [{"type": "text", "data": {"text": "今天读完第三章"}}], "raw_message": "今天读完第三章",
                 "font": 0, "sender": {"nickname": "读者", "card": ""}}
        body = json.dumps(event, ensure_ascii=False).encode()
        return Request(f"{self.gw}/webhooks/chat/{self.connectors['onebot']}", body,
                       {**JSON_CT, "X-Self-ID": self_id, "X-Signature": sign(secret, body)})

    def qq(self, *, secret: str = QQ_SECRET, at: int | None = None) -> Request:
        from gateway.webhooks.qqbot import sign

        event = {"op": 0, "id": f"GROUP_AT_MESSAGE_CREATE:{uuid.uuid4().hex}", "t": "GROUP_AT_MESSAGE_CREATE",
                 "d": {"id": f"ROBOT1.0_{uuid.uuid4().hex}", "content": " 今天的复盘",
                       "timestamp": "2026-12-07T14:05:00+08:00", "group_openid": self.groups["qq"],
                       "author": {"member_openid": uuid.uuid4().hex.upper()}}}
        body, stamp = json.dumps(event, ensure_ascii=False).encode(), str(at or int(time.time()))
        return Request(f"{self.gw}/webhooks/chat/{self.connectors['qq']}", body, {
            **JSON_CT, "X-Signature-Timestamp": stamp, "X-Signature-Ed25519": sign(secret, stamp.encode() + body)})

    # -- payments -----------------------------------------------------------------------------------
    def stripe(self, *, secret: str = STRIPE_WEBHOOK_SECRET, at: int | None = None,
               body: bytes | None = None) -> Request:
        if body is None:
            payment = uuid.uuid4().hex[:16]
            body = json.dumps({"id": f"evt_{payment}", "object": "event", "type": "checkout.session.completed",
                               "created": int(time.time()), "data": {"object": {
                                   "id": f"cs_{payment}", "payment_intent": f"pi_{payment}", "payment_status": "paid",
                                   "amount_total": 9900, "currency": "cny", "metadata": {
                                       "community_id": self.cid, "plan_id": self.plan_id,
                                       "payer_id": f"telegram:{uuid.uuid4().int % 10**9}"}}}}).encode()
        header = stripe.WebhookSignature.generate_signature_header(body.decode(errors="replace"), secret,
                                                                   timestamp=at or int(time.time()))
        return Request(f"{self.gw}/webhooks/payments/stripe", body, {**JSON_CT, "Stripe-Signature": header})

    def wechatpay(self, *, key=None, serial: int = WECHATPAY_SERIAL, at: int | None = None,  # noqa: ANN001
                  body: bytes | None = None) -> Request:
        if body is None:
            resource = {"out_trade_no": uuid.uuid4().hex, "transaction_id": str(uuid.uuid4().int % 10**12),
                        "trade_state": "SUCCESS", "success_time": "2026-11-26T20:00:00+08:00",
                        "amount": {"total": 9900, "currency": "CNY"}, "attach": json.dumps({
                            "community_id": self.cid, "plan_id": self.plan_id,
                            "payer_id": f"wechat:{uuid.uuid4().hex[:10]}"})}
            nonce = base64.b64encode(os.urandom(9)).decode()[:12]
            ciphertext = AESGCM(WECHATPAY_APIV3_KEY.encode()).encrypt(
                nonce.encode(), json.dumps(resource).encode(), b"transaction")
            body = json.dumps({"id": f"EV-{uuid.uuid4().hex}", "create_time": "2026-11-26T20:00:00+08:00",
                               "event_type": "TRANSACTION.SUCCESS", "resource_type": "encrypt-resource",
                               "resource": {"algorithm": "AEAD_AES_256_GCM", "original_type": "transaction",
                                            "ciphertext": base64.b64encode(ciphertext).decode(),
                                            "associated_data": "transaction", "nonce": nonce}}).encode()
        stamp, nonce = str(at or int(time.time())), uuid.uuid4().hex
        signed = (key or self.wechatpay_key).sign(f"{stamp}\n{nonce}\n".encode() + body + b"\n", padding.PKCS1v15(),
                                                  hashes.SHA256())
        return Request(f"{self.gw}/webhooks/payments/wechatpay", body, {
            **JSON_CT, "Wechatpay-Timestamp": stamp, "Wechatpay-Nonce": nonce, "Wechatpay-Serial": f"{serial:X}",
            "Wechatpay-Signature": base64.b64encode(signed).decode()})

    def valid(self) -> dict[str, Request]:
        return {"generic": self.generic(), "telegram": self.telegram(), "wecom": self.wecom(),
                "onebot": self.onebot(), "qq": self.qq(), "stripe": self.stripe(), "wechatpay": self.wechatpay()}


def truncated(request: Request) -> Request:
    """Cut in transit: the provider signed the whole body, half of it arrives."""
    return request.but(body=request.body[: len(request.body) // 2])


def oversized(request: Request) -> Request:
    return request.but(body=request.body + b" " * (LIMIT + 1))


def bad_inputs(p: Providers, sent: dict[str, Request]) -> list[tuple[str, str, Request | str, int]]:
    """(provider, kind, request, expected status). `sent` are deliveries accepted earlier: replayed here."""
    stale, future = int(time.time()) - 3600, int(time.time()) + 3600
    other_key, _ = wechatpay_certificate(0x1234)
    g, t, w, s, x = (p.generic(), p.telegram(), p.wecom(), p.stripe(), p.wechatpay())
    o, q = p.onebot(), p.qq()
    text = {"content-type": "text/plain"}
    form = {"content-type": "application/x-www-form-urlencoded"}
    cases = [
        ("generic", "forged signature", g.but(headers={"webhook-signature": "v1," + base64.b64encode(os.urandom(32))
                                                       .decode()}), 401),
        ("generic", "wrong secret", p.generic(secret=OTHER_SECRET), 401),
        ("generic", "expired timestamp", p.generic(at=stale), 401),
        ("generic", "timestamp in the future", p.generic(at=future), 401),
        ("generic", "missing signature", g.but(headers={"webhook-signature": ""}), 401),
        ("generic", "body swapped under a valid signature", g.but(body=p.generic().body), 401),
        ("generic", "truncated JSON", truncated(g), 401),
        ("generic", "oversized body", oversized(g), 413),
        ("generic", "oversized body, chunked", "chunked:" + g.url, 413),
        ("generic", "wrong content type", g.but(headers=text), 415),
        ("generic", "form content type", g.but(headers=form), 415),
        ("generic", "unknown connector", Request(g.url.rsplit("/", 1)[0] + "/nope", g.body, g.headers), 404),
        ("telegram", "forged secret token", p.telegram(token="not-the-secret-token-000000"), 401),
        ("telegram", "missing secret token", t.but(headers={"X-Telegram-Bot-Api-Secret-Token": ""}), 401),
        ("telegram", "oversized body", oversized(t), 413),
        ("telegram", "wrong content type", t.but(headers=text), 415),
        ("wecom", "forged signature", w.but(params={"msg_signature": "0" * 40}), 401),
        ("wecom", "wrong token", p.wecom(token="guessed-token"), 401),
        ("wecom", "expired timestamp", p.wecom(at=stale), 401),
        ("wecom", "encrypted with another key", p.wecom(aes=OTHER_AES), 401),
        ("wecom", "another corp's receive id", p.wecom(corp="ww-someone-else"), 401),
        ("wecom", "truncated XML", truncated(w), 401),
        ("wecom", "oversized body", oversized(w), 413),
        ("wecom", "JSON content type", w.but(headers=JSON_CT), 415),
        ("onebot", "forged signature", o.but(headers={"X-Signature": "sha1=" + "0" * 40}), 401),
        ("onebot", "wrong secret", p.onebot(secret="guessed-onebot-secret"), 401),
        ("onebot", "missing signature", o.but(headers={"X-Signature": ""}), 401),
        ("onebot", "another bot's X-Self-ID", p.onebot(self_id="3889000002"), 401),
        ("onebot", "stale event time", p.onebot(at=stale), 401),
        ("onebot", "body swapped under a valid signature", o.but(body=p.onebot().body), 401),
        ("onebot", "truncated JSON", truncated(o), 401),
        ("onebot", "oversized body", oversized(o), 413),
        ("onebot", "wrong content type", o.but(headers=text), 415),
        ("qq", "forged signature", q.but(headers={"X-Signature-Ed25519": "00" * 64}), 401),
        ("qq", "signed with another bot's secret", p.qq(secret="another-bot-secret"), 401),
        ("qq", "missing signature", q.but(headers={"X-Signature-Ed25519": ""}), 401),
        ("qq", "expired timestamp", p.qq(at=stale), 401),
        ("qq", "timestamp swapped under a valid signature", q.but(headers={"X-Signature-Timestamp": str(future)}),
         401),
        ("qq", "truncated JSON", truncated(q), 401),
        ("qq", "oversized body", oversized(q), 413),
        ("qq", "wrong content type", q.but(headers=text), 415),
        ("stripe", "forged signature", s.but(headers={"Stripe-Signature": f"t={int(time.time())},v1={'0' * 64}"}), 401),
        ("stripe", "wrong secret", p.stripe(secret="whsec_not_ours"), 401),
        ("stripe", "expired timestamp", p.stripe(at=stale), 401),
        ("stripe", "missing signature", s.but(headers={"Stripe-Signature": ""}), 401),
        ("stripe", "truncated JSON", truncated(s), 401),
        ("stripe", "truncated JSON, signed as such", p.stripe(body=s.body[:40]), 401),
        ("stripe", "oversized body", oversized(s), 413),
        ("stripe", "wrong content type", s.but(headers=form), 415),
        ("wechatpay", "forged signature", x.but(headers={"Wechatpay-Signature": base64.b64encode(os.urandom(256))
                                                         .decode()}), 401),
        ("wechatpay", "signed by another key", p.wechatpay(key=other_key), 401),
        ("wechatpay", "unknown certificate serial", p.wechatpay(key=other_key, serial=0x1234), 401),
        ("wechatpay", "expired timestamp", p.wechatpay(at=stale), 401),
        ("wechatpay", "truncated JSON", truncated(x), 401),
        ("wechatpay", "oversized body", oversized(x), 413),
        ("wechatpay", "wrong content type", x.but(headers=text), 415),
    ]
    # Replays: deliveries accepted before, sent again verbatim (a captured request) → 200, "duplicate".
    cases += [(name, "replayed delivery", request, 200) for name, request in sent.items()]
    cases += [("generic", "replayed id with another body", p.generic(delivery_id=sent["generic"].headers["webhook-id"]),
               200)]
    return cases


async def send(client: httpx.AsyncClient, request: Request) -> httpx.Response:
    return await client.post(request.url, content=request.body, headers=request.headers, params=request.params)


async def send_chunked_oversized(client: httpx.AsyncClient, url: str, headers: dict[str, str]) -> httpx.Response:
    """No Content-Length: the limit must hold while the body streams in."""
    async def chunks():
        for _ in range(LIMIT // 65536 + 2):
            yield b" " * 65536

    return await client.post(url, content=chunks(), headers=headers)


@pytest.fixture(scope="module")
def providers(secure_stack: SecurityStack) -> Providers:
    """A paid community with a connector per chat platform, owned by someone the gateway knows."""
    import asyncio

    async def setup() -> Providers:
        gw = secure_stack.gateway
        owner = f"telegram:{uuid.uuid4().int % 10**9}"
        headers = bearer(owner_token(secure_stack.data_dir, owner))
        groups = {"generic": f"wh-{uuid.uuid4().hex[:8]}", "telegram": f"-100{uuid.uuid4().int % 10**9}",
                  "wecom": f"wr{uuid.uuid4().hex[:10]}", "onebot": str(700000000 + uuid.uuid4().int % 10**8),
                  "qq": uuid.uuid4().hex.upper()}
        async with httpx.AsyncClient(timeout=15) as client:
            created = await client.post(f"{gw}/api/v1/communities", headers={"X-API-Key": GATEWAY_OPERATOR_KEY},
                                        json={"name": "验签", "positioning": "伪造的回调一律拒绝", "owner_id": owner})
            assert created.status_code == 201, created.text
            cid = created.json()["id"]
            secrets = {"generic": {"signing_secrets": [GENERIC_SECRET]},
                       "telegram": {"bot_token": "123456:telegram-bot-token", "secret_token": TG_SECRET},
                       "wecom": {"token": WECOM_TOKEN, "encoding_aes_key": WECOM_AES, "corp_id": WECOM_CORP},
                       "onebot": {"secret": ONEBOT_SECRET, "self_id": ONEBOT_SELF_ID},
                       "qq": {"app_id": QQ_APP_ID, "app_secret": QQ_SECRET}}
            connectors = {}
            for platform, secret in secrets.items():
                async def register(platform: str = platform, secret: dict = secret) -> httpx.Response:
                    return await client.post(f"{gw}/api/v1/communities/{cid}/connectors", headers=headers, json={
                        "platform": platform, "groups": [groups[platform]], "secrets": secret})

                answer = await eventually(register, until=lambda r: r.status_code == 201, what="connector")
                connectors[platform] = answer.json()["id"]
            plan = await create_plan(client, gw, cid, headers=headers, price_fen=9900)
        return Providers(gw, cid, plan["id"], connectors, groups, secure_stack.wechatpay_key)

    return asyncio.run(setup())


def acknowledged(provider: str, answer: httpx.Response, expected: str) -> str:
    """Our JSON acknowledgement's status; WeCom is answered with an empty body and the QQ official bot with
    op 12 as they document, which say no more than their 200 (the row counts show what was recorded)."""
    if provider == "wecom":
        assert answer.content == b"", answer.text
        return expected
    if provider == "qq":
        assert answer.json() == {"op": 12, "d": 0}, answer.text
        return expected
    return answer.json()["status"]


async def test_forged_and_malformed_webhooks_are_refused_without_any_side_effect(secure_stack, providers):
    p = providers
    async with httpx.AsyncClient(timeout=30) as client:
        # Calibration: what one valid delivery per provider changes, measured on its own.
        before = await settled(secure_stack)
        calibration = p.valid()
        for name, request in calibration.items():
            answer = await send(client, request)
            assert answer.status_code == 200, (name, answer.text)
            assert acknowledged(name, answer, "accepted") == "accepted", (name, answer.text)
        expected = delta(await settled(secure_stack), before)
        # The markers flowed: 2 payments, 5 chat events.
        assert (expected.get("topic payments.events.v1"), expected.get("topic chat.events.v1")) == (2, 5), expected

        start = await snapshot(secure_stack)
        refused: Counter[str] = Counter()
        for provider, kind, request, status in bad_inputs(p, calibration):
            if isinstance(request, str):
                answer = await send_chunked_oversized(client, request.removeprefix("chunked:"), JSON_CT)
            else:
                answer = await send(client, request)
            if status == 200:
                assert answer.status_code == 200, (provider, kind, answer.text)
                assert acknowledged(provider, answer, "duplicate") == "duplicate", (provider, kind, answer.text)
            else:
                assert_problem(answer, status)
            refused[provider] += 1
            summary.bad_inputs(f"webhook {kind}")
        assert (await snapshot(secure_stack))["gateway.webhook_delivery"] == start["gateway.webhook_delivery"]
        # Valid deliveries after the bad ones: same partitions, so once their effects are in, any effect of
        # the bad ones would be too.
        for name, request in p.valid().items():
            assert acknowledged(name, await send(client, request), "accepted") == "accepted", name

    try:
        after = await settled(secure_stack, timeout=60, until=lambda s: delta(s, start) == expected)
    except AssertionError:  # never settled on the expected effect: show what moved
        after = await snapshot(secure_stack)
    assert delta(after, start) == expected, {"expected": expected, "got": delta(after, start)}
    assert set(refused) == {"generic", "telegram", "wecom", "onebot", "qq", "stripe", "wechatpay"}


async def test_a_signed_but_truncated_chat_payload_is_quarantined_not_published(secure_stack, providers):
    """Authentic but unreadable (the platform's own bug): acknowledged so it is not retried forever, kept in
    quarantine for ops, and nothing reaches any topic or service."""
    p = providers
    whole = p.generic()
    cut = p.generic(body=whole.body[:25])
    async with httpx.AsyncClient(timeout=30) as client:
        start = await settled(secure_stack)
        answer = await send(client, cut)
        listed = await client.get(f"{p.gw}/api/v1/ops/quarantine", headers={"X-API-Key": GATEWAY_OPERATOR_KEY},
                                  params={"source": f"chat:{p.connectors['generic']}"})
    assert answer.status_code == 200 and answer.json()["status"] == "quarantined"
    assert cut.headers["webhook-id"] in [q["delivery_id"] for q in listed.json()["data"]]
    after = await settled(secure_stack)
    assert delta(after, start) == {"gateway.quarantined_webhook": 1, "gateway.webhook_delivery": 1}
    summary.bad_inputs("webhook signed truncated JSON (quarantined)")
