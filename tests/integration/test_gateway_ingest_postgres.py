"""The chat group commit on a real PostgreSQL (#19): the fast path (gateway.webhooks.fastpath — one statement
on asyncpg's own connection) and its fall-backs write exactly what the general path writes on SQLite.

The same deliveries — captured once from the real webhook pipeline (signed generic deliveries, verified and
normalised) — are committed in the same batches by the embedded gateway (SQLite, BatchRecorder) and by a
gateway on PostgreSQL; every answer and every row that matters (dedupe rows, message keys, names, pending
mentions, outbox events with their bytes less the time they were built) must be the same. The batches cover
what the fast path must get right or hand over: replays, a delivery twice in one batch, one message under
two delivery ids (across batches and within one), a recall ahead of its message, a delivery of two events,
renames, an @-name to resolve (handed over), a pending mention resolved by a newcomer (rolled back, handed
over) and a quarantined delivery (handed over).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from gateway.app import create_app
from gateway.settings import GatewaySettings
from gateway.webhooks import fastpath
from gateway.webhooks.batch import Delivery
from gateway.webhooks.ingest import Outcome
from gateway.webhooks.verify import sign_standard

pytestmark = pytest.mark.integration

ADMIN = "test-admin-key-" + "x" * 20
COMMUNITY = "c-ingest"


@pytest.fixture
def database(fresh_database: Callable[[str], str]) -> str:
    return fresh_database("gw")


def settings(tmp: Path, database_url: str) -> GatewaySettings:
    tmp.mkdir(parents=True, exist_ok=True)
    return GatewaySettings(data_dir=tmp, database_url=database_url, admin_api_key=ADMIN, run_relay=False,
                           bus_path=str(tmp / "bus.sqlite3"), webhook_rate_per_s=1e6, webhook_burst=1_000_000)


def message(n: int | str, sender: str, name: str, *, text_: str = "打卡", mention_names: list[str] | None = None,
            message_id: str | None = None) -> dict[str, Any]:
    body = {"type": "message", "group_id": "g1", "message_id": message_id or f"m{n}", "sender_id": sender,
            "sender_name": name, "text": text_, "timestamp": "2026-12-07T08:00:00+08:00"}
    if mention_names:
        body["mention_names"] = mention_names
    return body


# (webhook-id, body): each becomes one verified, normalised Delivery.
DELIVERIES: dict[str, dict[str, Any]] = {
    "d1": message(1, "u1", "阿杰"), "d2": message(2, "u2", "小美", text_="大家好"), "d3": message(3, "u1", "阿杰"),
    "d2-again": message(2, "u2", "小美", text_="大家好"),  # the same message, a new delivery id (a bridge re-posting)
    "d4": message(4, "u3", "老王"), "d4-twin": message(4, "u3", "老王"),  # both in one batch: the first wins
    "r5": {"type": "message_recalled", "group_id": "g1", "message_id": "m5", "sender_id": "u1",
           "timestamp": "2026-12-07T08:01:00+08:00"},
    "d5": message(5, "u1", "阿杰"),  # after its recall in the same batch: a repeat
    "two": {"events": [message(6, "u2", "小美美"), {"type": "reaction", "group_id": "g1", "message_id": "m1",
                                                    "reactor_id": "u2", "target_sender_id": "u1", "emoji": "👍",
                                                    "timestamp": "2026-12-07T08:02:00+08:00"}]},
    "renamed": {"type": "member_renamed", "group_id": "g1", "member_id": "u3", "display_name": "王老师",
                "timestamp": "2026-12-07T08:03:00+08:00"},
    "at-known": message(7, "u1", "阿杰", text_="@小美美 交作业", mention_names=["小美美"]),
    "at-unknown": message(8, "u2", "小美美", text_="@大刘 在吗", mention_names=["大刘"]),
    "newcomer": message(9, "u9", "大刘"),  # resolves the pending mention of at-unknown
    "plain": message(10, "u9", "大刘"),
    "broken": {"type": "no-such-type", "group_id": "g1"},  # verified but unnormalisable: quarantined
}
BATCHES = [
    ["d1", "d2", "d3"],
    ["d1", "d2-again", "d4", "d4-twin", "d4"],
    ["r5", "d5", "two", "renamed"],
    ["at-known", "d2"],
    ["at-unknown"],
    ["newcomer", "d1"],
    ["broken", "plain"],
]


async def capture(app: Any) -> dict[str, Delivery]:
    """Every delivery of DELIVERIES through the real webhook pipeline, stopped at the group commit."""
    state = app.state.gateway
    captured: list[Delivery] = []

    async def hold(item: Delivery) -> Outcome:
        captured.append(item)
        return Outcome("accepted", events=len(item.events))

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        secret = "whsec_" + base64.b64encode(os.urandom(24)).decode()
        response = await client.post(
            f"/api/v1/communities/{COMMUNITY}/connectors", headers={"X-API-Key": ADMIN},
            json={"community_id": COMMUNITY, "platform": "generic", "identity_platform": "wechat", "groups": ["g1"],
                  "secrets": {"signing_secrets": [secret]}})
        assert response.status_code == 201, response.text
        connector = response.json()["id"]
        real, state.ingest.submit = state.ingest.submit, hold
        try:
            stamp = int(time.time())
            for webhook_id, body in DELIVERIES.items():
                raw = json.dumps(body, ensure_ascii=False).encode()
                response = await client.post(
                    f"/webhooks/chat/{connector}", content=raw,
                    headers={"content-type": "application/json", "webhook-id": webhook_id,
                             "webhook-timestamp": str(stamp),
                             "webhook-signature": sign_standard(secret, webhook_id, stamp, raw)})
                assert response.status_code == 200, response.text
        finally:
            state.ingest.submit = real
    assert len(captured) == len(DELIVERIES)
    return dict(zip(DELIVERIES, captured, strict=True))


async def commit_batches(app: Any, deliveries: dict[str, Delivery],
                         before_each: Callable[[], Any] | None = None) -> list[list[str]]:
    """Each batch submitted at once (queued in one loop turn: one group commit); the answers' statuses."""
    ingest = app.state.gateway.ingest
    answers = []
    for batch in BATCHES:
        if before_each is not None:
            await before_each()
        outcomes = await asyncio.gather(*(ingest.submit(deliveries[name]) for name in batch))
        answers.append([f"{o.status}:{o.events}" for o in outcomes])
    return answers


