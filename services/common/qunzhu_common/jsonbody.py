"""One JSON reader for API bodies and webhook payloads: bounded depth and size, text the databases can store.

`json.loads` recurses once per nesting level, so a 20,000-deep body raised RecursionError (a 500) in the
services, in the gateway's own parsing and in the webhook normalisers. A lone surrogate (`"\\ud800"`)
parses into a `str` that cannot be encoded (UnicodeEncodeError on write, a 500), PostgreSQL refuses NUL
in text, and a number past 64 bits overflows a bigint column. Every one of those is the client's input,
so it is answered 4xx here, once, before anything is written:

- deeper than `MAX_DEPTH` → 400 `invalid-json`; larger than the limit → 413;
- a lone surrogate, a NUL, NaN/Infinity or a number outside [-2**63, 2**63) → 422 `invalid-input`.

The checks are cheap on ordinary bodies (two byte counts and one regex search, all in C); only a body
that could break a rule is parsed to be sure. `JsonBodyGuard` applies them to every service's JSON
request bodies before FastAPI parses them (it then parses once, as before); `loads` parses once with the
same rules, for the places that parse bodies themselves (the gateway's webhooks and its body checks).
"""

from __future__ import annotations

import contextlib
import json
import math
import re
from collections.abc import Sequence
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from qunzhu_common.errors import AppError, app_error_response

MAX_DEPTH = 64
MAX_BYTES = 1024 * 1024
_INT64 = 2**63

# A JSON string (escapes included); the unrolled form keeps the regex linear and fast.
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_PAIR = re.compile(rb"\[\]|\{\}")
_NOT_BRACKET = bytes(b for b in range(256) if b not in b"[]{}")
# Anything that might be a surrogate, a NUL, a non-finite or a 64-bit-overflowing number. Each test is a
# C-speed substring search (the exact regex runs only after it found something); a hit only means
# "parse and look", and most bodies have none.
_ESCAPE = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])")
_RAW_SURROGATE = re.compile(rb"\xed[\xa0-\xbf]")  # UTF-8 of U+D800–U+DFFF (json.loads lets it through)
_BIG_EXPONENT = re.compile(rb"\d[eE]\+?(?:1[89]|[2-9]\d|\d{3})")
_DIGITS = bytes(ord("0") if b in b"0123456789" else ord("e") if b in b"eE" else b if b == ord("+") else ord(" ")
                for b in range(256))
_BAD_CHAR = re.compile("[\x00\ud800-\udfff]")


class InvalidJson(AppError, ValueError):
    """A body the JSON rules refuse (also a ValueError, so `except ValueError` around a parse still holds)."""

    status, slug, title = 400, "invalid-json", "Invalid JSON"


class JsonTooDeep(InvalidJson):
    pass


class JsonTooLarge(InvalidJson):
    status, slug, title = 413, "payload-too-large", "Payload too large"


class UnstorableJson(InvalidJson):
    status, slug, title = 422, "invalid-input", "Invalid input"


def too_deep(body: bytes, max_depth: int = MAX_DEPTH) -> bool:
    """Whether arrays/objects nest deeper than `max_depth` (brackets inside strings do not count)."""
    if body.count(b"[") + body.count(b"{") <= max_depth:
        return False  # not enough brackets to be that deep: the common case, decided in C
    if b'\\"' in body:  # an escaped quote: find the strings with the regex
        outside = _STRING.sub(b"", body)
    else:  # every quote opens or closes a string: the even pieces are what lies outside them
        outside = b"".join(body.split(b'"')[::2])
    brackets = outside.translate(None, _NOT_BRACKET)
    # Remove innermost pairs one level at a time: empty within `max_depth` rounds means shallow enough.
    for _ in range(max_depth):
        if not brackets:
            return False
        brackets = _PAIR.sub(b"", brackets)  # one pass: both kinds at once, so one level per round
    return bool(brackets)


def check(body: bytes, *, max_depth: int = MAX_DEPTH, max_bytes: int = MAX_BYTES, numbers: bool = True) -> None:
    """Raise InvalidJson if `body` breaks a rule; a body that is simply not JSON is left to its parser."""
    _check_shape(body, max_depth=max_depth, max_bytes=max_bytes)
    if not _suspect(body, numbers=numbers):
        return
    try:
        value = json.loads(body)
    except ValueError:
        return  # not JSON: the parser that reads it answers that (FastAPI: 422)
    _check_value(value, numbers=numbers)


