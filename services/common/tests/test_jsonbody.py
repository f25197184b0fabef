"""The JSON rules: depth, size, unstorable text and numbers; the guard answers problems and passes the rest."""

from __future__ import annotations

import json

import httpx
import pytest
from fastapi import FastAPI
from hypothesis import given, settings
from hypothesis import strategies as st

from qunzhu_common import jsonbody
from qunzhu_common.errors import install_problem_handlers


def nested(depth: int) -> bytes:
    value: object = "x"
    for level in range(depth):  # alternate kinds, with brackets and quotes inside strings to mislead a scan
        value = [value, "]]\"}"] if level % 2 else {"k[\"": value}
    return json.dumps(value).encode()


@pytest.mark.parametrize("depth", [1, 63, 64])
def test_up_to_the_limit_is_accepted(depth):
    jsonbody.check(nested(depth))
    assert jsonbody.loads(nested(depth)) is not None


@pytest.mark.parametrize("depth", [65, 200])
def test_deeper_is_400(depth):
    with pytest.raises(jsonbody.InvalidJson) as refused:
        jsonbody.check(nested(depth))
    assert refused.value.status == 400


def test_brackets_hidden_in_strings_do_not_hide_depth():
    masked = b'["]",' * 100 + b"1" + b',"["]' * 100  # naive bracket counting sees depth 1
    with pytest.raises(jsonbody.InvalidJson):
        jsonbody.check(masked)


@pytest.mark.parametrize("body", [
    b'{"a":"\\ud800"}', b'{"a":"\\uDFFF"}', b'"\xed\xa0\x80"', b'{"a":"\\u0000"}', b'{"\\ud800":1}',
    b'{"a":NaN}', b'{"a":-Infinity}', b'{"a":1e20}', b'{"a":9223372036854775808}',
])
def test_unstorable_values_are_422(body):
    with pytest.raises(jsonbody.InvalidJson) as refused:
        jsonbody.check(body)
    assert refused.value.status == 422


@pytest.mark.parametrize("body", [
    b'{"a":"\\ud83d\\ude00"}', b'{"a":"\\\\ud800"}', b'{"a":9223372036854775807}', b'{"a":1e18}',
    b'{"id":"4e12a0b1-1e19"}', b"not json",
])
def test_ordinary_bodies_pass(body):
    jsonbody.check(body)


def test_loads_refuses_what_check_refuses_and_not_json():
    for body in (nested(65), b'{"a":"\\ud800"}', b"{"):
        with pytest.raises(ValueError):
            jsonbody.loads(body)
    assert jsonbody.loads(b'{"a":1e20}') == {"a": 1e20}  # numbers are only checked for API bodies


def test_size_limit_is_413():
    with pytest.raises(jsonbody.InvalidJson) as refused:
        jsonbody.check(b" " * 2048, max_bytes=1024)
    assert refused.value.status == 413


async def test_the_guard_answers_problems_and_hands_good_bodies_on():
    app = FastAPI()
    install_problem_handlers(app)

    @app.post("/things")
    async def things(body: dict) -> dict:
        return body

    @app.post("/webhooks/x")
    async def webhook(body: dict) -> dict:
        return {"ok": True}

    app.add_middleware(jsonbody.JsonBodyGuard, max_bytes=65_536, skip_prefixes=("/webhooks/",))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        good = await client.post("/things", json={"a": 1})
        deep = await client.post("/things", content=b"[" * 20_000 + b"]" * 20_000,
                                 headers={"content-type": "application/json"})
        surrogate = await client.post("/things", content=b'{"name":"\\ud800"}')
        big = await client.post("/things", json={"a": "x" * 70_000})
        form = await client.post("/things", content=b"a=1",
                                 headers={"content-type": "application/x-www-form-urlencoded"})
        skipped = await client.post("/webhooks/x", content=b'{"a":NaN}', headers={"content-type": "application/json"})

    assert good.json() == {"a": 1}
    assert (deep.status_code, surrogate.status_code, big.status_code) == (400, 422, 413)
    for refused in (deep, surrogate, big):
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["instance"] == "/things"
    assert form.status_code == 422  # not JSON: left to FastAPI
    assert skipped.json() == {"ok": True}


def _loads_with_json_only(raw: bytes, numbers: bool) -> object:
    """`jsonbody.loads` as it was before orjson read the ordinary bodies: the reference."""
    jsonbody._check_shape(raw, max_depth=jsonbody.MAX_DEPTH, max_bytes=jsonbody.MAX_BYTES)
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise jsonbody.InvalidJson(str(exc)) from None
    if jsonbody._suspect(raw, numbers=numbers):
        jsonbody._check_value(value, numbers=numbers)
    return value


def _outcome(read, raw: bytes, numbers: bool) -> tuple[str, object]:
    try:
        value = read(raw, numbers=numbers) if read is jsonbody.loads else read(raw, numbers)
    except jsonbody.InvalidJson as exc:
        return "refused", type(exc)
    return "read", json.dumps(value, sort_keys=True) + repr(type(value))  # types too: 2**64 is not 1.8e19


_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=12)


@settings(max_examples=400, deadline=None)
@given(value=_JSON_VALUES, ascii_only=st.booleans(), cut=st.integers(min_value=0, max_value=400),
       junk=st.binary(max_size=3), numbers=st.booleans())
def test_loads_reads_and_refuses_exactly_as_json_did(value, ascii_only, cut, junk, numbers):
    raw = json.dumps(value, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")
    for body in (raw, raw[:cut] + junk + raw[cut:], raw[:cut]):
        assert _outcome(jsonbody.loads, body, numbers) == _outcome(_loads_with_json_only, body, numbers), body