def _without_times(payload: bytes) -> dict[str, Any]:
    envelope = json.loads(payload)
    envelope.pop("occurred_at", None)
    envelope.get("data", {}).pop("resolved_at", None)
    return envelope


async def rows(app: Any) -> dict[str, list[Any]]:
    engine = app.state.runtime.engine
    async with engine.connect() as conn:
        async def all_(sql: str) -> list[tuple[Any, ...]]:
            return sorted(tuple(r) for r in (await conn.execute(text(sql))).all())

        return {
            "deliveries": await all_("SELECT source, delivery_id, outcome, event_count FROM webhook_delivery"),
            "messages": await all_("SELECT group_id, message_id, delivery_id FROM chat_message_seen"),
            "names": await all_("SELECT group_id, person_id, community_id, display_name, username, display_key, "
                                "username_key FROM chat_name"),
            "pending": await all_(
                "SELECT community_id, group_id, message_id, sender_id, name FROM chat_pending_mention"),
            "outbox": [(r[0], r[1], r[2], r[3], _without_times(r[4])) for r in await all_(
                "SELECT event_id, topic, key, event_type, payload FROM outbox")],
            "quarantine": await all_("SELECT source, delivery_id, reason FROM quarantined_webhook"),
        }


async def test_the_fast_path_writes_what_the_general_path_writes(database: str, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    used = {"fast": 0, "fell_back": 0}
    original = fastpath.FastBatch.__call__

    async def counted(self: fastpath.FastBatch, connection: Any, batch: Any) -> Any:
        try:
            result = await original(self, connection, batch)
        except fastpath.FallBack:
            used["fell_back"] += 1
            raise
        used["fast"] += 1
        return result

    monkeypatch.setattr(fastpath.FastBatch, "__call__", counted)

    embedded = create_app(settings(tmp_path / "sqlite", f"sqlite+aiosqlite:///{tmp_path / 'gateway.sqlite3'}"))
    async with embedded.router.lifespan_context(embedded):
        deliveries = await capture(embedded)
        assert deliveries["broken"].quarantine_reason is not None
        assert deliveries["at-unknown"].events[0].mention_names == ("大刘",)
        expected_answers = await commit_batches(embedded, deliveries)
        expected = await rows(embedded)
    assert used == {"fast": 0, "fell_back": 0}  # SQLite: the general path only

    on_postgres = create_app(settings(tmp_path / "pg", database))
    async with on_postgres.router.lifespan_context(on_postgres):
        answers = await commit_batches(on_postgres, deliveries)
        found = await rows(on_postgres)

    assert answers == expected_answers
    for table in expected:
        assert found[table] == expected[table], table
    # The batches meant to: plain ones on the fast path, the newcomer's rolled back and handed over; the
    # @-name and quarantine batches never tried it.
    assert used == {"fast": 3, "fell_back": 1}
    # And the story is the one intended, not just the same twice.
    assert expected_answers[1] == ["duplicate:0", "duplicate:0", "accepted:1", "duplicate:0", "duplicate:0"]
    assert expected_answers[2] == ["accepted:1", "duplicate:0", "accepted:2", "accepted:1"]
    assert ("wechat:g1", "wechat:u3", "c-ingest", "王老师") in {row[:4] for row in expected["names"]}
    assert any(e[3] == "chat.mention.resolved" for e in expected["outbox"])
    assert expected["pending"] == []
    assert len(expected["quarantine"]) == 1


async def test_connections_killed_before_every_batch_cost_nothing(database: str, tmp_path: Path) -> None:
    """Every connection of the gateway's database terminated before each batch (a failover, an idle-session
    reaper): the writer's kept connection and its early BEGIN fail, the batch is written again one by one on a
    fresh connection — and the answers and rows are those of an undisturbed run."""
    embedded = create_app(settings(tmp_path / "sqlite", f"sqlite+aiosqlite:///{tmp_path / 'gateway.sqlite3'}"))
    async with embedded.router.lifespan_context(embedded):
        deliveries = await capture(embedded)
        expected_answers = await commit_batches(embedded, deliveries)
        expected = await rows(embedded)

    import asyncpg

    admin = await asyncpg.connect(database.replace("postgresql+asyncpg", "postgresql"))
    killed: list[int] = []

    async def kill_every_other_connection() -> None:
        await asyncio.sleep(0.01)  # the previous batch's callers answered, its writer back to waiting
        killed.append(len(await admin.fetch(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()")))

    try:
        on_postgres = create_app(settings(tmp_path / "pg", database))
        async with on_postgres.router.lifespan_context(on_postgres):
            answers = await commit_batches(on_postgres, deliveries, before_each=kill_every_other_connection)
            found = await rows(on_postgres)
    finally:
        await admin.close()
    assert sum(killed[1:]) >= len(BATCHES) - 1  # the writer's kept connection, at least, before every batch
    assert answers == expected_answers
    for table in expected:
        assert found[table] == expected[table], table
