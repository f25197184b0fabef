"""Reading the real state (PostgreSQL of each service, Kafka's dead-letter topics) and comparing it with
the reference: every difference is named, so a failure says which effect was lost or doubled."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from qunzhu_common.events.topics import ALL_TOPICS, dlq_topic
from tests.integration.probes import query, read_topic
from tests.integration.stack import SERVICES, Stack
from tests.reliability.workload import Reference, Webhook


@dataclass
class Observed:
    points: dict[tuple[str, str], int]
    entries: dict[tuple[str, str, str], int]
    activities: Counter[tuple[str, str]]  # (event id, kind) → rows
    unscored: int  # activities still pending
    members: dict[tuple[str, str], str]
    payments: dict[str, str]
    balance: dict[str, int]
    consumed_payment_events: set[str]
    deliveries: int  # gateway's dedupe rows for the driver's sources
    gateway_events: Counter[str]  # event id → rows in the gateway's outbox
    backlog: dict[str, int] = field(default_factory=dict)  # service → unpublished outbox rows


async def observe(stack: Stack, community_ids: list[str], hooks: list[Webhook]) -> Observed:
    eng, mem, gw = (stack.postgres.url(s) for s in ("engagement", "membership", "gateway"))
    ledger = await query(eng, "SELECT community_id, person_id, rule_type, count(*) AS n, sum(points) AS p "
                              "FROM points_ledger WHERE community_id = ANY($1::text[]) "
                              "GROUP BY community_id, person_id, rule_type", community_ids)
    points: Counter[tuple[str, str]] = Counter()
    entries: dict[tuple[str, str, str], int] = {}
    for r in ledger:
        points[(r["community_id"], r["person_id"])] += int(r["p"])
        entries[(r["community_id"], r["person_id"], r["rule_type"])] = int(r["n"])
    rows = await query(eng, "SELECT source_event_id, kind, count(*) AS n, "
                            "sum(CASE WHEN status = 'scored' THEN 0 ELSE 1 END) AS pending "
                            "FROM activity WHERE community_id = ANY($1::text[]) GROUP BY source_event_id, kind",
                       community_ids)
    activities = Counter({(r["source_event_id"], r["kind"]): int(r["n"]) for r in rows})
    unscored = sum(int(r["pending"]) for r in rows)
    members = {(r["community_id"], r["member_id"]): r["status"] for r in await query(
        mem, "SELECT community_id, member_id, status FROM membership "
             "WHERE community_id = ANY($1::text[]) AND role = 'member'", community_ids)}
    payments = {r["payment_id"]: r["outcome"] for r in await query(
        mem, "SELECT payment_id, outcome FROM payment WHERE community_id = ANY($1::text[])", community_ids)}
    balance = {r["community_id"]: int(r["total"]) for r in await query(
        mem, "SELECT community_id, sum(amount_fen) AS total FROM ledger_entry "
             "WHERE community_id = ANY($1::text[]) GROUP BY community_id", community_ids)}
    payment_ids = [h.event_id for h in hooks if h.kind in ("payment", "refund")]
    consumed = {r["event_id"] for r in await query(
        mem, "SELECT event_id FROM inbox WHERE consumer = 'membership' AND event_id = ANY($1::text[])", payment_ids)}
    sources = sorted({h.source for h in hooks})
    ids = [h.delivery_id for h in hooks]
    deliveries = (await query(gw, "SELECT count(*) AS n FROM webhook_delivery WHERE source = ANY($1::text[]) "
                                  "AND delivery_id = ANY($2::text[])", sources, ids))[0]["n"]
    gateway_events = Counter({r["event_id"]: int(r["n"]) for r in await query(
        gw, "SELECT event_id, count(*) AS n FROM outbox WHERE event_id = ANY($1::text[]) GROUP BY event_id",
        [h.event_id for h in hooks])})
    backlog = {}
    for service in SERVICES:
        backlog[service] = int((await query(stack.postgres.url(service),
                                            "SELECT count(*) AS n FROM outbox WHERE published_at IS NULL"))[0]["n"])
    return Observed(dict(points), entries, activities, unscored, members, payments, balance, consumed,
                    int(deliveries), gateway_events, backlog)


@dataclass
class Verdict:
    problems: list[str]
    checked: int  # accepted webhooks whose effect was checked
    lost: int
    duplicated: int


def compare(ref: Reference, seen: Observed, hooks: list[Webhook]) -> Verdict:
    """Every accepted webhook once: in the gateway's outbox, as an activity or a consumed payment event,
    in the points and memberships the reference expects; nothing left in any outbox."""
    accepted = [h for h in hooks if h.ok]
    problems: list[str] = []
    lost: set[str] = set()
    duplicated: set[str] = set()
    # The gateway: one dedupe row per accepted delivery, one outbox event per accepted delivery.
    if seen.deliveries != len(accepted):
        problems.append(f"gateway: {seen.deliveries} webhook_delivery rows for {len(accepted)} accepted webhooks")
    for hook in accepted:
        rows = seen.gateway_events.get(hook.event_id, 0)
        if rows == 0:
            lost.add(hook.event_id)
        elif rows > 1:
            duplicated.add(hook.event_id)
    # Engagement: one activity per accepted chat webhook, all of them scored.
    for event_id, kind in ref.activities.items():
        rows = seen.activities.get((event_id, kind), 0)
        if rows == 0:
            lost.add(event_id)
        elif rows > 1:
            duplicated.add(event_id)
    extra = {key for key in seen.activities if key[0] not in ref.activities}
    if extra:
        problems.append(f"engagement: {len(extra)} activities from no accepted webhook, e.g. {sorted(extra)[:3]}")
    if seen.unscored:
        problems.append(f"engagement: {seen.unscored} activities still pending (their member never became known)")
    # Membership: every accepted payment and refund consumed.
    missing_payments = ref.payment_events - seen.consumed_payment_events
    lost |= missing_payments
    if lost:
        problems.append(f"{len(lost)} accepted webhooks without their effect, e.g. {sorted(lost)[:5]}")
    if duplicated:
        problems.append(f"{len(duplicated)} accepted webhooks with more than one effect, e.g. {sorted(duplicated)[:5]}")
    _diff(problems, "points", ref.points, seen.points)
    _diff(problems, "ledger rows", ref.entries, seen.entries)
    _diff(problems, "memberships", ref.members, seen.members)
    _diff(problems, "payments", ref.payments, seen.payments)
    _diff(problems, "money ledger balance", ref.balance, seen.balance)
    undrained = {s: n for s, n in seen.backlog.items() if n}
    if undrained:
        problems.append(f"outboxes not drained: {undrained}")
    return Verdict(problems, len(accepted), len(lost), len(duplicated))


def _diff(problems: list[str], what: str, expected: dict, actual: dict) -> None:
    keys = {k for k in expected.keys() | actual.keys() if expected.get(k, 0) != actual.get(k, 0)}
    if keys:
        sample = [(k, expected.get(k), actual.get(k)) for k in sorted(keys, key=str)[:5]]
        problems.append(f"{what}: {len(keys)} differ (key, expected, actual), e.g. {sample}")


async def dead_letters(stack: Stack) -> list[str]:
    """Every record in every dead-letter topic, described by its headers."""
    found = []
    for topic in ALL_TOPICS:
        for record in await read_topic(stack.kafka.bootstrap, dlq_topic(topic)):
            headers = {k: v.decode(errors="replace") for k, v in record.headers or ()}
            found.append(f"{dlq_topic(topic)}: group={headers.get('x-dlq-consumer-group')} "
                         f"error={headers.get('x-dlq-error-type')}: {headers.get('x-dlq-error', '')[:300]}")
    return found
