"""Read deadlines on one timer (gateway.webhooks.deadlines, #19): the chat webhook's 408 for a stalled body
without a timer per request."""

from __future__ import annotations

import asyncio
import time

import pytest

from gateway.webhooks.deadlines import ReadDeadlines


async def _stalled() -> bytes:
    await asyncio.sleep(30)
    return b"never"


async def test_a_read_past_its_deadline_raises_timeout_and_the_others_are_untouched():
    deadlines = ReadDeadlines()

    async def quick(delay: float) -> str:
        async def read() -> str:
            await asyncio.sleep(delay)
            return f"read after {delay}"
        return await deadlines.within(0.2, read)

    started = time.monotonic()
    results = await asyncio.gather(quick(0), quick(0.05), deadlines.within(0.2, _stalled), quick(0.1),
                                   return_exceptions=True)
    waited = time.monotonic() - started
    assert results[0] == "read after 0" and results[1] == "read after 0.05" and results[3] == "read after 0.1"
    assert isinstance(results[2], TimeoutError)
    assert 0.2 <= waited < 5  # fired at or after its deadline (a sweep period late at most, on a quiet loop)
    assert not deadlines._pending and not deadlines._expired  # nothing left behind


async def test_a_task_cancelled_from_outside_is_cancelled_not_timed_out():
    deadlines = ReadDeadlines()
    task = asyncio.create_task(deadlines.within(0.05, _stalled))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # Both at once — the deadline's sweep and a shutdown, before the task runs again — is a cancellation.
    task = asyncio.create_task(deadlines.within(10, _stalled))
    await asyncio.sleep(0)  # now waiting inside its read
    deadlines._pending[task] = 0
    deadlines._sweep(1.0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # The sweep's alone is a timeout.
    task = asyncio.create_task(deadlines.within(10, _stalled))
    await asyncio.sleep(0)
    deadlines._pending[task] = 0
    deadlines._sweep(1.0)
    with pytest.raises(TimeoutError):
        await task
    assert not deadlines._pending and not deadlines._expired


async def test_each_part_gets_its_own_deadline_and_the_timer_stops_when_idle():
    deadlines = ReadDeadlines()

    async def part() -> bytes:
        await asyncio.sleep(0.03)
        return b"x"

    # Ten parts, each within 0.1 s, 0.3 s in all: no part is late, so no timeout.
    assert [await deadlines.within(0.1, part) for _ in range(10)] == [b"x"] * 10
    await asyncio.sleep(0.2)
    assert deadlines._timer is None  # nothing pending: no sweep keeps running


def test_deadlines_survive_a_new_event_loop():
    deadlines = ReadDeadlines()
    for _ in range(2):  # the timer armed on the first loop died with it; the second must arm its own
        with pytest.raises(TimeoutError):
            asyncio.run(deadlines.within(0.05, _stalled))
