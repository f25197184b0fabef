"""The fan-out: pending deliveries become `chat.action.requested` commands, in `seq` order, within
each platform's rate limit.

One dispatcher publishes at a time across replicas (a PostgreSQL advisory lock, as the outbox relay
does), so the in-memory token buckets are the platform-wide rate; rows are also claimed with
`FOR UPDATE SKIP LOCKED`. A replica taking over starts with full buckets (one burst at most).
A command and its delivery's `sent` status commit together with the outbox row, so a crash neither
loses nor doubles a command. Content sends each group's command once: the gateway's bot-action worker
is the one place that retries, and its final `chat.action.completed` / `chat.action.failed` settles the
delivery (service.settle). A sent delivery's `next_attempt_at` becomes its give-up time; a pass also fails
the deliveries still unanswered then (service.give_up_unanswered).
"""

from __future__ import annotations

import logging
import zlib
from collections import Counter
from datetime import datetime, timedelta

from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import select

from content.broadcasts.service import claim_due, give_up_unanswered
from content.context import ContentContext
from content.models import Broadcast, BroadcastDelivery
from qunzhu_common.background import BackgroundLoop
from qunzhu_common.events.contracts.chat import ChatActionRequested

log = logging.getLogger(__name__)

_LOCK_KEY = zlib.crc32(b"qunzhu-content-dispatcher")


def post_id_of(broadcast: Broadcast) -> str | None:
    """A broadcast about a post (source_ref `post:<id>`, a published summary) names it in its commands."""
    ref = broadcast.source_ref or ""
    return ref.removeprefix("post:") if ref.startswith("post:") else None


class TokenBucket:
    def __init__(self, rate_per_s: float, burst: float) -> None:
        self.rate = rate_per_s
        self.capacity = max(1.0, burst)
        self.tokens = self.capacity
        self.at: datetime | None = None

    def available(self, now: datetime) -> float:
        if self.at is not None:
            elapsed = max(0.0, (now - self.at).total_seconds())
            self.tokens = min(self.capacity, self.tokens + elapsed * self.rate)
        self.at = now
        return self.tokens

    def take(self) -> None:
        self.tokens -= 1


class Dispatcher:
    def __init__(self, *, session_maker: async_sessionmaker[AsyncSession], ctx: ContentContext) -> None:
        self._session_maker = session_maker
        self._ctx = ctx
        self._buckets: dict[str, TokenBucket] = {}
        self._loop = BackgroundLoop("broadcast fan-out", self._pass, logger=log, backoff_s=0.2, max_backoff_s=10.0)

    def wake(self) -> None:
        self._loop.wake()

    def bucket(self, platform: str) -> TokenBucket:
        if platform not in self._buckets:
            settings = self._ctx.settings
            rate = settings.platform_rate_per_s.get(platform, settings.default_rate_per_s)
            self._buckets[platform] = TokenBucket(rate, rate * settings.rate_burst_s)
        return self._buckets[platform]

    async def run_once(self) -> int:
        """Send what is due and allowed now; returns how many commands were issued."""
        ctx = self._ctx
        now = ctx.clock.now()
        sent: list[BroadcastDelivery] = []
        limited: Counter[str] = Counter()
        latencies: list[float] = []
        async with self._session_maker() as session, session.begin():
            if session.bind.dialect.name == "postgresql":
                if not await session.scalar(select(func.pg_try_advisory_xact_lock(_LOCK_KEY))):
                    return 0
            rows = await claim_due(session, status="pending", now=now, limit=ctx.settings.dispatch_batch)
            await give_up_unanswered(session, ctx=ctx, now=now)
            if not rows:
                return 0
            broadcasts = {
                b.id: b
                for b in (
                    await session.execute(select(Broadcast).where(Broadcast.id.in_({r.broadcast_id for r in rows})))
                ).scalars()
            }
            give_up_after = timedelta(seconds=ctx.settings.delivery_gives_up_after_s)
            budget = {p: self.bucket(p).available(now) for p in {r.platform for r in rows}}
            commands = ctx.batch()
            for delivery in rows:
                if budget[delivery.platform] < 1:
                    limited[delivery.platform] += 1
                    continue
                budget[delivery.platform] -= 1
                self.bucket(delivery.platform).take()
                broadcast = broadcasts[delivery.broadcast_id]
                delivery.attempts += 1
                delivery.action_id = f"content:{delivery.broadcast_id}:{delivery.position}:{delivery.attempts}"
                delivery.status, delivery.sent_at = "sent", now
                delivery.next_attempt_at = now + give_up_after
                commands.emit(
                    type="chat.action.requested",
                    community_id=delivery.community_id,
                    data=ChatActionRequested(
                        action_id=delivery.action_id,
                        action=broadcast.action,
                        group_id=delivery.group_id,
                        text=broadcast.text,
                        mention_all=broadcast.mention_all,
                        relay_of_message_id=broadcast.relay_of_message_id,
                        requested_by="content",
                        post_id=post_id_of(broadcast),
                    ),
                )
                sent.append(delivery)
                if broadcast.origin_sent_at is not None:
                    latencies.append(max(0.0, (now - broadcast.origin_sent_at).total_seconds()))
            await commands.write(session)
        for delivery in sent:
            ctx.metrics.deliveries.labels(delivery.platform, "sent").inc()
        for platform, n in limited.items():
            ctx.metrics.rate_limited.labels(platform).inc(n)
        for latency in latencies:
            ctx.metrics.relay_latency.observe(latency)
        return len(sent)

    async def _pass(self) -> float:
        issued = await self.run_once()
        return 0 if issued else self._ctx.settings.dispatch_poll_s  # issued: more may be allowed at once

    def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()
