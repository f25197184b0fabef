"""Logins: one-time codes sent by the bot, Telegram Login Widget data; API keys for bots and operators."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.crypto import sha256_hex
from gateway.models import ApiKey, BotAction, Connector, LoginCode, MemberRole
from gateway.state import GatewayState
from qunzhu_common.errors import InvalidInput
from qunzhu_common.timeutil import utcnow

MAX_LIVE_CODES = 3
# Connectors that can reach a person's private chat: Telegram bots, bridges, WeCom self-built apps and OneBot
# (send_private_msg). Not the QQ official bot: it may only answer a message the person sent it.
CODE_PLATFORMS = ("telegram", "generic", "wecom", "onebot")
TO_PERSON = frozenset({"wecom", "onebot"})  # platforms whose executor tells a person from a group by the flag
LOGIN_CODE_ACTION_PREFIX = "login-code:"


def _code_hash(key: bytes, member_id: str, code: str) -> str:
    return hmac.new(key, f"{member_id}:{code}".encode(), hashlib.sha256).hexdigest()


async def send_login_code(session: AsyncSession, *, state: GatewayState, community_id: str, member_id: str) -> str:
    """Queue a one-time code to the person's private chat through this community's connector.

    The person need not be a member yet (people who arrive from a chat group log in to join): the token
    the code gives is scoped to this community, since whoever runs its connector could read the code.
    Expired and removed people may log in to renew or rejoin (membership decides whether they may);
    blacklisted people, and people on a platform the community has no connector for, get nothing. The
    caller learns nothing either way (no member enumeration); the outcome (one of
    gateway.metrics.LOGIN_CODE_OUTCOMES) is for the gateway's own logs and metrics.
    """
    member = await session.get(MemberRole, (community_id, member_id))
    if member is not None and member.role != "owner" and member.status == "blacklisted":
        return "blacklisted"
    platform, _, user = member_id.partition(":")
    connector = (await session.execute(
        select(Connector).where(Connector.community_id == community_id, Connector.identity_platform == platform,
                                Connector.platform.in_(CODE_PLATFORMS)).limit(1)
    )).scalars().first()
    if connector is None:
        return "no_connector"
    now = utcnow()
    live = await session.scalar(select(func.count()).select_from(LoginCode).where(
        LoginCode.member_id == member_id, LoginCode.used_at.is_(None), LoginCode.expires_at > now))
    if (live or 0) >= MAX_LIVE_CODES:
        return "too_many_live_codes"  # nobody gets a member's chat flooded with codes
    code = f"{secrets.randbelow(10**6):06d}"
    session.add(LoginCode(member_id=member_id, community_id=community_id,
                          code_hash=_code_hash(state.jwt_key, member_id, code),
                          expires_at=now + timedelta(seconds=state.settings.login_code_ttl_s)))
    minutes = max(1, state.settings.login_code_ttl_s // 60)
    text = f"Qunzhu 登录验证码：{code}（{minutes} 分钟内有效，请勿告诉他人）"
    action_id = f"{LOGIN_CODE_ACTION_PREFIX}{secrets.token_hex(8)}"
    session.add(BotAction(
        action_id=action_id, community_id=community_id, group_id=f"{platform}:{user}", connector_id=connector.id,
        action="send_message", request=dict(action_id=action_id, action="send_message", group_id=f"{platform}:{user}",
                                            text=text, requested_by="gateway",
                                            # WeCom reaches a person through the self-built app, OneBot with
                                            # send_private_msg: neither through what serves a group
                                            **({"to_person": True} if connector.platform in TO_PERSON else {})),
    ))
    await session.flush()
    return "sent"


@dataclass(frozen=True)
class RedeemedCode:
    member_id: str
    community_id: str | None  # the community whose connector delivered it (None: codes from before scoping)


async def redeem_login_code(
    session: AsyncSession, *, state: GatewayState, member_id: str, code: str
) -> RedeemedCode | None:
    """The redeemed code, once, for the right code; every try counts against the code's attempts (kept on
    failure)."""
    now = utcnow()
    row = (await session.execute(
        select(LoginCode).where(LoginCode.member_id == member_id, LoginCode.used_at.is_(None))
        .order_by(LoginCode.expires_at.desc()).limit(1)
    )).scalars().first()
    if row is None or row.expires_at < now or row.attempts >= state.settings.login_code_max_attempts:
        return None
    row.attempts += 1
    ok = hmac.compare_digest(row.code_hash, _code_hash(state.jwt_key, member_id, code.strip()))
    if ok:
        row.used_at = now
    session.add(row)
    await session.flush()
    if not ok:
        return None
    # A code from before codes were scoped was only sent to members: scope it to nothing wider than a
    # community is impossible to recover, so it gives no token at all.
    if row.community_id is None:
        return None
    return RedeemedCode(member_id=member_id, community_id=row.community_id)


def check_telegram_login(data: dict[str, str], *, bot_token: str, max_age_s: int, now: float | None = None) -> str:
    """The person id of valid Login Widget data (https://core.telegram.org/widgets/login#checking-authorization)."""
    if not bot_token:
        raise InvalidInput("Telegram login is not configured")
    presented = data.get("hash", "")
    check_string = "\n".join(f"{k}={data[k]}" for k in sorted(data) if k != "hash")
    expected = hmac.new(hashlib.sha256(bot_token.encode()).digest(), check_string.encode(), hashlib.sha256).hexdigest()
    if not presented or not hmac.compare_digest(expected, presented.lower()):
        raise ValueError("hash")
    auth_date = int(data.get("auth_date", "0") or 0)
    if (now if now is not None else time.time()) - auth_date > max_age_s:
        raise ValueError("expired")
    return f"telegram:{data['id']}"


async def create_api_key(
    session: AsyncSession, *, community_id: str, name: str, kind: str, role: str, created_by: str
) -> tuple[ApiKey, str]:
    key_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
    row = ApiKey(id=key_id, secret_hash=sha256_hex(secret), name=name, kind=kind, community_id=community_id,
                 role=role, created_by=created_by)
    session.add(row)
    await session.flush()
    return row, f"qz_{key_id}_{secret}"


async def list_api_keys(session: AsyncSession, *, community_id: str) -> list[ApiKey]:
    rows = await session.execute(select(ApiKey).where(ApiKey.community_id == community_id).order_by(ApiKey.created_at))
    return list(rows.scalars().all())


async def revoke_api_key(session: AsyncSession, *, community_id: str, key_id: str) -> bool:
    row = await session.get(ApiKey, key_id)
    if row is None or row.community_id != community_id:
        return False
    row.revoked_at = row.revoked_at or utcnow()
    session.add(row)
    await session.flush()
    return True
