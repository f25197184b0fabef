"""BackgroundLoop: the one loop behind the relay, schedulers and workers."""

from __future__ import annotations

import asyncio

from qunzhu_common.background import BackgroundLoop
from qunzhu_common.testing import eventually


async def test_a_wake_up_during_a_pass_is_not_lost() -> None:
    passes = 0
    loop: BackgroundLoop

    async def run_pass() -> float:
        nonlocal passes
        passes += 1
        if passes == 1:
            loop.wake()  # a write committed while the first pass was running
        return 3600.0  # nothing else would start another pass within the test

    loop = BackgroundLoop("test", run_pass)
    loop.start()
    try:
        await eventually(lambda: passes == 2, within=2.0, what="a second pass right after the wake-up")
        await asyncio.sleep(0.05)
        assert passes == 2  # and then it waits
        loop.wake()
        await eventually(lambda: passes == 3, within=2.0, what="a pass per wake-up")
    finally:
        await loop.stop()
    assert not loop.running


async def test_failures_back_off_and_report_then_work_resumes() -> None:
    outcomes = iter([RuntimeError("database down"), RuntimeError("still down"), 3600.0])
    seen: list[Exception] = []
    done = asyncio.Event()

    async def run_pass() -> float:
        outcome = next(outcomes)
        if isinstance(outcome, Exception):
            raise outcome
        done.set()
        return outcome

    loop = BackgroundLoop("test", run_pass, backoff_s=0.001, max_backoff_s=0.01, on_failure=seen.append)
    loop.start()
    try:
        await asyncio.wait_for(done.wait(), timeout=2.0)
    finally:
        await loop.stop()
    assert [str(e) for e in seen] == ["database down", "still down"]


async def test_stop_cancels_a_loop_that_is_busy_or_just_woken() -> None:
    async def busy() -> float:
        await asyncio.sleep(0)
        return 0  # always more work

    for _ in range(50):
        loop = BackgroundLoop("test", busy)
        loop.start()
        await asyncio.sleep(0)
        loop.wake()
        await asyncio.wait_for(loop.stop(), timeout=2.0)


async def test_stop_works_when_a_pass_turns_the_cancellation_into_an_error() -> None:
    """SQLAlchemy interrupted mid-statement leaves PendingRollbackError behind, raised from a `finally`:
    the loop's task is still cancelling, so the loop stops instead of retrying forever."""
    started = asyncio.Event()

    async def run_pass() -> float:
        started.set()
        try:
            await asyncio.sleep(3600)
        finally:
            raise RuntimeError("Can't reconnect until invalid transaction is rolled back")  # noqa: B012
        return 0.0  # pragma: no cover

    loop = BackgroundLoop("test", run_pass, backoff_s=0.001)
    loop.start()
    await asyncio.wait_for(started.wait(), timeout=2.0)
    stopping = asyncio.create_task(loop.stop())
    done, _ = await asyncio.wait({stopping}, timeout=2.0)
    assert done, "the loop went on after stop()"
    assert not loop.running
