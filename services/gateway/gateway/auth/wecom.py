"""WeCom (企业微信) through a self-built app: web login (OAuth code → userid) and messages to one person.

Both use the app's access token (`GET /cgi-bin/gettoken?corpid=…&corpsecret=…`, valid `expires_in` seconds,
7200 as WeCom issues it), cached per app until a minute before it ends and dropped when WeCom says it is
no longer valid (errcode 40014 / 42001), as WeCom asks: tokens are rate limited, not to be fetched per call.

- Login: the browser comes back from WeCom's OAuth page with `code`; `GET /cgi-bin/auth/getuserinfo
  ?access_token=…&code=…` names the enterprise member (`userid`, or `UserId` in older answers) — the person
  `wecom:<userid>`, as the app's callbacks name them. Someone outside the enterprise (an `openid` only) is
  not a WeCom person Qunzhu knows.
- Codes: `POST /cgi-bin/message/send` with `touser`, the app's `agentid` and a text message.

The base URL is a setting (GATEWAY_WECOM_API_BASE), so tests use a loopback stand-in.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
from dataclasses import dataclass
from typing import Any

import httpx

from qunzhu_common.events.contracts.identity import PERSON_ID_PATTERN

TOKEN_INVALID = frozenset({40014, 42001, 40001})  # invalid / expired access_token, invalid secret
CODE_INVALID = frozenset({40029, 40163, 50001, 60011, 60020})  # invalid or used code, app not allowed
BUSY = frozenset({-1, 45009, 45033})  # system busy, API frequency limits
_EARLY_S = 60


class WecomError(Exception):
    """WeCom answered, and refused: `code` is its errcode (None when the answer was not WeCom's JSON)."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class WecomUnavailable(Exception):
    """WeCom could not be reached or was busy: worth trying again later."""


@dataclass
class _Token:
    value: str
    expires_at: float


_tokens: dict[tuple[str, str, str], _Token] = {}
_locks: dict[tuple[str, str, str], asyncio.Lock] = {}


def _key(base: str, corp_id: str, secret: str) -> tuple[str, str, str]:
    return base, corp_id, hashlib.sha256(secret.encode()).hexdigest()


async def _get(client: httpx.AsyncClient, url: str, params: dict[str, str]) -> dict[str, Any]:
    try:
        response = await client.get(url, params=params)
    except httpx.HTTPError as exc:
        raise WecomUnavailable(f"WeCom: {type(exc).__name__}") from None
    return _answer(response)


def _answer(response: httpx.Response) -> dict[str, Any]:
    if response.status_code == 429 or response.status_code >= 500:
        raise WecomUnavailable(f"WeCom: HTTP {response.status_code}")
    try:
        answer = response.json()
    except ValueError:
        raise WecomError(f"WeCom: not JSON (HTTP {response.status_code})") from None
    if not isinstance(answer, dict):
        raise WecomError("WeCom: not a JSON object")
    code = answer.get("errcode", 0)
    if code in BUSY:
        raise WecomUnavailable(f"WeCom: errcode {code}")
    if code != 0:
        raise WecomError(f"WeCom: errcode {code} {str(answer.get('errmsg', ''))[:200]}", code=code)
    return answer


async def access_token(client: httpx.AsyncClient, *, base: str, corp_id: str, secret: str,
                       refresh: bool = False) -> str:
    """The app's access token, from the cache while it is valid for another minute."""
    key = _key(base, corp_id, secret)
    lock = _locks.setdefault(key, asyncio.Lock())
    async with lock:
        cached = _tokens.get(key)
        if cached is not None and not refresh and cached.expires_at > time.monotonic():
            return cached.value
        answer = await _get(client, f"{base.rstrip('/')}/cgi-bin/gettoken", {"corpid": corp_id, "corpsecret": secret})
        token = str(answer.get("access_token") or "")
        if not token:
            raise WecomError("WeCom: gettoken answered without access_token")
        expires_in = answer.get("expires_in", 7200)
        lifetime = float(expires_in) if isinstance(expires_in, int | float) else 7200.0
        _tokens[key] = _Token(token, time.monotonic() + max(0.0, lifetime - _EARLY_S))
        return token


async def _with_token(client: httpx.AsyncClient, *, base: str, corp_id: str, secret: str, call) -> dict[str, Any]:  # noqa: ANN001
    token = await access_token(client, base=base, corp_id=corp_id, secret=secret)
    try:
        return await call(token)
    except WecomError as exc:
        if exc.code not in TOKEN_INVALID:
            raise
    token = await access_token(client, base=base, corp_id=corp_id, secret=secret, refresh=True)
    return await call(token)


async def person_for_code(client: httpx.AsyncClient, *, base: str, corp_id: str, secret: str, code: str,
                          identity_platform: str = "wecom") -> str:
    """The person (`wecom:<userid>`) WeCom's OAuth `code` stands for; WecomError when it names nobody here."""
    async def ask(token: str) -> dict[str, Any]:
        return await _get(client, f"{base.rstrip('/')}/cgi-bin/auth/getuserinfo",
                          {"access_token": token, "code": code})

    answer = await _with_token(client, base=base, corp_id=corp_id, secret=secret, call=ask)
    userid = str(answer.get("userid") or answer.get("UserId") or "")
    if not userid:
        raise WecomError("this WeCom user is not a member of the enterprise (no userid)")
    person = f"{identity_platform}:{userid}"
    if len(person) > 200 or not re.fullmatch(PERSON_ID_PATTERN, person):
        raise WecomError("WeCom answered a userid that is not a valid id")
    return person


async def send_text(client: httpx.AsyncClient, *, base: str, corp_id: str, secret: str, agent_id: int,
                    userid: str, text: str) -> None:
    """A text message from the app to one enterprise member (WecomError / WecomUnavailable on failure)."""
    async def send(token: str) -> dict[str, Any]:
        try:
            response = await client.post(f"{base.rstrip('/')}/cgi-bin/message/send", params={"access_token": token},
                                         json={"touser": userid, "msgtype": "text", "agentid": agent_id,
                                               "text": {"content": text}, "safe": 0})
        except httpx.HTTPError as exc:
            raise WecomUnavailable(f"WeCom: {type(exc).__name__}") from None
        return _answer(response)

    answer = await _with_token(client, base=base, corp_id=corp_id, secret=secret, call=send)
    if answer.get("invaliduser"):
        raise WecomError(f"WeCom: {userid} cannot receive the app's messages (invaliduser)")


async def send_to_person(client: httpx.AsyncClient, settings: Any, connector: Any, request: dict[str, Any]):  # noqa: ANN201
    """The WeCom executor's branch for a message to one person (`to_person`: a login code), through the
    connector's self-built app (`corp_id`, `corp_secret`, `agent_id` in its secrets)."""
    from gateway.actions.platforms import DONE, Result

    secrets = connector.secrets
    corp_id, secret, agent_id = secrets.get("corp_id"), secrets.get("corp_secret"), secrets.get("agent_id")
    if not corp_id or not secret or agent_id is None:
        return Result("failed", "the WeCom connector has no self-built app (corp_id, corp_secret, agent_id) "
                                "to message a person")
    try:
        await send_text(client, base=settings.wecom_api_base, corp_id=str(corp_id), secret=str(secret),
                        agent_id=int(agent_id), userid=request["group_id"].partition(":")[2],
                        text=str(request.get("text", "")))
    except WecomUnavailable as exc:
        return Result("retry", str(exc))
    except WecomError as exc:
        return Result("failed", str(exc)[:2000])
    return DONE
