"""Faults under load (issue 7, part 1): at least 10,000 signed webhooks through the real gateway while the
Kafka broker restarts, the engagement and membership processes are killed with SIGKILL and restarted and
PostgreSQL restarts. A refused delivery (5xx, connection error) is retried with the same id, as
providers do. After quiescence every accepted webhook has exactly one effect: the points ledger and the
memberships equal the reference computed from the accepted list, the outboxes are drained and no record
was dead-lettered.

The gateway is also killed (SIGKILL) and restarted: what it acknowledged must be durable.

QUNZHU_FAULTS_WEBHOOKS (default 10000) and QUNZHU_FAULTS_RATE (webhooks per second, default 40) scale it.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections.abc import Callable

import httpx
import pytest

from tests import summary
from tests.integration.stack import Stack
from tests.reliability.observe import Verdict, compare, dead_letters, observe
from tests.reliability.workload import Plan, create_communities, drive, generate, reference

pytestmark = pytest.mark.integration

WEBHOOKS = int(os.environ.get("QUNZHU_FAULTS_WEBHOOKS", "10000"))
# 40/s: 10,000 webhooks take ~250 s, long enough for the six faults (10–40 s each, one after the other)
# to strike while the load runs, on a quiet machine as on a busy one.
RATE = float(os.environ.get("QUNZHU_FAULTS_RATE", "40"))
CONCURRENCY = 48
QUIESCENCE_S = 420


async def all_ready(stack: Stack, timeout: float = 180) -> None:  # noqa: ASYNC109 - a polling deadline
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=5) as client:
        for svc in stack.services.values():
            while True:
                try:
                    if (await client.get(svc.url + "/readyz")).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, f"{svc.name} not ready again after the fault:\n{svc.log_tail()}"
                await asyncio.sleep(0.5)


def fault_schedule(stack: Stack) -> list[tuple[float, str, Callable[[], None]]]:
    """(share of the load done, name, fault): each blocks until the faulty part was started again."""
    def both() -> None:
        stack["engagement"].kill()
        stack["membership"].crash_and_restart()
        stack["engagement"].start()
        stack["engagement"].wait_ready()

    return [
        (0.10, "engagement SIGKILL + restart", lambda: stack["engagement"].crash_and_restart()),
        (0.25, "kafka broker restart", lambda: stack.kafka.restart(down_s=3)),
        (0.40, "membership SIGKILL + restart", lambda: stack["membership"].crash_and_restart()),
        (0.55, "postgresql restart", lambda: stack.postgres.restart(down_s=3)),
        (0.70, "engagement and membership SIGKILL together + restart", both),
        # Not in the list, but the gateway is what answers: a webhook it acknowledged must be durable,
        # one it was killed on must come back (same id) and be applied once.
        (0.85, "gateway SIGKILL + restart", lambda: stack["gateway"].crash_and_restart()),
    ]


async def settle(stack: Stack, ids: list[str], hooks, ref, timeout: float) -> Verdict:  # noqa: ANN001, ASYNC109
    """Poll until the state equals the reference (or the deadline): the consumers catch up after faults."""
    deadline = time.monotonic() + timeout
    while True:
        verdict = compare(ref, await observe(stack, ids, hooks), hooks)
        if not verdict.problems or time.monotonic() > deadline:
            return verdict
        await asyncio.sleep(3)


@pytest.mark.timeout(1500)
async def test_every_accepted_webhook_has_exactly_one_effect_through_faults(stack: Stack) -> None:
    assert WEBHOOKS >= 10_000 or os.environ.get("QUNZHU_FAULTS_WEBHOOKS"), "the issue asks for 10,000 at least"
    rng = random.Random(7)
    plan = Plan()
    communities = await create_communities(stack, plan.communities, tag="load")
    hooks = generate(communities, WEBHOOKS, plan=plan, rng=rng, people_tag="load")
    assert len(hooks) == WEBHOOKS
    assert {h.kind for h in hooks} == {"message", "checkin", "homework", "join", "payment", "refund"}

    progress = 0
    reached = asyncio.Event()  # set whenever the load passes the next fault's share
    next_share = 0.0
    survived: list[str] = []

    async def inject() -> None:
        nonlocal next_share
        for share, name, fault in fault_schedule(stack):
            next_share = share
            reached.clear()
            if progress < share * len(hooks):
                await reached.wait()
            started = time.monotonic()
            in_flight = progress < len(hooks)
            await asyncio.to_thread(fault)
            await all_ready(stack)
            survived.append(f"{name} ({started - origin:.0f}–{time.monotonic() - origin:.0f} s"
                            f"{'' if in_flight else ', AFTER the load'})")

    def on_progress(done: int) -> None:
        nonlocal progress
        progress = done
        if progress >= next_share * len(hooks):
            reached.set()

    origin = time.monotonic()
    faults = asyncio.create_task(inject())
    stats = await drive(stack["gateway"].url, hooks, rate=RATE, concurrency=CONCURRENCY,
                        deadline_s=len(hooks) / RATE + 600, on_progress=on_progress)
    await faults
    assert not stats.rejected, stats.rejected[:10]
    assert all(h.ok for h in hooks)
    summary.load("faults under load", webhooks=len(hooks), seconds=stats.seconds, refused=stats.refused,
                 detail=stats.latency())
    # A delivery whose answer was lost (connection cut, 5xx after the commit) comes back as a duplicate.
    recognised = sum(1 for h in hooks if len(h.answers) > 1 and h.answers[-1] == "200:duplicate")
    print(f"\nload: {len(hooks)} webhooks in {stats.seconds:.0f} s, {stats.attempts} attempts, "
          f"answers {dict(stats.statuses)}; {recognised} retries recognised as duplicates; {stats.latency()}; "
          f"refused: {stats.refusals(origin)}; faults: {survived}")

    ref = reference(hooks)
    ids = [c.id for c in communities]
    settling = time.monotonic()
    verdict = await settle(stack, ids, hooks, ref, QUIESCENCE_S)
    print(f"quiescence {'reached' if not verdict.problems else 'NOT reached'} after "
          f"{time.monotonic() - settling:.0f} s")
    if not verdict.problems:  # still equal a moment later: nothing doubled by a late redelivery
        await asyncio.sleep(5)
        verdict = compare(ref, await observe(stack, ids, hooks), hooks)
    dead = await dead_letters(stack)
    summary.records("faults under load", checked=verdict.checked, lost=verdict.lost, duplicated=verdict.duplicated)
    assert not verdict.problems, "\n".join(verdict.problems)
    assert not dead, f"{len(dead)} dead-lettered records:\n" + "\n".join(dead[:20])
    assert len(survived) == len(fault_schedule(stack))
    assert not [name for name in survived if "AFTER" in name], f"faults must strike under load: {survived}"
    for name in survived:
        summary.fault(name.rsplit(" (", 1)[0])
    # Retries happened (a refused delivery came back) and were told apart from first deliveries.
    assert stats.refused > 0, "no delivery was refused: the faults did not reach the gateway's write path"
