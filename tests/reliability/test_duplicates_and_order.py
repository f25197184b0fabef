"""Duplicates and order (issue 7, part 2): the same webhooks (payments, refunds, joins, check-ins, homework,
messages) delivered once in order to one community and three times each, concurrently and shuffled, to
its twin: both end in the same state — the same points and ledger rows per member, the same activities,
the same access, payment outcomes and money — and every copy but one is answered `duplicate`.

One difference is by design (membership/service/payments.py): a refund that overtakes its payment is kept
until the payment arrives and the payment then grants nothing, so that payer ends with no membership row
instead of a `removed` one (no access either way), and engagement never learns of them as a member.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime

import httpx
import pytest

from tests import summary
from tests.integration.stack import Stack
from tests.reliability.observe import Observed, compare, dead_letters, observe
from tests.reliability.workload import (
    DriveStats,
    Plan,
    Webhook,
    create_communities,
    deliver,
    generate,
    reference,
)

pytestmark = pytest.mark.integration

PLAN = Plan(communities=1, chatters_per_community=15, refunded_per_community=6)
PER_COMMUNITY = 450
COPIES = 3
LIVE = {"pending_ritual", "active"}


def state_by_person(seen: Observed, hooks: list[Webhook]) -> dict[str, object]:
    """The state of one community, keyed by person: comparable between the twins."""
    person_of = {h.event_id: h.person for h in hooks}
    activities: Counter[tuple[str, str]] = Counter()
    for (event_id, kind), rows in seen.activities.items():
        activities[(person_of.get(event_id, "?"), kind)] += rows
    by_payment = {h.payment_id: h.person for h in hooks if h.kind == "payment"}
    outcomes: dict[str, list[str]] = defaultdict(list)
    for payment_id, outcome in seen.payments.items():
        outcomes[by_payment.get(payment_id, "?")].append(outcome)
    return {
        "points": {person: p for (_, person), p in seen.points.items()},
        "ledger rows": {(person, rule): n for (_, person, rule), n in seen.entries.items()},
        "activities": dict(activities),
        "access": sorted(person for (_, person), status in seen.members.items() if status in LIVE),
        "payment outcomes": {person: sorted(o) for person, o in outcomes.items()},
        "money": sorted(seen.balance.values()),
    }


async def settled(stack: Stack, ids: list[str], hooks: list[Webhook], *, in_order: bool,
                  timeout: float = 240) -> Observed:  # noqa: ASYNC109 - a polling deadline
    """Poll until the state equals the reference and nothing waits in an outbox. Out of order, memberships
    and pending activities are compared with the twin instead (see the module's docstring)."""
    ref = reference(hooks)
    deadline = time.monotonic() + timeout
    while True:
        seen = await observe(stack, ids, hooks)
        verdict = compare(ref, seen, hooks)
        # Memberships and pending activities are compared between the twins instead (see the docstring).
        problems = [p for p in verdict.problems
                    if in_order or not (p.startswith("memberships") or p.endswith("never became known)"))]
        if not problems:
            return seen
        assert time.monotonic() < deadline, "\n".join(problems)
        await asyncio.sleep(2)


@pytest.mark.timeout(600)
async def test_three_shuffled_concurrent_deliveries_end_like_one_ordered_delivery(stack: Stack) -> None:
    ordered_community, shuffled_community = await create_communities(stack, 2, tag="twins")
    # The same seed makes the same story twice (same people, texts' numbers, times, order), once per twin.
    now = datetime.now(UTC)
    ordered = generate([ordered_community], PER_COMMUNITY, plan=PLAN, rng=random.Random(2), people_tag="twin",
                       now=now)
    shuffled = generate([shuffled_community], PER_COMMUNITY, plan=PLAN, rng=random.Random(2), people_tag="twin",
                        now=now)
    assert [(h.kind, h.person, h.at) for h in ordered] == [(h.kind, h.person, h.at) for h in shuffled]
    for hook in shuffled:
        hook.after = None  # nothing waits for anything: refunds may overtake their payments

    stats = DriveStats()
    base = stack["gateway"].url
    async with httpx.AsyncClient(timeout=15) as client:
        for hook in ordered:  # one at a time, each answered before the next is sent
            await deliver(client, base, hook, stats, deadline=time.monotonic() + 300)
        copies = [hook for hook in shuffled for _ in range(COPIES)]
        random.Random(3).shuffle(copies)
        queue: asyncio.Queue[Webhook] = asyncio.Queue()
        for hook in copies:
            queue.put_nowait(hook)

        async def worker() -> None:
            while not queue.empty():
                await deliver(client, base, queue.get_nowait(), stats, deadline=time.monotonic() + 300)

        started = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(24)))
        seconds = time.monotonic() - started
    assert not stats.rejected, stats.rejected[:10]
    summary.load("duplicates and order (3 copies, shuffled)", webhooks=len(copies), seconds=seconds,
                 refused=stats.refused,
                 detail=stats.latency())

    # The gateway told the copies apart: exactly one accepted per webhook, every other copy a duplicate.
    assert all(h.answers == ["200:accepted"] for h in ordered), [h.answers for h in ordered if len(h.answers) > 1]
    wrong = [(h.kind, h.answers) for h in shuffled
             if [a for a in h.answers if a.startswith("200:")].count("200:accepted") != 1
             or sum(a.startswith("200:") for a in h.answers) != COPIES]
    assert not wrong, wrong[:10]

    first = await settled(stack, [ordered_community.id], ordered, in_order=True)
    second = await settled(stack, [shuffled_community.id], shuffled, in_order=False)
    a, b = state_by_person(first, ordered), state_by_person(second, shuffled)
    for aspect in a:
        assert a[aspect] == b[aspect], f"{aspect} differ:\n ordered:  {a[aspect]}\n shuffled: {b[aspect]}"
    overtaken = {h.person for h in shuffled if h.kind == "refund"} - {
        person for (_, person) in second.members}
    verdict = compare(reference(shuffled), second, shuffled)
    summary.records("duplicates and order", checked=verdict.checked, lost=verdict.lost,
                    duplicated=verdict.duplicated)
    print(f"\n{len(copies)} shuffled deliveries in {seconds:.1f} s ({stats.latency()}); "
          f"{len(overtaken)} refunds overtook their payment")
    dead = await dead_letters(stack)
    assert not dead, "\n".join(dead[:20])
