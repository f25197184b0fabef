"""How each platform carries out a bot action. Every call answers Done, Retry(after) or Failed(reason).

Requests arrive rendered (gateway.chatdir.render): `text` with names, and `segments` when it mentions
someone. Telegram: sendMessage / banChatMember. WeCom: the group robot webhook (messages only: a robot cannot
remove people). QQ (gateway.actions.qq): a OneBot 11 HTTP API (messages, kick, card, mute, recall, join
requests) or the official bot's passive replies.
Generic: a Standard-Webhooks-signed POST to the operator's own bridge, with the action id
as `webhook-id` and `Idempotency-Key`, so the bridge can drop a repeat.
"""

from __future__ import annotations

import html
import json
import time
from dataclasses import dataclass
from typing import Any

import httpx

from gateway.settings import GatewaySettings
from gateway.webhooks.adapters import ConnectorView
from gateway.webhooks.verify import sign_standard


@dataclass(frozen=True)
class Result:
    outcome: str  # completed, retry, failed
    error: str = ""
    retry_after_s: float | None = None


DONE = Result("completed")


def _retry_after(response: httpx.Response, default: float | None = None) -> float | None:
    value = response.headers.get("retry-after", "")
    return float(value) if value.replace(".", "", 1).isdigit() else default


def _classify_http(response: httpx.Response, what: str) -> Result | None:
    """Transport-level answer: None when the status is a success, to be read further."""
    if response.status_code == 429 or response.status_code >= 500:
        return Result("retry", f"{what}: HTTP {response.status_code}", _retry_after(response))
    return None


MESSAGES_AND_REMOVAL = ("send_message", "announce", "relay", "remove_member")


def _chat(group_id: str) -> str:
    return group_id.partition(":")[2]


def telegram_html(segments: list[dict[str, Any]]) -> str:
    """Rendered segments as Telegram HTML: a mention is a link to the user, which notifies them."""
    parts = []
    for segment in segments:
        if segment["type"] == "mention" and str(segment.get("user_id", "")).lstrip("-").isdigit():
            parts.append(f'<a href="tg://user?id={segment["user_id"]}">{html.escape(segment["text"])}</a>')
        else:
            parts.append(html.escape(segment["text"], quote=False))
    return "".join(parts)


async def telegram(client: httpx.AsyncClient, settings: GatewaySettings, connector: ConnectorView,
                   request: dict[str, Any]) -> Result:
    token = str(connector.secrets.get("bot_token", ""))
    base = f"{settings.telegram_api_base.rstrip('/')}/bot{token}"
    chat_id = _chat(request["group_id"])
    if request["action"] not in MESSAGES_AND_REMOVAL:
        return Result("failed", f"telegram: {request['action']} is not supported")
    if request["action"] == "remove_member":
        if not request.get("member_id"):
            return Result("failed", "remove_member without member_id")
        method, payload = "banChatMember", {"chat_id": chat_id, "user_id": _chat(request["member_id"])}
    else:
        method, payload = "sendMessage", {"chat_id": chat_id, "text": request.get("text", "")}
        if any(s["type"] == "mention" for s in request.get("segments") or ()):
            payload.update(text=telegram_html(request["segments"]), parse_mode="HTML")
    response = await client.post(f"{base}/{method}", json=payload)
    try:
        answer = response.json()
    except ValueError:
        answer = {}
    if answer.get("ok") is True:
        return DONE
    if response.status_code == 429 or answer.get("error_code") == 429:
        after = (answer.get("parameters") or {}).get("retry_after")
        return Result("retry", f"telegram {method}: too many requests", float(after) if after else None)
    if response.status_code >= 500:
        return Result("retry", f"telegram {method}: HTTP {response.status_code}")
    return Result("failed", f"telegram {method}: {answer.get('description') or response.status_code}"[:2000])


async def wecom(client: httpx.AsyncClient, settings: GatewaySettings, connector: ConnectorView,
                request: dict[str, Any]) -> Result:
    if request.get("to_person"):  # a login code: through the self-built app, not a group robot
        from gateway.auth.wecom import send_to_person

        return await send_to_person(client, settings, connector, request)
    if request["action"] not in MESSAGES_AND_REMOVAL or request["action"] == "remove_member":
        return Result("failed", f"a WeCom group robot cannot {request['action']}")
    key = (connector.secrets.get("robot_keys") or {}).get(_chat(request["group_id"]))
    if not key:
        return Result("failed", f"no group robot key for {request['group_id']}")
    text: dict[str, Any] = {"content": request.get("text", "")}
    mentioned = [s["user_id"] for s in request.get("segments") or () if s["type"] == "mention"]
    if request.get("mention_all") or request["action"] == "announce":
        mentioned.append("@all")
    if mentioned:
        text["mentioned_list"] = list(dict.fromkeys(mentioned))
    response = await client.post(f"{settings.wecom_robot_base.rstrip('/')}/cgi-bin/webhook/send",
                                 params={"key": key}, json={"msgtype": "text", "text": text})
    if (transport := _classify_http(response, "wecom robot")) is not None:
        return transport
    try:
        answer = response.json()
    except ValueError:
        return Result("retry", "wecom robot: not JSON")
    code = answer.get("errcode")
    if code == 0:
        return DONE
    if code in (45009, -1):  # API frequency limit, system busy
        return Result("retry", f"wecom robot: errcode {code}")
    return Result("failed", f"wecom robot: errcode {code} {answer.get('errmsg', '')}"[:2000])


async def bridge(client: httpx.AsyncClient, settings: GatewaySettings, connector: ConnectorView,
                 request: dict[str, Any]) -> Result:
    url, secret = connector.secrets.get("outbound_url"), connector.secrets.get("outbound_secret")
    if not url or not secret:
        return Result("failed", "the connector has no outbound bridge configured")
    if not str(url).startswith("https://") and not (settings.bridge_allow_http and str(url).startswith("http://")):
        return Result("failed", "the bridge URL must be https")
    body = json.dumps({"type": "chat.action.requested", "data": request}, ensure_ascii=False).encode()
    stamp = int(time.time())
    headers = {"content-type": "application/json", "webhook-id": request["action_id"],
               "webhook-timestamp": str(stamp), "idempotency-key": request["action_id"],
               "webhook-signature": sign_standard(str(secret), request["action_id"], stamp, body)}
    response = await client.post(str(url), content=body, headers=headers)
    if (transport := _classify_http(response, "bridge")) is not None:
        return transport
    if response.is_success:
        return DONE
    return Result("failed", f"bridge: HTTP {response.status_code}")


def _qq_executors() -> dict[str, Any]:
    from gateway.actions import qq  # it builds on this module's Result and helpers

    return {"onebot": qq.onebot, "qq": qq.qqbot}


EXECUTORS = {"telegram": telegram, "wecom": wecom, "generic": bridge, **_qq_executors()}
