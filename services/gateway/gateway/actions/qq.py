"""Bot actions in QQ groups: through a OneBot 11 implementation's HTTP API, or QQ's official bot OpenAPI.

OneBot 11 (api/public.md): `POST {api_base}/{action}` with JSON params and `Authorization: Bearer
<access_token>`, answered {status, retcode, data}; retcode 0 is success, 1 is "queued" (async), anything
else a failure with its message. Messages go out as segment arrays; a person is mentioned with an `at`
segment, everyone with `at all`.

QQ official bot: `POST {qq_api_base}/v2/groups/{group_openid}/messages` with `Authorization: QQBot
<token>`; the app access token comes from `POST {qq_token_base}/app/getAppAccessToken` and is cached until
shortly before it expires. A group message is a passive reply to the member's message that triggered it
(msg_id) with a msg_seq derived from the action id, so a retried action is one message to QQ; an action
that names no message answers the group's latest one of the last 5 minutes (with_reply_target).
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.actions.platforms import DONE, Result, _chat, _classify_http
from gateway.chatdir.models import ChatMessageSeen
from gateway.settings import GatewaySettings
from gateway.webhooks.adapters import ConnectorView
from qunzhu_common.timeutil import utcnow

_PERSON = re.compile(r"\{(?:person|mention):([a-z]+):([^}\s]+)\}")
_QQ_NUMBER = re.compile(r"^[0-9]{5,12}$")
# OneBot retcodes worth another attempt: 1 is "accepted, runs asynchronously" (done as far as we know).
_ONEBOT_RETRY = {100: False, 102: False, 103: False, 104: True, 201: True}


def _at_or_text(platform: str, user: str, fallback: str) -> dict[str, Any]:
    if platform == "qq" and _QQ_NUMBER.match(user):
        return {"type": "at", "data": {"qq": user}}
    return {"type": "text", "data": {"text": fallback}}


def segments(text: str, *, mention_all: bool = False, rendered: list[Any] | None = None) -> list[dict[str, Any]]:
    """A bot message as OneBot segments. A request rendered by the names directory (gateway.chatdir) brings
    its own pieces, a mention becoming an `at` segment (QQ shows the card and notifies); otherwise any
    `{person:qq:<number>}` / `{mention:qq:<number>}` placeholder left in the text becomes one."""
    out: list[dict[str, Any]] = []
    if mention_all:
        out += [{"type": "at", "data": {"qq": "all"}}, {"type": "text", "data": {"text": " "}}]
    if rendered:
        for piece in rendered:
            if not isinstance(piece, dict):
                continue
            if piece.get("type") == "mention":
                platform = str(piece.get("person_id", "")).partition(":")[0]
                out.append(_at_or_text(platform, str(piece.get("user_id", "")), str(piece.get("text", ""))))
            elif piece.get("text"):
                out.append({"type": "text", "data": {"text": str(piece["text"])}})
        return out
    position = 0
    for match in _PERSON.finditer(text):
        if match.start() > position:
            out.append({"type": "text", "data": {"text": text[position:match.start()]}})
        out.append(_at_or_text(*match.groups(), match.group(0)))
        position = match.end()
    if position < len(text):
        out.append({"type": "text", "data": {"text": text[position:]}})
    return out


def _number(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None


def onebot_call(request: dict[str, Any]) -> tuple[str, dict[str, Any]] | str:
    """The OneBot action and params for a bot action, or why there is none."""
    if request.get("to_person"):  # a login code to one person (the bot's friend, or a temporary session)
        user = _number(_chat(request["group_id"]))
        if user is None or request["action"] != "send_message":
            return f"{request['action']} to {request['group_id']}: not a message to a QQ number"
        return "send_private_msg", {"user_id": user, "message": segments(request.get("text", ""))}
    group = _number(_chat(request["group_id"]))
    member = _number(_chat(request["member_id"])) if request.get("member_id") else None
    if group is None:
        return f"{request['group_id']} is not a QQ group number"
    action = request["action"]
    if action in ("send_message", "announce", "relay"):
        everyone = bool(request.get("mention_all")) or action == "announce"
        message = segments(request.get("text", ""), mention_all=everyone, rendered=request.get("segments"))
        if request.get("reply_to_message_id"):
            message.insert(0, {"type": "reply", "data": {"id": str(request["reply_to_message_id"])}})
        return "send_group_msg", {"group_id": group, "message": message}
    if action == "delete_message":
        if not request.get("message_id"):
            return "delete_message without message_id"
        message_id = request["message_id"]
        return "delete_msg", {"message_id": int(message_id) if str(message_id).lstrip("-").isdigit() else message_id}
    if member is None:
        return f"{action} needs a QQ member_id"
    if action == "remove_member":
        return "set_group_kick", {"group_id": group, "user_id": member, "reject_add_request": False}
    if action == "set_card":
        return "set_group_card", {"group_id": group, "user_id": member, "card": request.get("display_name") or ""}
    if action == "mute_member":
        return "set_group_ban", {"group_id": group, "user_id": member, "duration": int(request.get("duration_s") or 0)}
    if action == "decide_join":
        if not request.get("join_flag") or request.get("approve") is None:
            return "decide_join without join_flag or approve"
        params = {"flag": request["join_flag"], "sub_type": "add", "approve": bool(request["approve"])}
        if not request["approve"]:
            params["reason"] = request.get("reason", "")
        return "set_group_add_request", params
    return f"OneBot has no way to {action}"


async def onebot(client: httpx.AsyncClient, settings: GatewaySettings, connector: ConnectorView,
                 request: dict[str, Any]) -> Result:
    base = connector.secrets.get("api_base")
    if not base:
        return Result("failed", "the OneBot connector has no api_base")
    call = onebot_call(request)
    if isinstance(call, str):
        return Result("failed", call)
    action, params = call
    headers = {}
    if connector.secrets.get("access_token"):
        headers["authorization"] = f"Bearer {connector.secrets['access_token']}"
    response = await client.post(f"{str(base).rstrip('/')}/{action}", json=params, headers=headers)
    if (transport := _classify_http(response, f"onebot {action}")) is not None:
        return transport
    if response.status_code in (401, 403):
        return Result("failed", f"onebot {action}: HTTP {response.status_code} (access token refused)")
    try:
        answer = response.json()
    except ValueError:
        return Result("retry", f"onebot {action}: HTTP {response.status_code}, not JSON")
    code = answer.get("retcode") if isinstance(answer, dict) else None
    if code in (0, 1) and response.is_success:
        return DONE
    said = answer if isinstance(answer, dict) else {}
    message = said.get("wording") or said.get("message") or said.get("msg") or ""
    outcome = "retry" if _ONEBOT_RETRY.get(code) else "failed"  # type: ignore[arg-type]
    return Result(outcome, f"onebot {action}: retcode {code} {message}".strip()[:2000])


# -- QQ official bot -------------------------------------------------------------------------------


class QqTokens:
    """App access tokens per (token endpoint, AppID), fetched once and reused until REFRESH_BEFORE_S before
    they expire; a token refused (401) is forgotten."""

    REFRESH_BEFORE_S = 60.0

    def __init__(self) -> None:
        self._tokens: dict[tuple[str, str], tuple[str, float]] = {}
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}

    def forget(self, settings: GatewaySettings, app_id: str) -> None:
        self._tokens.pop((settings.qq_token_base, app_id), None)

    async def get(self, client: httpx.AsyncClient, settings: GatewaySettings, app_id: str, secret: str) -> str | Result:
        key = (settings.qq_token_base, app_id)
        async with self._locks.setdefault(key, asyncio.Lock()):
            cached = self._tokens.get(key)
            if cached is not None and cached[1] - self.REFRESH_BEFORE_S > time.monotonic():
                return cached[0]
            response = await client.post(f"{settings.qq_token_base.rstrip('/')}/app/getAppAccessToken",
                                         json={"appId": app_id, "clientSecret": secret})
            if (transport := _classify_http(response, "qq token")) is not None:
                return transport
            try:
                answer = response.json()
                token, expires_in = str(answer["access_token"]), float(answer.get("expires_in", 0))
            except (ValueError, KeyError, TypeError):
                return Result("failed", f"qq token: HTTP {response.status_code}, no access_token")
            self._tokens[key] = (token, time.monotonic() + expires_in)
            return token


TOKENS = QqTokens()


PASSIVE_REPLY_WINDOW_S = 290  # QQ takes a passive reply within 5 minutes of the member's message


async def with_reply_target(session: AsyncSession, request: dict[str, Any]) -> dict[str, Any]:
    """A message for a QQ official bot's group that names no message to answer answers the group's latest
    one still within the passive-reply window (from the message-level dedupe keys), if there is one."""
    if request.get("reply_to_message_id") or request.get("relay_of_message_id"):
        return request
    since = utcnow() - timedelta(seconds=PASSIVE_REPLY_WINDOW_S)
    latest = await session.scalar(
        select(ChatMessageSeen.message_id)
        .where(ChatMessageSeen.group_id == request["group_id"], ChatMessageSeen.received_at >= since)
        .order_by(ChatMessageSeen.received_at.desc()).limit(1))
    return {**request, "reply_to_message_id": latest} if latest else request


def msg_seq(action_id: str) -> int:
    """A stable msg_seq per action: a retry is the same reply, QQ drops a second copy."""
    return int.from_bytes(hashlib.sha256(action_id.encode()).digest()[:4], "big") % 1_000_000 + 1


async def qqbot(client: httpx.AsyncClient, settings: GatewaySettings, connector: ConnectorView,
                request: dict[str, Any]) -> Result:
    if request["action"] not in ("send_message", "announce", "relay"):
        return Result("failed", f"a QQ official bot cannot {request['action']}")
    app_id, secret = str(connector.secrets.get("app_id", "")), str(connector.secrets.get("app_secret", ""))
    token = await TOKENS.get(client, settings, app_id, secret)
    if isinstance(token, Result):
        return token
    body: dict[str, Any] = {"content": _PERSON.sub(lambda m: m.group(2), request.get("text", "")), "msg_type": 0}
    reply_to = request.get("reply_to_message_id") or request.get("relay_of_message_id")
    if reply_to:
        body |= {"msg_id": reply_to, "msg_seq": msg_seq(request["action_id"])}
    response = await client.post(
        f"{settings.qq_api_base.rstrip('/')}/v2/groups/{_chat(request['group_id'])}/messages", json=body,
        headers={"authorization": f"QQBot {token}", "x-union-appid": app_id})
    if response.status_code == 401:
        TOKENS.forget(settings, app_id)  # revoked or expired early: the next attempt fetches a new one
        return Result("retry", "qq messages: HTTP 401 (token refused)")
    if (transport := _classify_http(response, "qq messages")) is not None:
        return transport
    if response.is_success:
        return DONE
    try:
        answer = response.json()
    except ValueError:
        answer = {}
    detail = f"{answer.get('code', '')} {answer.get('message', '')}".strip() if isinstance(answer, dict) else ""
    return Result("failed", f"qq messages: HTTP {response.status_code} {detail}".strip()[:2000])
