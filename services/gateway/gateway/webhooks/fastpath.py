"""The group commit of chat deliveries on PostgreSQL in one statement, on the driver's own connection.

Issue #19's ingest profile: with the webhook itself cheap (raw ASGI route), a batch of 16 deliveries spent
2.7 ms of the gateway's one thread in the database layer — six round trips (BEGIN, claim deliveries, claim
messages, read the names directory, write the outbox, COMMIT), each three system calls and a loop turn, and
SQLAlchemy's session and transaction bookkeeping around them (≈ 280 µs per transaction, 70 µs per
statement, measured against asyncpg alone). Here the common batch is BEGIN, one statement, COMMIT:

- `d` claims the delivery ids; `c`/`w`/`m` claim the (group, message id) keys of the messages that those
  new deliveries carry, the first copy in batch order winning (as `claim_messages` does), in key order;
- `o` writes the outbox rows of every event that survives both claims — built before the statement, as
  the general path would build them (same deterministic ids, same bytes);
- the rest of the statement reads the names directory for the batch's events (gateway.chatdir.directory).

What the statement cannot do is left to the general path (gateway.webhooks.batch.BatchRecorder on a
SQLAlchemy session), decided before any write or, after it, by rolling the transaction back: a quarantined
delivery, an @-name to resolve (the event's payload depends on the directory), a pending mention resolved
or recorded. Names learned are written here (one upsert); deliveries whose every message was a repeat are
marked so (one update). The count of outbox rows written is checked against what the Python side expects.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Table
from sqlalchemy.engine import Dialect

from gateway.chatdir import directory
from gateway.chatdir.messages import RECALL_EVENTS, keep_first_copies, message_key
from gateway.chatdir.models import ChatName
from gateway.webhooks.batch import BatchRecorder, Delivery, first_deliveries, settle_accepted
from gateway.webhooks.batcher import FallBack
from gateway.webhooks.ingest import Outcome
from qunzhu_common.db.bulk import bulk_insert_driver
from qunzhu_common.timeutil import utcnow

_NAME: Table = ChatName.__table__  # type: ignore[attr-defined]
_NAME_UPDATE = ("community_id", "display_name", "username", "display_key", "username_key", "updated_at")


# One JSON parameter ($1: "d" deliveries, "m" message keys, "o" outbox rows, each a list of positional arrays)
# and the outbox payloads as they are ($3, bytea[], by the row's position) instead of seventeen arrays: asyncpg
# checks every element of an array parameter in Python (an ABC isinstance per element), a third of this
# batch's Python (#19). PostgreSQL parses the document once (MATERIALIZED); it is sent as bytea, orjson's
# bytes as they are (a jsonb or text parameter would be decoded to str first).
_CLAIM_AND_WRITE = (
    "WITH j AS MATERIALIZED (SELECT convert_from($1::bytea, 'UTF8')::jsonb AS doc), "
    "d AS (INSERT INTO webhook_delivery (source, delivery_id, outcome, event_count, received_at) "
    "SELECT u.e->>0, u.e->>1, u.e->>2, (u.e->>3)::integer, $2::timestamptz "
    "FROM j, jsonb_array_elements(j.doc->'d') AS u(e) "
    "ON CONFLICT DO NOTHING RETURNING source, delivery_id), "
    "c AS (SELECT u.e->>0 AS s, u.e->>1 AS d, u.e->>2 AS g, u.e->>3 AS m, u.n "
    "FROM j, jsonb_array_elements(j.doc->'m') WITH ORDINALITY AS u(e, n) "
    "WHERE (u.e->>0, u.e->>1) IN (SELECT source, delivery_id FROM d)), "
    "w AS (SELECT DISTINCT ON (g, m) g, m, d, n FROM c ORDER BY g, m, n), "
    "m AS (INSERT INTO chat_message_seen (group_id, message_id, delivery_id, received_at) "
    "SELECT g, m, d, $2::timestamptz FROM w ORDER BY g, m "
    "ON CONFLICT DO NOTHING RETURNING group_id, message_id), "
    "o AS (INSERT INTO outbox (event_id, topic, key, event_type, payload, created_at) "
    "SELECT e.e->>4, e.e->>5, e.e->>6, e.e->>7, ($3::bytea[])[e.n], $2::timestamptz "
    "FROM j, jsonb_array_elements(j.doc->'o') WITH ORDINALITY AS e(e, n) "
    "WHERE (e.e->>0, e.e->>1) IN (SELECT source, delivery_id FROM d) AND ((e.e->>2) IS NULL OR (e.e->>3)::boolean "
    "OR (e.e->>2)::bigint IN (SELECT w.n FROM w JOIN m ON m.group_id = w.g AND m.message_id = w.m)) "
    "ORDER BY e.n RETURNING 1), "
    + directory.load_pg_sql(4).removeprefix("WITH ")
    + " UNION ALL SELECT 'd', NULL, NULL, source, delivery_id, NULL, NULL, NULL FROM d"
    " UNION ALL SELECT 'm', NULL, NULL, group_id, message_id, NULL, NULL, NULL FROM m"
    " UNION ALL SELECT 'o', NULL, NULL, NULL, count(*)::text, NULL, NULL, NULL FROM o"
)
_MARK_REPEATED = (
    "UPDATE webhook_delivery SET outcome = 'duplicate', event_count = 0 "
    "FROM unnest($1::varchar[], $2::varchar[]) AS u(s, d) WHERE source = u.s AND delivery_id = u.d"
)


@dataclass
class FastBatch:
    """The PostgreSQL flush of the group committer when a batch allows it (see the module docstring)."""

    recorder: BatchRecorder
    dialect: Dialect
    # A generic plan for the one statement: planned each time as a custom plan (its arrays tell the planner
    # nothing) it cost ≈ 0.35 ms of PostgreSQL per batch, ≈ 1.6 → 1.0 ms per execution as the client waits.
    # SET LOCAL: the transaction's only, never left on a pooled connection; in the same round trip as BEGIN.
    begin: str = "BEGIN; SET LOCAL plan_cache_mode = force_generic_plan"

    @property
    def after_commit(self) -> Callable[[], None] | None:
        return self.recorder.on_outbox_write

    @staticmethod
    def accepts(batch: Sequence[Delivery]) -> bool:
        return all(d.quarantine_reason is None and not any(e.mention_names for e in d.events) for d in batch)

    async def __call__(self, connection: Any, batch: Sequence[Delivery]) -> list[Outcome]:
        """Write `batch` on asyncpg's `connection`, inside the transaction the caller opened; FallBack when
        it needs the general path (the caller rolls back)."""
        now = utcnow()
        outcomes, first = first_deliveries(batch)
        claims = [batch[i] for _, i in sorted(first.items())]  # in key order: overlapping batches lock alike
        messages: list[tuple[str, str, str, str]] = []
        outbox: list[tuple[str, str, int | None, bool, str, str, str | None, str]] = []
        payloads: list[bytes] = []
        events = []
        for index in first.values():  # batch order: the first copy of a message comes first here
            delivery = batch[index]
            for position, event in enumerate(delivery.events):
                events.append(event)
                key = message_key(event)
                ordinal = None
                if key is not None:
                    messages.append((delivery.source, delivery.delivery_id, *key))
                    ordinal = len(messages)  # WITH ORDINALITY counts from 1
                row = self.recorder._outbox_row(delivery, position, event, now)
                outbox.append((delivery.source, delivery.delivery_id, ordinal, event.type in RECALL_EVENTS,
                               row["event_id"], row["topic"], row["key"], row["event_type"]))
                payloads.append(row["payload"])
        document = orjson.dumps({"d": [(d.source, d.delivery_id, d.status, len(d.events)) for d in claims],
                                 "m": messages, "o": outbox})
        result = await connection.fetch(
            _CLAIM_AND_WRITE, document, now, payloads, *directory.load_pg_parameters(events))
        claimed: set[tuple[str, str]] = set()
        claimed_messages: set[tuple[str, str]] = set()
        loaded: list[Any] = []
        written = 0
        for row in result:  # (kind, id, community, group, a, b, c, created_at)
            kind = row[0]
            if kind == "d":
                claimed.add((row[3], row[4]))
            elif kind == "m":
                claimed_messages.add((row[3], row[4]))
            elif kind == "o":
                written = int(row[4])
            else:
                loaded.append(row)

        accepted = []
        for key, index in first.items():
            if key in claimed:
                accepted.append(index)
            else:
                outcomes[index] = Outcome("duplicate")
        kept = keep_first_copies([(batch[i], list(enumerate(batch[i].events))) for i in accepted], claimed_messages)
        applied, names = directory.resolve_loaded(
            [event for events in kept for _, event in events], now=now, loaded=loaded)
        if applied.resolved or directory.pending_changed(names):
            raise FallBack("a pending mention is resolved or recorded")
        expected = sum(len(events) for events in kept)
        if written != expected:  # the statement and this code disagree on what survives the claims: a bug
            raise RuntimeError(f"the batch wrote {written} outbox rows where {expected} were expected")
        repeated = settle_accepted(batch, accepted, kept, outcomes)
        if rows := directory.name_rows(names):
            await bulk_insert_driver(
                connection, self.dialect, _NAME, rows,
                pg_tail="ON CONFLICT (group_id, person_id) DO UPDATE SET "
                + ", ".join(f"{column} = excluded.{column}" for column in _NAME_UPDATE))
        if repeated:
            await connection.execute(_MARK_REPEATED, [d.source for d in repeated], [d.delivery_id for d in repeated])
        return [o if o is not None else Outcome("duplicate") for o in outcomes]