def loads(body: bytes | str, *, max_depth: int = MAX_DEPTH, max_bytes: int = MAX_BYTES, numbers: bool = False) -> Any:
    """`json.loads` under the same rules; every refusal (not JSON included) is an InvalidJson."""
    raw = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else body
    _check_shape(raw, max_depth=max_depth, max_bytes=max_bytes)
    if not _suspect(raw, numbers=True):
        # Nothing here that orjson reads differently from json (an int past 64 bits becomes its float, NaN
        # and lone surrogates are refused): orjson's value is json's, ≈ 4× sooner (#19, the chat webhook).
        with contextlib.suppress(orjson.JSONDecodeError):  # refused: json's own verdict below, as before
            return orjson.loads(raw)
    try:
        value = json.loads(raw)  # no keyword arguments: the module's cached decoder, the fastest path
    except (ValueError, RecursionError) as exc:
        raise InvalidJson(f"the body is not JSON: {exc}") from None
    if _suspect(raw, numbers=numbers):
        _check_value(value, numbers=numbers)
    return value


def _check_shape(body: bytes, *, max_depth: int, max_bytes: int) -> None:
    if len(body) > max_bytes:
        raise JsonTooLarge(f"the body is over {max_bytes} bytes")
    if too_deep(body, max_depth):
        raise JsonTooDeep(f"the body nests deeper than {max_depth} levels")


def _suspect(body: bytes, *, numbers: bool) -> bool:
    if b"\x00" in body or b"NaN" in body or b"Infinity" in body:
        return True
    if b"\\u" in body and _ESCAPE.search(body):
        return True
    if b"\xed" in body and _RAW_SURROGATE.search(body):
        return True
    if numbers:
        digits = body.translate(_DIGITS)  # digits → "0", e/E → "e", "+" kept, the rest → " "
        if b"0" * 19 in digits:
            return True
        if (b"0e00" in digits or b"0e+00" in digits) and _BIG_EXPONENT.search(body):
            return True
    return False


def _check_value(value: Any, *, numbers: bool) -> None:
    # Depth is already bounded, so this recursion is too.
    if isinstance(value, str):
        if _BAD_CHAR.search(value):
            raise UnstorableJson("the body holds a NUL character or a lone surrogate (\\ud800–\\udfff)")
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_value(key, numbers=numbers)
            _check_value(item, numbers=numbers)
    elif isinstance(value, list):
        for item in value:
            _check_value(item, numbers=numbers)
    elif isinstance(value, float) and not math.isfinite(value):
        raise UnstorableJson("NaN and Infinity are not JSON numbers")
    elif numbers and isinstance(value, int | float) and not isinstance(value, bool):
        if not -_INT64 <= value < _INT64:
            raise UnstorableJson("a number is out of range (a 64-bit integer at most)")


def _is_json(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"content-type":
            media = value.partition(b";")[0].strip().lower()
            return media == b"application/json" or media.endswith(b"+json")
    return True  # FastAPI parses a body without a Content-Type as JSON


class JsonBodyGuard:
    """Pure ASGI middleware: reads a JSON request body, applies `check`, then hands the same bytes on.

    Refusals are problem+json. Paths under `skip_prefixes` (signed webhooks, which are verified and then
    quarantined rather than refused) are passed through untouched, as are bodiless methods.
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int = MAX_BYTES, max_depth: int = MAX_DEPTH,
                 skip_prefixes: Sequence[str] = ()) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_depth = max_depth
        self.skip_prefixes = tuple(skip_prefixes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS")
                or scope["path"].startswith(self.skip_prefixes) or not _is_json(scope)):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        try:
            while True:
                message = await receive()
                if message["type"] != "http.request":
                    return  # the client went away before its body was complete
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > self.max_bytes:
                    raise JsonTooLarge(f"the body is over {self.max_bytes} bytes")
                chunks.append(chunk)
                if not message.get("more_body", False):
                    break
            body = b"".join(chunks)
            check(body, max_depth=self.max_depth, max_bytes=self.max_bytes)
        except AppError as exc:  # ours, or an outer middleware's (a read deadline, a size cap)
            await app_error_response(exc, scope["path"])(scope, receive, send)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)
