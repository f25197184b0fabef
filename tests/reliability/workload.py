"""The fault suite's traffic: paid communities set up through the real services, a mixed list of signed
webhooks (chat messages, 打卡 check-ins, 作业 homework, joins, Stripe payments and refunds), a driver that
delivers them as real providers do (retrying refused deliveries with the same id) and the reference
state the accepted list must produce under the default scoring rules.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx

from tests.integration.actions import OWNER, register_connector, webhook_secret
from tests.integration.stack import ACTOR_AUTH, GATEWAY_OPERATOR_KEY, STRIPE_WEBHOOK_SECRET, Stack

ZONE = ZoneInfo("Asia/Shanghai")  # the communities' default time zone: local days decide the caps
PRICE_FEN = 99_900
# The default rules (engagement/scoring/rules.py): check-in 5 (cap 5 a day: one per day counts), homework
# 10 (no cap), an effective message 1 (cap 20 a day, one per 60 s slot). Joins score nothing.
CHECKIN_POINTS, HOMEWORK_POINTS, MESSAGE_POINTS = 5, 10, 1
MESSAGE_DAILY_CAP, COOLDOWN_S = 20, 60
ACTIVITY_KIND = {"message": "message", "checkin": "checkin", "homework": "homework", "join": "group_join"}


@dataclass
class Community:
    id: str
    connector_id: str
    secret: str
    chat_id: str  # the platform's chat id; the person and group ids carry the `wechat:` prefix
    plan_id: str


@dataclass
class Webhook:
    kind: str  # message, checkin, homework, join, payment, refund
    community: Community
    person: str  # wechat:…
    delivery_id: str  # webhook-id (chat) or the Stripe event id
    body: bytes
    at: datetime  # when it happened (chat) or was paid/refunded
    payment_id: str = ""
    amount_fen: int = 0
    after: Webhook | None = None  # a refund is only sent once its payment was accepted
    # filled by the driver
    accepted: asyncio.Event | None = field(default=None, repr=False)
    answers: list[str] = field(default_factory=list)  # every attempt's outcome: 200:accepted, 503, error…

    @property
    def path(self) -> str:
        if self.kind in ("payment", "refund"):
            return "/webhooks/payments/stripe"
        return f"/webhooks/chat/{self.community.connector_id}"

    @property
    def source(self) -> str:
        return "stripe" if self.kind in ("payment", "refund") else f"chat:{self.community.connector_id}"

    @property
    def event_id(self) -> str:
        """The id the gateway gives the (single) event of this delivery: deterministic, see ingest.py."""
        from gateway.webhooks.ingest import EVENT_ID_NAMESPACE

        return str(uuid.uuid5(EVENT_ID_NAMESPACE, f"{self.source}/{self.delivery_id}/0"))

    @property
    def ok(self) -> bool:
        return bool(self.answers) and self.answers[-1].startswith("200:")

    def headers(self) -> dict[str, str]:
        """Signed now: a provider signs every attempt afresh (new timestamp, same id)."""
        stamp = int(time.time())
        if self.kind in ("payment", "refund"):
            import stripe

            signature = stripe.WebhookSignature.generate_signature_header(
                self.body.decode(), STRIPE_WEBHOOK_SECRET, timestamp=stamp)
            return {"Stripe-Signature": signature, "content-type": "application/json"}
        from gateway.webhooks.verify import sign_standard

        return {"webhook-id": self.delivery_id, "webhook-timestamp": str(stamp), "content-type": "application/json",
                "webhook-signature": sign_standard(self.community.secret, self.delivery_id, stamp, self.body)}


# -- set-up through the real services -------------------------------------------------------------------

async def create_communities(stack: Stack, count: int, *, tag: str) -> list[Community]:
    """Paid communities (owner OWNER) with a yearly plan and a generic chat connector of one group each."""
    membership, gateway = stack["membership"].url, stack["gateway"].url
    owner = {"X-Actor-Id": OWNER}
    made = []
    async with httpx.AsyncClient(timeout=30, auth=ACTOR_AUTH) as client:
        for index in range(count):
            response = await client.post(f"{membership}/communities", headers=owner, json={
                "name": f"故障实验 {tag} {index}", "positioning": "每天一个增长实验", "entry_policies": ["paid"]})
            assert response.status_code == 201, response.text
            cid = response.json()["id"]
            plan = await client.post(f"{membership}/communities/{cid}/plans", headers=owner, json={
                "name": "年费", "price_fen": PRICE_FEN, "term_type": "fixed_duration", "duration_days": 365})
            assert plan.status_code == 201, plan.text
            chat_id, secret = f"g-{tag}-{index}-{cid[:8]}", webhook_secret()
            # The gateway learns the community from membership's events, behind whatever the previous test
            # left in that topic: on a busy machine that backlog can take more than a minute.
            connector = await register_connector(client, gateway, cid, headers={"X-API-Key": GATEWAY_OPERATOR_KEY},
                                                 groups=[chat_id], secret=secret, timeout_s=300)
            made.append(Community(cid, connector["id"], secret, chat_id, plan.json()["id"]))
    return made


# -- the webhooks -----------------------------------------------------------------------------------------

def _chat(community: Community, kind: str, sender: str, at: datetime, text: str = "") -> Webhook:
    raw_sender = sender.removeprefix("wechat:")
    if kind == "join":
        payload = {"type": "member_joined", "group_id": community.chat_id, "member_id": raw_sender,
                   "display_name": raw_sender, "timestamp": at.isoformat()}
    else:
        payload = {"type": "message", "group_id": community.chat_id, "message_id": f"m-{uuid.uuid4().hex[:16]}",
                   "sender_id": raw_sender, "sender_name": raw_sender, "text": text, "timestamp": at.isoformat()}
    body = json.dumps(payload, ensure_ascii=False).encode()
    return Webhook(kind, community, sender, f"msg_{uuid.uuid4().hex}", body, at)


def _stripe_event(event_id: str, type_: str, obj: dict, at: datetime) -> bytes:
    return json.dumps({"id": event_id, "object": "event", "type": type_, "created": int(at.timestamp()),
                       "data": {"object": obj}}).encode()


def _payment(community: Community, payer: str, at: datetime) -> Webhook:
    payment = uuid.uuid4().hex[:20]
    metadata = {"community_id": community.id, "plan_id": community.plan_id, "payer_id": payer}
    body = _stripe_event(f"evt_{payment}", "checkout.session.completed", {
        "id": f"cs_{payment}", "object": "checkout.session", "payment_intent": f"pi_{payment}",
        "payment_status": "paid", "amount_total": PRICE_FEN, "currency": "cny", "metadata": metadata}, at)
    return Webhook("payment", community, payer, f"evt_{payment}", body, at, payment_id=f"pi_{payment}",
                   amount_fen=PRICE_FEN)


def _refund(paid: Webhook, at: datetime) -> Webhook:
    community = paid.community
    metadata = {"community_id": community.id, "plan_id": community.plan_id, "payer_id": paid.person}
    refund = uuid.uuid4().hex[:20]
    body = _stripe_event(f"evt_{refund}", "charge.refunded", {
        "id": f"ch_{refund}", "object": "charge", "payment_intent": paid.payment_id, "amount": paid.amount_fen,
        "amount_refunded": paid.amount_fen, "currency": "cny", "metadata": metadata,
        "refunds": {"data": [{"id": f"re_{refund}", "reason": "requested_by_customer"}]}}, at)
    return Webhook("refund", community, paid.person, f"evt_{refund}", body, at, payment_id=paid.payment_id,
                   amount_fen=paid.amount_fen, after=paid)


@dataclass
class Plan:
    """How many of each kind: payers who chat (some renew), payers who are refunded, joins, chat."""

    communities: int = 8
    chatters_per_community: int = 40
    refunded_per_community: int = 12
    renewal_share: float = 0.25
    checkin_share: float = 0.15
    homework_share: float = 0.10


def generate(communities: list[Community], total: int, *, plan: Plan, rng: random.Random,
             people_tag: str, now: datetime | None = None) -> list[Webhook]:
    """`total` webhooks: every payer pays (chatters, refunded payers), a quarter of the chatters renew, every
    payer joins the group, the rest is chat by the chatters spread over the last 5 local days. Refunds come
    after their payment in the list (and the driver sends them once it was accepted)."""
    now = now or datetime.now(UTC)
    start = datetime.combine(now.astimezone(ZONE).date() - timedelta(days=5), datetime.min.time(), ZONE)
    span_s = 5 * 86400
    fixed: list[Webhook] = []
    refunds: list[Webhook] = []
    chatters: list[tuple[Community, str]] = []
    for c_index, community in enumerate(communities):
        for p in range(plan.chatters_per_community):
            person = f"wechat:{people_tag}-c{c_index}-p{p}"
            chatters.append((community, person))
            fixed.append(_payment(community, person, now - timedelta(minutes=rng.randint(1, 600))))
            if rng.random() < plan.renewal_share:
                fixed.append(_payment(community, person, now - timedelta(minutes=rng.randint(1, 600))))
            fixed.append(_chat(community, "join", person, start + timedelta(seconds=rng.randrange(span_s))))
        for r in range(plan.refunded_per_community):
            person = f"wechat:{people_tag}-c{c_index}-r{r}"
            paid = _payment(community, person, now - timedelta(minutes=rng.randint(30, 600)))
            fixed.append(paid)
            fixed.append(_chat(community, "join", person, start + timedelta(seconds=rng.randrange(span_s))))
            refunds.append(_refund(paid, now - timedelta(minutes=rng.randint(0, 29))))
    chat_count = total - len(fixed) - len(refunds)
    assert chat_count > 0, "the plan leaves no room for chat"
    counters: Counter[str] = Counter()
    hooks = list(fixed)
    for _ in range(chat_count):
        community, person = rng.choice(chatters)
        at = start + timedelta(seconds=rng.randrange(span_s))
        roll = rng.random()
        counters[person] += 1
        n = counters[person]
        if roll < plan.checkin_share:
            hooks.append(_chat(community, "checkin", person, at, f"打卡 第{n}天 读完增长黑客第{n}章"))
        elif roll < plan.checkin_share + plan.homework_share:
            hooks.append(_chat(community, "homework", person, at, f"作业 第{n}次：落地页实验的复盘报告"))
        else:
            # Unique text (no repeat strike), long enough, no link, no noise pattern: an effective message.
            hooks.append(_chat(community, "message", person, at,
                               f"今天的第{n}个增长实验：注册页按钮换成绿色，转化率变化记录 {uuid.uuid4().hex[:6]}"))
    rng.shuffle(hooks)
    for refund in refunds:  # somewhere after its payment
        position = hooks.index(refund.after)  # type: ignore[arg-type]
        hooks.insert(rng.randint(position + 1, len(hooks)), refund)
    return hooks


# -- the driver ---------------------------------------------------------------------------------------------

@dataclass
class DriveStats:
    seconds: float = 0.0
    attempts: int = 0
    refused: int = 0  # 5xx, 429, connection errors, timeouts: retried with the same id
    rejected: list[str] = field(default_factory=list)  # 4xx other than 429: not retried, a defect
    statuses: Counter[str] = field(default_factory=Counter)
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))  # chat/stripe → s
    refused_at: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))  # answer → monotonic

    def refusals(self, origin: float) -> str:
        """When each kind of refusal happened, in seconds after `origin`."""
        return ", ".join(f"{answer} ×{len(at)} at {min(at) - origin:.0f}–{max(at) - origin:.0f} s"
                         for answer, at in sorted(self.refused_at.items()))

    def latency(self) -> str:
        """p50/p99 of the answered requests, chat and Stripe apart."""
        parts = []
        for route, values in sorted(self.latencies.items()):
            ordered = sorted(values)
            p50, p99 = ordered[len(ordered) // 2], ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
            parts.append(f"{route} p50 {p50 * 1000:.0f} ms p99 {p99 * 1000:.0f} ms")
        return ", ".join(parts)


async def deliver(client: httpx.AsyncClient, base_url: str, hook: Webhook, stats: DriveStats, *,
                  deadline: float) -> None:
    """Deliver until a 2xx (accepted or duplicate), as a provider retries: same id, fresh signature."""
    if hook.after is not None and hook.after.accepted is not None:
        await asyncio.wait_for(hook.after.accepted.wait(), timeout=max(1.0, deadline - time.monotonic()))
    backoff = 0.2
    while True:
        stats.attempts += 1
        sent = time.perf_counter()
        try:
            response = await client.post(base_url + hook.path, content=hook.body, headers=hook.headers())
        except httpx.TransportError as exc:
            answer = f"error:{type(exc).__name__}"
        else:
            stats.latencies["stripe" if hook.kind in ("payment", "refund") else "chat"].append(
                time.perf_counter() - sent)
            if response.status_code == 200:
                answer = f"200:{response.json().get('status')}"
            else:
                answer = str(response.status_code)
        hook.answers.append(answer)
        stats.statuses[answer] += 1
        if answer.startswith("200:"):
            if hook.accepted is not None:
                hook.accepted.set()
            return
        if answer[0] == "4" and answer != "429":
            stats.rejected.append(f"{hook.kind} {hook.delivery_id}: {answer} {response.text[:200]}")
            return
        stats.refused += 1
        stats.refused_at[answer].append(time.monotonic())
        if time.monotonic() > deadline:
            raise AssertionError(f"{hook.kind} {hook.delivery_id} still refused at the deadline: {hook.answers}")
        await asyncio.sleep(backoff * (0.5 + random.random()))
        backoff = min(2.0, backoff * 2)


async def drive(base_url: str, hooks: list[Webhook], *, rate: float, concurrency: int, deadline_s: float,
                on_progress=None) -> DriveStats:  # noqa: ANN001 - a callback
    """Start webhook i at `i / rate` seconds (or as soon as a worker is free), `concurrency` at once."""
    stats = DriveStats()
    for hook in hooks:
        hook.accepted = asyncio.Event()
    queue: asyncio.Queue[tuple[int, Webhook]] = asyncio.Queue()
    for item in enumerate(hooks):
        queue.put_nowait(item)
    started = time.monotonic()
    deadline = started + deadline_s
    done = 0

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal done
        while True:
            try:
                index, hook = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            delay = started + index / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            await deliver(client, base_url, hook, stats, deadline=deadline)
            done += 1
            if on_progress is not None:
                on_progress(done)

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=15, limits=limits) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    stats.seconds = time.monotonic() - started
    return stats


# -- the reference ----------------------------------------------------------------------------------------

def local_day(at: datetime) -> date:
    return at.astimezone(ZONE).date()


@dataclass
class Reference:
    points: dict[tuple[str, str], int]  # (community, person) → points
    entries: dict[tuple[str, str, str], int]  # (community, person, rule type) → ledger rows
    activities: dict[str, str]  # event id → activity kind
    members: dict[tuple[str, str], str]  # (community, person) → membership status
    payments: dict[str, str]  # payment id → outcome
    balance: dict[str, int]  # community → sum of its ledger entries (fen)
    payment_events: set[str]  # event ids membership must have consumed


def reference(hooks: list[Webhook]) -> Reference:
    """What exactly one effect per accepted webhook gives under the default rules (order does not matter:
    caps are per local day, the cooldown uses fixed 60 s slots)."""
    accepted = [h for h in hooks if h.ok]
    slots: dict[tuple[str, str, date], set[int]] = defaultdict(set)
    checkin_days: set[tuple[str, str, date]] = set()
    homework: Counter[tuple[str, str]] = Counter()
    activities: dict[str, str] = {}
    paid: dict[tuple[str, str], list[Webhook]] = defaultdict(list)
    refunded: set[str] = set()
    for hook in accepted:
        key = (hook.community.id, hook.person)
        if hook.kind in ACTIVITY_KIND:
            activities[hook.event_id] = ACTIVITY_KIND[hook.kind]
        if hook.kind == "message":
            slots[(*key, local_day(hook.at))].add(int(hook.at.timestamp()) // COOLDOWN_S)
        elif hook.kind == "checkin":
            checkin_days.add((*key, local_day(hook.at)))
        elif hook.kind == "homework":
            homework[key] += 1
        elif hook.kind == "payment":
            paid[key].append(hook)
        elif hook.kind == "refund":
            refunded.add(hook.payment_id)
    points: Counter[tuple[str, str]] = Counter()
    entries: Counter[tuple[str, str, str]] = Counter()
    for (cid, person, _day), slot_set in slots.items():
        scored = min(MESSAGE_DAILY_CAP, len(slot_set))
        points[(cid, person)] += scored * MESSAGE_POINTS
        entries[(cid, person, "effective_message")] += scored
    for cid, person, _day in checkin_days:
        points[(cid, person)] += CHECKIN_POINTS
        entries[(cid, person, "checkin")] += 1
    for (cid, person), n in homework.items():
        points[(cid, person)] += n * HOMEWORK_POINTS
        entries[(cid, person, "homework_submitted")] += n
    members, payments, balance = {}, {}, Counter()
    for key, payer_hooks in paid.items():
        live = [h for h in payer_hooks if h.payment_id not in refunded]
        members[key] = "active" if live else "removed"
        for h in payer_hooks:
            payments[h.payment_id] = "refunded" if h.payment_id in refunded else "granted"
            balance[h.community.id] += 0 if h.payment_id in refunded else h.amount_fen
    return Reference(dict(points), dict(entries), activities, members, payments, dict(balance),
                     {h.event_id for h in accepted if h.kind in ("payment", "refund")})
