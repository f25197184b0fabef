"""Executes pending bot actions: claim, rate-limit per group and per platform, call, settle, emit.

A claim moves `next_attempt_at` forward by a lease under an optimistic check on `attempts`, so two
replicas never run the same attempt and a crashed worker's claim simply expires. Completion (or the last
failure) and its `chat.action.completed` / `chat.action.failed` event commit together. A platform may
still receive an action twice if the process dies between its call and the commit (at least once);
the outbound bridge gets the action id as Idempotency-Key for that reason.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select, update

from gateway.actions.platforms import EXECUTORS, Result
from gateway.actions.qq import with_reply_target
from gateway.chatdir.render import render
from gateway.models import BotAction, ConnectorGroup
from gateway.ratelimit import TokenBuckets
from gateway.settings import GatewaySettings
from gateway.state import GatewayState
from qunzhu_common.background import BackgroundLoop
from qunzhu_common.context import correlation_id_var
from qunzhu_common.events.contracts.chat import ChatActionSettled
from qunzhu_common.timeutil import utcnow

log = logging.getLogger(__name__)
BATCH = 200  # actions read per pass
PER_GROUP = 10  # of them at most this many per group


class ActionWorker:
    def __init__(self, state: GatewayState, client: httpx.AsyncClient) -> None:
        self.state = state
        self.settings = state.settings
        self.client = client
        self.groups = TokenBuckets(
            rate_per_s=self.settings.action_group_rate_per_s, burst=self.settings.action_group_burst
        )
        self.platforms = TokenBuckets(
            rate_per_s=self.settings.action_platform_rate_per_s, burst=self.settings.action_platform_burst
        )
        self._loop = BackgroundLoop("bot actions", self._pass, logger=log, traceback=True)

    @property
    def _sessions(self):
        return self.state.runtime.session_maker

    async def run_once(self) -> int:
        """One pass over the oldest pending actions of each group; returns how many were attempted.

        A group's actions go out in the order they were asked: its first pending action that is not due
        yet (deferred by a rate limit, waiting for a retry) holds back the ones after it. Reading only the
        first PER_GROUP of every group keeps one busy group's backlog from filling the pass, so the other
        groups are served meanwhile.
        """
        position = func.row_number().over(
            partition_by=BotAction.group_id, order_by=(BotAction.created_at, BotAction.action_id)
        ).label("position")
        heads = select(BotAction.action_id, position).where(BotAction.status == "pending").subquery()
        async with self._sessions() as session:
            rows = (await session.execute(
                select(BotAction).join(heads, heads.c.action_id == BotAction.action_id)
                .where(heads.c.position <= PER_GROUP)
                .order_by(BotAction.created_at, BotAction.action_id).limit(BATCH)
            )).scalars().all()
        attempted = 0
        blocked: set[str] = set()
        now = utcnow()
        for row in rows:
            if row.group_id in blocked:
                continue  # nothing overtakes an earlier action of the same group
            if row.next_attempt_at > now or not await self._admit(row):
                blocked.add(row.group_id)
                continue
            attempted += await self._attempt(row)
        return attempted

    async def _admit(self, row: BotAction) -> bool:
        wait = self.groups.take(row.group_id) or self.platforms.take(row.group_id.partition(":")[0])
        if wait <= 0:
            return True
        await self._defer(row, wait)
        return False

    async def _defer(self, row: BotAction, wait_s: float) -> None:
        async with self._sessions() as session, session.begin():
            await session.execute(update(BotAction).where(
                BotAction.action_id == row.action_id, BotAction.attempts == row.attempts, BotAction.status == "pending",
            ).values(next_attempt_at=utcnow() + timedelta(seconds=wait_s)))

    async def _attempt(self, row: BotAction) -> int:
        lease = timedelta(seconds=self.settings.action_timeout_s * 3)
        async with self._sessions() as session, session.begin():
            claimed = await session.execute(update(BotAction).where(
                BotAction.action_id == row.action_id, BotAction.attempts == row.attempts, BotAction.status == "pending",
            ).values(attempts=row.attempts + 1, next_attempt_at=utcnow() + lease))
        if claimed.rowcount != 1:
            return 0  # another replica has it
        attempts = row.attempts + 1
        platform, result = await self._execute(row)
        outcome = result.outcome
        if outcome == "retry":
            outcome = "retried" if attempts < self.settings.action_max_attempts else "failed"
        self.state.metrics.bot_actions.labels(platform, row.action, outcome).inc()
        await self._settle(row, attempts, result)
        return 1

    async def _execute(self, row: BotAction) -> tuple[str, Result]:
        async with self._sessions() as session:
            connector_id = row.connector_id
            if connector_id is None:
                mapping = await session.get(ConnectorGroup, row.group_id)
                connector_id = mapping.connector_id if mapping is not None else None
            if connector_id is None:
                return "unknown", Result("failed", f"no connector serves {row.group_id}")
            try:
                connector = await self.state.connectors.get(session, box=self.state.box, connector_id=connector_id)
            except Exception as exc:  # deleted since the action was asked
                return "unknown", Result("failed", f"connector {connector_id}: {exc}")
            request = await render(session, row.request)  # names as the platform last reported them
            if connector.platform == "qq":  # the official bot speaks in a group only as a passive reply
                request = await with_reply_target(session, request)
        started = time.perf_counter()
        try:
            result = await EXECUTORS[connector.platform](self.client, self.settings, connector, request)
        except httpx.HTTPError as exc:
            result = Result("retry", f"{connector.platform}: {type(exc).__name__}")
        self.state.metrics.bot_action_duration.labels(connector.platform).observe(time.perf_counter() - started)
        return connector.platform, result

    async def _settle(self, row: BotAction, attempts: int, result: Result) -> None:
        now = utcnow()
        final = result.outcome != "retry" or attempts >= self.settings.action_max_attempts
        token = correlation_id_var.set(f"action:{row.action_id}"[:200])
        try:
            async with self._sessions() as session, session.begin():
                if not final:
                    backoff = self.settings.action_backoff_s * 2 ** (attempts - 1) * (1 + random.random() / 4)
                    delay = min(300.0, max(backoff, result.retry_after_s or 0.0))
                    await session.execute(update(BotAction).where(BotAction.action_id == row.action_id).values(
                        next_attempt_at=now + timedelta(seconds=delay), last_error=result.error[:2000]))
                    return
                status = "completed" if result.outcome == "completed" else "failed"
                values: dict = dict(status=status, settled_at=now, last_error=result.error[:2000])
                if row.action_id.startswith("login-code:"):
                    values["request"] = {**row.request, "text": "[login code redacted]"}  # no one reads it later
                await session.execute(update(BotAction).where(BotAction.action_id == row.action_id).values(**values))
                await self.state.runtime.outbox.emit(
                    session, type=f"chat.action.{status}", community_id=row.community_id,
                    data=ChatActionSettled(action_id=row.action_id, action=row.action, group_id=row.group_id,
                                           attempts=attempts, error=result.error[:2000], settled_at=now),
                )
        finally:
            correlation_id_var.reset(token)
        if status == "failed":
            log.warning("bot action %s failed after %d attempts: %s", row.action_id, attempts, result.error)

    async def _pass(self) -> float:
        return 0 if await self.run_once() else self.settings.action_poll_interval_s

    def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()


def actions_lifespan(settings: GatewaySettings):
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        timeout = httpx.Timeout(settings.action_timeout_s, connect=min(5.0, settings.action_timeout_s))
        async with httpx.AsyncClient(timeout=timeout, follow_redirects=False) as client:
            worker = ActionWorker(app.state.gateway, client)
            app.state.action_worker = worker
            if settings.run_actions:
                worker.start()
            try:
                yield
            finally:
                await worker.stop()

    return lifespan
