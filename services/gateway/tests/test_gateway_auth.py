"""Part 1: member tokens (JWT), one-time codes sent by the bot, Telegram Login Widget, API keys,
authorization from the role projection, rate limits, CORS, X-Actor-Id."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from datetime import UTC, datetime

import jwt
import pytest

from qunzhu_common.events.contracts.membership import CommunityCreated, MemberChanged

COMMUNITY = "c-auth"
OWNER = "telegram:1"
LOGIN_BOT = "424242:login-widget-bot-token"


@pytest.fixture
async def gw(tmp_path, standalone_gateway, fake_platform):
    async with standalone_gateway(tmp_path, telegram_api_base=fake_platform.url,
                                  telegram_login_bot_token=LOGIN_BOT) as gateway:
        yield gateway


async def member(gw, publish, eventually, member_id: str, role: str = "member", status: str = "active",
                 changed_at: datetime | None = None) -> None:
    from gateway.models import MemberRole

    await publish(gw.app, "member.role_changed", MemberChanged(
        community_id=COMMUNITY, member_id=member_id, role=role, status=status,
        changed_at=changed_at or datetime.now(UTC)), COMMUNITY)

    async def projected():
        async with gw.app.state.runtime.session_maker() as session:
            row = await session.get(MemberRole, (COMMUNITY, member_id))
            return row is not None and (row.role, row.status) == (role, status)

    await eventually(projected, what=f"{member_id} projected")


async def owned_community(gw, publish, eventually, community_id: str = COMMUNITY, owner: str = OWNER) -> None:
    await publish(gw.app, "community.created", CommunityCreated(
        community_id=community_id, name="晨读营", positioning="每天读十页", owner_id=owner,
        created_at=datetime.now(UTC)), community_id)
    from gateway.models import MemberRole

    async def projected():
        async with gw.app.state.runtime.session_maker() as session:
            return await session.get(MemberRole, (community_id, owner)) is not None

    await eventually(projected, what=f"the owner of {community_id} projected")


def connectors_url() -> str:
    return f"/api/v1/communities/{COMMUNITY}/connectors"


TELEGRAM_CONNECTOR = {"community_id": COMMUNITY, "platform": "telegram", "groups": ["-100"],
                      "secrets": {"bot_token": "555:connector-bot", "secret_token": "s" * 20}}


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
async def test_tokens_are_checked_strictly(gw, member_headers, publish, eventually):
    await owned_community(gw, publish, eventually)
    settings, key = gw.app.state.gateway.settings, gw.app.state.gateway.jwt_key
    good = member_headers(gw.app, OWNER)
    now = int(time.time())
    claims = {"iss": settings.jwt_issuer, "aud": settings.jwt_audience, "sub": OWNER, "iat": now, "exp": now + 60}

    def bearer(token: str) -> dict:
        return {"Authorization": f"Bearer {token}"}

    forged = [
        jwt.encode({**claims, "exp": now - 60}, key, algorithm="HS256"),  # expired
        jwt.encode({**claims, "aud": "someone-else"}, key, algorithm="HS256"),
        jwt.encode({**claims, "iss": "evil"}, key, algorithm="HS256"),
        jwt.encode({k: v for k, v in claims.items() if k != "exp"}, key, algorithm="HS256"),  # no exp
        jwt.encode(claims, key, algorithm="HS512"),  # algorithm not the pinned one
        jwt.encode(claims, b"another key", algorithm="HS256"),
        jwt.encode(claims, None, algorithm="none"),
    ]
    assert (await gw.client.get(connectors_url(), headers=good)).status_code == 200
    for token in forged:
        response = await gw.client.get(connectors_url(), headers=bearer(token))
        assert response.status_code == 401, token
        assert response.headers["content-type"] == "application/problem+json"
    assert (await gw.client.get(connectors_url(), headers={"Authorization": "Basic abc"})).status_code == 401


async def test_roles_from_the_projection_authorize_each_route(gw, member_headers, publish, eventually):
    await owned_community(gw, publish, eventually)
    await member(gw, publish, eventually, "telegram:2", role="admin")
    await member(gw, publish, eventually, "telegram:3", role="member")
    await member(gw, publish, eventually, "telegram:4", role="admin", status="removed")

    owner = await gw.client.post(connectors_url(), json=TELEGRAM_CONNECTOR, headers=member_headers(gw.app, OWNER))
    admin_lists = await gw.client.get(connectors_url(), headers=member_headers(gw.app, "telegram:2"))
    admin_registers = await gw.client.post(connectors_url(), json=TELEGRAM_CONNECTOR,
                                           headers=member_headers(gw.app, "telegram:2"))
    plain_member = await gw.client.get(connectors_url(), headers=member_headers(gw.app, "telegram:3"))
    removed = await gw.client.get(connectors_url(), headers=member_headers(gw.app, "telegram:4"))
    stranger = await gw.client.get(connectors_url(), headers=member_headers(gw.app, "telegram:99"))

    assert owner.status_code == 201
    assert admin_lists.status_code == 200 and admin_lists.json()["count"] == 1
    assert [r.status_code for r in (admin_registers, plain_member, removed, stranger)] == [403] * 4
    # A role change in membership reaches the gateway: the admin loses the right.
    await member(gw, publish, eventually, "telegram:2", role="member")
    assert (await gw.client.get(connectors_url(), headers=member_headers(gw.app, "telegram:2"))).status_code == 403
    # An older event arriving late changes nothing: the newest changed_at wins.
    await publish(gw.app, "member.role_changed", MemberChanged(
        community_id=COMMUNITY, member_id="telegram:2", role="admin", status="active",
        changed_at=datetime(2020, 1, 1, tzinfo=UTC)), COMMUNITY)
    await member(gw, publish, eventually, "telegram:3", role="guest")  # processed after the late one
    assert (await gw.client.get(connectors_url(), headers=member_headers(gw.app, "telegram:2"))).status_code == 403


async def test_login_with_a_code_the_bot_sends(gw, fake_platform, publish, eventually):
    await owned_community(gw, publish, eventually)
    await member(gw, publish, eventually, "telegram:77")
    await gw.client.post(connectors_url(), json=TELEGRAM_CONNECTOR, headers={"X-API-Key": "ops-admin-key-for-tests"})

    asked = await gw.client.post("/api/v1/auth/codes", json={"community_id": COMMUNITY, "member_id": "telegram:77"})
    assert asked.status_code == 202

    sent = await eventually(lambda: fake_platform.calls("/sendMessage"), what="the bot sends the code")
    assert len(sent) == 1
    message = json.loads(sent[0]["body"])
    assert sent[0]["path"] == "/bot555:connector-bot/sendMessage"
    assert message["chat_id"] == "77"  # the member's private chat
    code = re.search(r"\d{6}", message["text"]).group()

    wrong = await gw.client.post("/api/v1/auth/token", json={"member_id": "telegram:77", "code": "000000"
                                                             if code != "000000" else "111111"})
    right = await gw.client.post("/api/v1/auth/token", json={"member_id": "telegram:77", "code": code})
    again = await gw.client.post("/api/v1/auth/token", json={"member_id": "telegram:77", "code": code})

    assert wrong.status_code == 401
    assert right.status_code == 200
    assert again.status_code == 401  # one time only
    # Once sent, the code is not kept readable in the action log ops can list.
    async def settled():
        listed = await gw.client.get("/api/v1/ops/bot-actions", params={"status": "completed"},
                                     headers={"X-API-Key": "ops-admin-key-for-tests"})
        return listed if listed.json()["count"] == 1 else None

    actions = await eventually(settled, what="the code's action settled")
    assert code not in actions.text
    # Asking again and again sends at most three live codes.
    for _ in range(5):
        await gw.client.post("/api/v1/auth/codes", json={"community_id": COMMUNITY, "member_id": "telegram:77"})
    await eventually(lambda: len(fake_platform.calls("/sendMessage")) == 4, what="three more codes")
    async with gw.app.state.runtime.session_maker() as session:
        from sqlalchemy import func, select

        from gateway.models import LoginCode

        assert await session.scalar(select(func.count()).select_from(LoginCode)) == 4
    token = right.json()["access_token"]
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["sub"] == "telegram:77"
    assert right.headers["cache-control"] == "no-store"


async def test_a_code_that_cannot_be_sent_is_logged_and_counted_but_still_answered_202(
        gw, publish, eventually, metric_value, caplog):
    from datetime import timedelta

    from gateway.auth import service
    from gateway.models import LoginCode

    await owned_community(gw, publish, eventually)
    await member(gw, publish, eventually, "telegram:66", status="blacklisted")

    def counted(outcome: str) -> float:
        return metric_value(gw.app, "qunzhu_gateway_login_codes_total", outcome=outcome)

    async def ask(member_id: str) -> int:
        response = await gw.client.post("/api/v1/auth/codes", json={"community_id": COMMUNITY, "member_id": member_id})
        assert response.content == b""
        return response.status_code

    assert counted("no_connector") == 0  # the label set exists from the start
    with caplog.at_level("WARNING", logger="gateway.auth.api"):
        assert await ask("telegram:77") == 202  # no connector yet
        await gw.client.post(connectors_url(), json=TELEGRAM_CONNECTOR,
                             headers={"X-API-Key": "ops-admin-key-for-tests"})
        assert await ask("wechat:77") == 202  # no connector for this platform
        assert await ask("telegram:66") == 202  # blacklisted
        state = gw.app.state.gateway
        async with gw.app.state.runtime.session_maker() as session, session.begin():
            for n in range(service.MAX_LIVE_CODES):
                session.add(LoginCode(member_id="telegram:78", community_id=COMMUNITY,
                                      code_hash=service._code_hash(state.jwt_key, "telegram:78", f"12345{n}"),
                                      expires_at=datetime.now(UTC) + timedelta(minutes=5)))
        assert await ask("telegram:78") == 202  # too many live codes
        assert await ask("telegram:79") == 202  # sent

    assert (counted("no_connector"), counted("blacklisted"), counted("too_many_live_codes"), counted("sent")) == (
        2, 1, 1, 1)
    warnings = [r.getMessage() for r in caplog.records if r.name == "gateway.auth.api" and r.levelname == "WARNING"]
    assert len(warnings) == 4
    assert "telegram:77" in warnings[0] and "no_connector" in warnings[0] and COMMUNITY in warnings[0]
    assert "wechat:77" in warnings[1] and "no_connector" in warnings[1]
    assert "telegram:66" in warnings[2] and "blacklisted" in warnings[2]
    assert "telegram:78" in warnings[3] and "too_many_live_codes" in warnings[3]


async def test_code_guessing_is_bounded(gw, publish, eventually):
    from gateway.auth import service
    from gateway.models import LoginCode

    state = gw.app.state.gateway
    async with gw.app.state.runtime.session_maker() as session, session.begin():
        code_hash = service._code_hash(state.jwt_key, "telegram:5", "123456")
        session.add(LoginCode(member_id="telegram:5", code_hash=code_hash, expires_at=datetime(2099, 1, 1, tzinfo=UTC)))
    for guess in range(5):
        response = await gw.client.post("/api/v1/auth/token", json={"member_id": "telegram:5", "code": f"99999{guess}"})
        assert response.status_code == 401
    late = await gw.client.post("/api/v1/auth/token", json={"member_id": "telegram:5", "code": "123456"})
    assert late.status_code == 401  # the attempts were committed although each answer was an error


def widget(user_id: int, *, auth_date: int | None = None, token: str = LOGIN_BOT) -> dict:
    data = {"id": str(user_id), "first_name": "Li", "username": "lilei",
            "auth_date": str(auth_date or int(time.time()))}
    check = "\n".join(f"{k}={data[k]}" for k in sorted(data))
    data["hash"] = hmac.new(hashlib.sha256(token.encode()).digest(), check.encode(), hashlib.sha256).hexdigest()
    return data


async def test_telegram_login_widget(gw):
    ok = await gw.client.post("/api/v1/auth/telegram", json=widget(123))
    tampered = await gw.client.post("/api/v1/auth/telegram", json={**widget(123), "id": "124"})
    other_bot = await gw.client.post("/api/v1/auth/telegram", json=widget(123, token="1:other"))
    stale = await gw.client.post("/api/v1/auth/telegram", json=widget(123, auth_date=int(time.time()) - 90000))

    assert ok.status_code == 200 and ok.json()["subject"] == "telegram:123"
    assert [r.status_code for r in (tampered, other_bot, stale)] == [401, 401, 401]


async def test_api_keys_for_bots_and_operators(gw, member_headers, publish, eventually):
    await owned_community(gw, publish, eventually)
    owner = member_headers(gw.app, OWNER)
    created = await gw.client.post(f"/api/v1/communities/{COMMUNITY}/api-keys", headers=owner,
                                   json={"name": "ops bot", "kind": "bot", "role": "admin"})
    assert created.status_code == 201
    key = created.json()["key"]
    listed = await gw.client.get(f"/api/v1/communities/{COMMUNITY}/api-keys", headers=owner)
    assert key not in listed.text and key.split("_")[-1] not in listed.text

    as_bot = await gw.client.get(connectors_url(), headers={"X-API-Key": key})
    elsewhere = await gw.client.get("/api/v1/communities/other/connectors", headers={"X-API-Key": key})
    bot_registers = await gw.client.post(connectors_url(), json=TELEGRAM_CONNECTOR, headers={"X-API-Key": key})
    bot_creates = await gw.client.post("/api/v1/communities", json={"name": "x", "positioning": "y"},
                                       headers={"X-API-Key": key})
    assert (as_bot.status_code, elsewhere.status_code, bot_registers.status_code) == (200, 403, 403)
    assert bot_creates.status_code == 403

    revoked = await gw.client.delete(f"/api/v1/communities/{COMMUNITY}/api-keys/{created.json()['id']}", headers=owner)
    assert revoked.status_code == 204
    assert (await gw.client.get(connectors_url(), headers={"X-API-Key": key})).status_code == 401
    assert (await gw.client.get(connectors_url(), headers={"X-API-Key": key[:-1] + "x"})).status_code == 401


async def test_actor_header_is_set_by_the_gateway_never_by_the_client(gw, member_headers):
    membership = gw.upstreams["membership"]
    response = await gw.client.post(
        "/api/v1/communities", json={"name": "读书会", "positioning": "每周一本"},
        headers={**member_headers(gw.app, "telegram:9"), "X-Actor-Id": "telegram:1"},
    )
    someone_else = await gw.client.post(
        "/api/v1/communities", json={"name": "读书会", "positioning": "每周一本", "owner_id": "telegram:1"},
        headers=member_headers(gw.app, "telegram:9"),
    )
    anonymous = await gw.client.post("/api/v1/communities", json={"name": "读书会", "positioning": "每周一本"},
                                     headers={"X-Actor-Id": "telegram:1"})
    read = await gw.client.get("/api/v1/communities", headers={"X-Actor-Id": "telegram:1"})

    assert response.status_code == 200  # the stand-in membership answers 200 to everything
    assert (someone_else.status_code, anonymous.status_code) == (403, 401)
    assert read.status_code == 200
    create, listing = membership.calls
    assert create.headers["x-actor-id"] == "telegram:9"
    assert json.loads(create.content)["owner_id"] == "telegram:9"
    assert "x-actor-id" not in listing.headers


async def test_rate_limit_and_cors(tmp_path, standalone_gateway):
    async with standalone_gateway(tmp_path, rate_limit_burst=3, rate_limit_per_s=0.5,
                                  cors_origins=["https://app.qunzhu.example"]) as gw:
        answers = [await gw.client.get("/api/v1/communities") for _ in range(4)]
        preflight = await gw.client.options("/api/v1/communities", headers={
            "Origin": "https://app.qunzhu.example", "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization"})
        foreign = await gw.client.get("/healthz", headers={"Origin": "https://evil.example"})

    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert answers[3].headers["content-type"] == "application/problem+json"
    assert int(answers[3].headers["retry-after"]) >= 1
    assert preflight.headers["access-control-allow-origin"] == "https://app.qunzhu.example"
    assert "access-control-allow-origin" not in foreign.headers
