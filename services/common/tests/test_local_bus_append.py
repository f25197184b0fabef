"""LocalBus appends a batch in one statement when its values are UTF-8 text (events are JSON) and row by row
otherwise (#19); either way every record reads back byte for byte, with its key, headers and offset."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qunzhu_common.bus.base import OutgoingRecord

TOPIC = "append.v1"

JSON_VALUES = [
    json.dumps({"text": '引号 " 反斜杠 \\ 换行 \n 表情 🎉 \u2028 转义 \\u0000', "n": 1}, ensure_ascii=False).encode(),
    json.dumps({"ascii": "\u00e9\ud83d\ude00"}).encode(),  # escaped, ASCII only
    b"{}",
    b"",
]
RAW_VALUES = [b"\xff\xfe not utf-8", b"a NUL \x00 inside", bytes(range(256))]


async def _appended(bus, values: list[bytes], keys: list[str | None]) -> list[tuple[str | None, bytes, tuple]]:
    records = [OutgoingRecord(topic=TOPIC, key=key or "", value=value, headers=(("h", b"v"),) if i % 2 else ())
               for i, (key, value) in enumerate(zip(keys, values, strict=True))]
    await bus.publish(records)
    read = await bus.read_all(TOPIC)
    return sorted(((r.key, r.value, r.headers) for r in read), key=repr)


async def test_json_values_and_raw_bytes_read_back_exactly(open_bus):
    bus = await open_bus(partitions=1)
    keys = [f"k{i}" for i in range(len(JSON_VALUES))]
    read = await _appended(bus, JSON_VALUES, keys)  # one statement
    assert read == sorted(((k, v, (("h", b"v"),) if i % 2 else ())
                           for i, (k, v) in enumerate(zip(keys, JSON_VALUES, strict=True))), key=repr)
    assert all(isinstance(v, bytes) for _, v, _ in read)
    mixed = [*JSON_VALUES, *RAW_VALUES]
    bus2 = await open_bus(partitions=1)
    await bus.stop()
    read = await _appended(bus2, mixed, [f"m{i}" for i in range(len(mixed))])  # row by row: raw bytes in it
    assert sorted(v for _, v, _ in read) == sorted(JSON_VALUES + JSON_VALUES + RAW_VALUES)
    offsets = [r.offset for r in await bus2.read_all(TOPIC)]
    assert offsets == list(range(len(JSON_VALUES) + len(mixed)))  # one log, no gap, no repeat


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.one_of(st.text().map(lambda t: json.dumps(t, ensure_ascii=False).encode("utf-8", "surrogatepass")),
                          st.binary(max_size=40)), min_size=1, max_size=12))
async def test_any_batch_reads_back_as_published(open_bus, values):
    bus = await open_bus(partitions=2)
    before = len(await bus.read_all(TOPIC))
    await bus.publish([OutgoingRecord(topic=TOPIC, key=f"k{i}", value=v) for i, v in enumerate(values)])
    read = (await bus.read_all(TOPIC))
    assert len(read) == before + len(values)
    got = {(r.key, r.value) for r in read}
    assert {(f"k{i}", v) for i, v in enumerate(values)} <= got
