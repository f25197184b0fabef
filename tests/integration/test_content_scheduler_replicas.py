"""Exactly-once scheduling across replicas: three content processes on one PostgreSQL database.

The stack's content process plus two more replicas (same database, same Kafka) all run their
scheduler; hundreds of occurrences fall due in the same second. Each must fire once: one occurrence
row fired, one broadcast, one `schedule.fired` event, one bot command per group on chat.actions.v1.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from qunzhu_common.events.contracts.membership import CommunityCreated
from qunzhu_common.events.envelope import new_envelope
from qunzhu_common.events.registry import default_registry
from tests.integration.probes import eventually, metric, produce, query, read_topic
from tests.integration.stack import ACTOR_AUTH, ServiceProcess, Stack

pytestmark = pytest.mark.integration

OCCURRENCES = 300
OWNER = "wecom:owner-replicas"


async def _seed_community(stack: Stack, client: httpx.AsyncClient) -> tuple[str, list[str]]:
    community_id = f"replicas-{uuid.uuid4().hex[:8]}"
    envelope = new_envelope(
        type="community.created",
        source="membership",
        community_id=community_id,
        data=CommunityCreated(
            community_id=community_id,
            name="准点群",
            positioning="每天 11:00 一张思维导图",
            owner_id=OWNER,
            created_at=datetime.now(UTC),
        ),
    )
    topic, key = default_registry().route(envelope)
    await produce(stack.kafka.bootstrap, topic, [(key.encode(), envelope.to_bytes())])
    url = stack["content"].url
    await eventually(
        lambda: client.get(f"{url}/communities/{community_id}", headers={"X-Actor-Id": OWNER}),
        until=lambda r: r.status_code == 200,
        what="content's copy of the community",
    )
    groups = [f"wecom:{community_id}-g{i}" for i in range(2)]
    for group_id in groups:
        response = await client.put(
            f"{url}/communities/{community_id}/groups", json={"group_id": group_id}, headers={"X-Actor-Id": OWNER}
        )
        assert response.status_code == 200, response.text
    return community_id, groups


async def test_three_replicas_fire_every_occurrence_exactly_once(stack: Stack, tmp_path) -> None:
    main = stack["content"]
    replicas = []
    for i in range(2):
        log_dir = tmp_path / f"replica{i}"
        log_dir.mkdir()
        env = {
            **main.env,
            "CONTENT_SCHEDULER_BATCH": "10",
            "CONTENT_RUN_CONSUMERS": "false",
            "CONTENT_DATA_DIR": str(log_dir),
        }
        replicas.append(ServiceProcess("content", env, log_dir))
    try:
        for replica in replicas:
            replica.start()
        await asyncio.gather(*(asyncio.to_thread(r.wait_ready) for r in replicas))
        processes = [main, *replicas]
        # The main process serves the whole session: schedules other tests left may fire meanwhile.
        lateness_before = sum([await metric(p.url, "qunzhu_content_scheduler_lateness_seconds_count")
                               for p in processes])
        async with httpx.AsyncClient(timeout=30, auth=ACTOR_AUTH) as client:
            community_id, groups = await _seed_community(stack, client)
            due = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=15)
            limit = asyncio.Semaphore(16)

            async def create(i: int) -> None:
                async with limit:
                    target = processes[i % 3].url  # created through every replica alike
                    response = await client.post(
                        f"{target}/communities/{community_id}/schedules",
                        json={"text": f"第 {i} 条", "starts_at": due.isoformat()},
                        headers={"X-Actor-Id": OWNER},
                    )
                    assert response.status_code == 201, response.text

            await asyncio.gather(*(create(i) for i in range(OCCURRENCES)))
            assert datetime.now(UTC) < due, "creating the schedules took longer than the lead time"

        dsn = stack.postgres.url("content")
        await eventually(
            lambda: query(
                dsn,
                "SELECT count(*) AS n FROM schedule_occurrence WHERE community_id = $1 AND status = 'fired'",
                community_id,
            ),
            until=lambda rows: rows[0]["n"] == OCCURRENCES,
            timeout=90,
            what="every occurrence fired",
        )
        rows = await query(
            dsn, "SELECT status, fired_by, lateness_s FROM schedule_occurrence WHERE community_id = $1", community_id
        )
        assert len(rows) == OCCURRENCES
        assert {r["status"] for r in rows} == {"fired"}
        # Which replicas won the claims depends on timing (one may take every batch on a loaded
        # machine), so the test asserts what must hold whatever the split: each fired exactly once.
        assert all(r["fired_by"] for r in rows)
        assert max(r["lateness_s"] for r in rows) < 300

        broadcasts = await query(
            dsn,
            "SELECT count(*) AS n, count(DISTINCT occurrence_id) AS d FROM broadcast WHERE community_id = $1",
            community_id,
        )
        assert (broadcasts[0]["n"], broadcasts[0]["d"]) == (OCCURRENCES, OCCURRENCES)
        fired_events = await query(
            dsn, "SELECT payload FROM outbox WHERE event_type = 'schedule.fired' AND key = $1", community_id
        )
        occurrence_ids = [json.loads(bytes(r["payload"]))["data"]["occurrence_id"] for r in fired_events]
        assert len(occurrence_ids) == len(set(occurrence_ids)) == OCCURRENCES

        # On the bus: one command per (occurrence, group). A record may repeat (relay republish) and the
        # gateway's failure reports may cause retries (attempt 2, 3…), but no first attempt exists twice.
        async def actions() -> set[str]:
            records = await read_topic(stack.kafka.bootstrap, "chat.actions.v1")
            return {
                value["data"]["action_id"]
                for value in (json.loads(r.value) for r in records if r.key and r.key.decode() in groups)
                if value["type"] == "chat.action.requested"
            }

        wanted = OCCURRENCES * len(groups)
        action_ids = await eventually(
            actions,
            until=lambda ids: len({a.rsplit(":", 1)[0] for a in ids}) >= wanted,
            timeout=90,
            what="every command on chat.actions.v1",
        )
        targets = {a.rsplit(":", 1)[0] for a in action_ids}  # content:<broadcast>:<position>
        assert len(targets) == wanted
        assert len([a for a in action_ids if a.endswith(":1")]) == wanted
        lateness = sum([await metric(p.url, "qunzhu_content_scheduler_lateness_seconds_count") for p in processes])
        assert lateness - lateness_before == OCCURRENCES
    finally:
        for replica in replicas:
            replica.kill()
