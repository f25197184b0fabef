"""The names directory at ingest: learn names from chat events, resolve @-names to person ids.

Why here, in the gateway, inside the group commit: the gateway sees every chat event first and in one
order (the commit order of its deliveries), and it is what renders names into the bot's messages. A
mention resolved here is written into the event itself (`mentions`), and a name that named nobody yet
is kept (chat_pending_mention) until someone carries it, when a `chat.mention.resolved` event is
emitted. Consumers therefore never resolve anything: the key-people graph reads ids from the events, and
replaying the event history gives exactly the same result, whatever the directory holds by then.

Resolution of a name (case-folded, without the @), in a community, first match wins:
1. one person whose platform username is the name (Telegram's @dave; usernames are unique);
2. one person whose name in the message's group is the name (group card / nickname / display name);
3. one person in the community's groups with that name.
Two people with the same name at a step leave it unresolved there (ambiguous, never a guess).
A name nobody carries within PENDING_DAYS (a typo, another bot) is dropped when it is next seen.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Table, delete, select, union
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.chatdir.models import ChatName, ChatPendingMention
from gateway.webhooks.ingest import Staged
from qunzhu_common.events.contracts.chat import ChatMentionResolved

_NAME: Table = ChatName.__table__  # type: ignore[attr-defined]
PENDING_DAYS = 30


def name_key(name: str) -> str:
    return name.strip().lstrip("@").casefold()[:200]


@dataclass
class _Entry:
    community_id: str
    display_name: str = ""
    username: str = ""
    dirty: bool = False

    @property
    def display_key(self) -> str:
        return name_key(self.display_name)

    @property
    def username_key(self) -> str:
        return name_key(self.username)


@dataclass
class _Pending:
    community_id: str
    group_id: str
    message_id: str
    sender_id: str
    name: str
    id: int | None = None  # None: found in this batch, not stored yet
    done: bool = False
    created_at: datetime | None = None


@dataclass
class Applied:
    """What the directory changed in a batch: events with resolved mentions, and new events."""

    replaced: dict[int, Staged] = field(default_factory=dict)  # item index → the event with its mentions
    resolved: list[tuple[int, Staged]] = field(default_factory=list)  # (item index that resolved it, event)


class _Directory:
    def __init__(self, now: datetime) -> None:
        self.now = now
        self.entries: dict[tuple[str, str], _Entry] = {}  # (group, person)
        self.pending: list[_Pending] = []

    def lookup(self, community_id: str, group_id: str, key: str) -> str | None:
        if not key:
            return None
        rows = [(g, p, e) for (g, p), e in self.entries.items() if e.community_id == community_id]
        for match in (lambda g, e: e.username_key == key,
                      lambda g, e: g == group_id and e.display_key == key,
                      lambda g, e: e.display_key == key):
            people = {p for g, p, e in rows if match(g, e)}
            if len(people) == 1:
                return people.pop()
            if len(people) > 1:
                return None  # ambiguous: no guess
        return None

    def learn(self, community_id: str, group_id: str, person: str, display: str, username: str) -> set[str]:
        entry = self.entries.setdefault((group_id, person), _Entry(community_id))
        if display and display != entry.display_name:
            entry.display_name, entry.dirty = display, True
        if username and username != entry.username:
            entry.username, entry.dirty = username, True
        return {k for k in (name_key(display), name_key(username)) if k}


async def apply(session: AsyncSession, items: Sequence[Staged], *, now: datetime) -> Applied:
    """Learn the names `items` carry and resolve the @-names they mention, in order; write the directory."""
    directory = _Directory(now)
    await _load(session, directory, items)
    applied = _learn_and_resolve(directory, items)
    await _store(session, directory)
    return applied


def resolve_loaded(items: Sequence[Staged], *, now: datetime, loaded: Sequence[Any]) -> tuple[Applied, _Directory]:
    """`apply` without the database: the directory from `loaded`, changed in memory only; the caller writes
    `name_rows(directory)` (gateway.webhooks.fastpath) and leaves pending mentions to `apply`."""
    directory = _Directory(now)
    _fill(directory, loaded)
    return _learn_and_resolve(directory, items), directory


def name_rows(directory: _Directory) -> list[dict[str, Any]]:
    """The directory's changed names, as chat_name rows (in key order: concurrent writers lock alike)."""
    return [dict(group_id=g, person_id=p, community_id=e.community_id, display_name=e.display_name[:200],
                 username=e.username[:200], display_key=e.display_key, username_key=e.username_key,
                 updated_at=directory.now)
            for (g, p), e in sorted(directory.entries.items()) if e.dirty]


def pending_changed(directory: _Directory) -> bool:
    """Whether a pending mention was resolved, dropped or found in memory (to be written by `_store`)."""
    return any(p.done or p.id is None for p in directory.pending)


def _learn_and_resolve(directory: _Directory, items: Sequence[Staged]) -> Applied:
    now = directory.now
    applied = Applied()
    for index, item in enumerate(items):
        learned: set[str] = set()
        for person, display, username in item.names:
            learned |= directory.learn(item.community_id, item.group_id, person, display, username)
        if learned:
            for pending in directory.pending:
                if pending.done or pending.community_id != item.community_id or name_key(pending.name) not in learned:
                    continue
                if pending.created_at is not None and pending.created_at < now - timedelta(days=PENDING_DAYS):
                    pending.done = True  # too late to be that message's mention: dropped, nothing emitted
                    continue
                person = directory.lookup(pending.community_id, pending.group_id, name_key(pending.name))
                if person is None or person == pending.sender_id:
                    continue
                pending.done = True
                applied.resolved.append((index, Staged("chat.mention.resolved", item.community_id, ChatMentionResolved(
                    platform=pending.group_id.partition(":")[0],  # type: ignore[arg-type]
                    group_id=pending.group_id, delivery_id=getattr(item.payload, "delivery_id", ""),
                    message_id=pending.message_id, sender_id=pending.sender_id, mentioned_id=person,
                    name=pending.name, resolved_at=now,
                ), group_id=pending.group_id)))
        if item.mention_names and item.type == "chat.message.posted":
            applied.replaced[index] = _resolve_mentions(directory, item)
    return applied


def _resolve_mentions(directory: _Directory, item: Staged) -> Staged:
    payload: Any = item.payload
    mentions = list(payload.mentions)
    for name in dict.fromkeys(item.mention_names):
        person = directory.lookup(item.community_id, item.group_id, name_key(name))
        if person is None:
            if not any(p.message_id == payload.message_id and p.group_id == item.group_id and p.name == name
                       for p in directory.pending):
                directory.pending.append(_Pending(item.community_id, item.group_id, payload.message_id,
                                                  payload.sender_id, name))
        elif person not in mentions and person != payload.sender_id:
            mentions.append(person)
    if mentions == payload.mentions:
        return item
    return Staged(item.type, item.community_id, payload.model_copy(update={"mentions": mentions}),
                  group_id=item.group_id, names=item.names, mention_names=item.mention_names)


async def _load(session: AsyncSession, directory: _Directory, items: Sequence[Staged]) -> None:
    """Everything the batch can touch: the named people's own rows, the pending mentions a name the batch
    carries can resolve, and, for the names to resolve (mentioned or pending), every row holding that name
    (to tell one person from an ambiguous name). A name many people share ("群友") is only read when it is
    looked up, never for every message that carries it."""
    if session.bind.dialect.name == "postgresql":
        await _load_pg(session, directory, items)
        return
    communities = sorted({i.community_id for i in items if i.names or i.mention_names})
    if not communities:
        return
    pairs = sorted({(i.group_id, person) for i in items for person, _, _ in i.names})
    learned = sorted({name_key(k) for i in items for _, display, username in i.names for k in (display, username)}
                     - {""})
    if learned:
        rows = await session.execute(select(ChatPendingMention).where(
            ChatPendingMention.community_id.in_(communities), ChatPendingMention.name_key.in_(learned),
        ).order_by(ChatPendingMention.id))
        directory.pending.extend(
            _Pending(r.community_id, r.group_id, r.message_id, r.sender_id, r.name, id=r.id, created_at=r.created_at)
            for r in rows.scalars())
    keys = sorted(({name_key(n) for i in items for n in i.mention_names}
                   | {name_key(p.name) for p in directory.pending}) - {""})
    # One branch per index, in a UNION: one OR across them made SQLite (and PostgreSQL) scan the whole table.
    columns = (ChatName.group_id, ChatName.person_id, ChatName.community_id, ChatName.display_name, ChatName.username)
    parts = []
    if pairs:  # groups × people, on the primary key (a superset of the pairs: the rest matches no lookup)
        parts.append(select(*columns).where(ChatName.group_id.in_(sorted({g for g, _ in pairs})),
                                            ChatName.person_id.in_(sorted({p for _, p in pairs}))))
    if keys:
        parts += [select(*columns).where(ChatName.community_id.in_(communities), key.in_(keys))
                  for key in (ChatName.username_key, ChatName.display_key)]
    if parts:
        for row in await session.execute(union(*parts) if len(parts) > 1 else parts[0]):
            directory.entries[(row.group_id, row.person_id)] = _Entry(
                row.community_id, row.display_name, row.username)


# PostgreSQL, once per group commit: the same reads in ONE statement with array parameters — the pending
# mentions the batch's names can resolve, and the name rows of the batch's people and of every name to look
# up (mentioned, or a pending mention's) — one round trip and one plan, no IN-list rendered per batch, no ORM
# objects: the directory's two ORM reads were the largest cost of a batch (#19).
_LOAD_PG = (
    "WITH pending AS (SELECT id, community_id, group_id, message_id, sender_id, name, name_key, created_at "
    "FROM chat_pending_mention WHERE community_id = ANY($1::varchar[]) AND name_key = ANY($2::varchar[])), "
    "wanted AS (SELECT unnest($5::varchar[]) AS k UNION SELECT name_key FROM pending) "
    "SELECT 'p' AS kind, id, community_id, group_id, message_id AS a, sender_id AS b, name AS c, created_at "
    "FROM pending UNION ALL "
    # Three branches, each on its own index (one OR across them made PostgreSQL scan the whole table):
    # the batch's people by primary key, then every row holding a name to look up, by username and by name.
    # Each driven by its few keys (LATERAL: one index probe per key, whatever the planner guesses of a young
    # table — a plain join scanned every name of the community for every batch, even with no name to look up;
    # OFFSET 0 keeps the planner from flattening them back into that join).
    "SELECT 'n', NULL, community_id, group_id, person_id, display_name, username, NULL FROM ("
    "SELECT n.* FROM unnest($3::varchar[], $4::varchar[]) AS b(g, p) CROSS JOIN LATERAL "
    "(SELECT * FROM chat_name WHERE group_id = b.g AND person_id = b.p OFFSET 0) AS n "
    "UNION SELECT n.* FROM wanted w CROSS JOIN LATERAL (SELECT * FROM chat_name "
    "WHERE community_id = ANY($1::varchar[]) AND username_key = w.k OFFSET 0) AS n "
    "UNION SELECT n.* FROM wanted w CROSS JOIN LATERAL (SELECT * FROM chat_name "
    "WHERE community_id = ANY($1::varchar[]) AND display_key = w.k OFFSET 0) AS n"
    ") AS n"
)


def load_pg_parameters(items: Sequence[Staged]) -> tuple[list[str], list[str], list[str], list[str], list[str]]:
    """The five arrays of `_LOAD_PG` for `items`: communities, learned names, (group, person) pairs, mentions."""
    communities = sorted({i.community_id for i in items if i.names or i.mention_names})
    if not communities:
        return [], [], [], [], []
    pairs = sorted({(i.group_id, person) for i in items for person, _, _ in i.names})
    learned = sorted({name_key(k) for i in items for _, display, username in i.names for k in (display, username)}
                     - {""})
    mentioned = sorted({name_key(n) for i in items for n in i.mention_names} - {""})
    return communities, learned, [g for g, _ in pairs], [p for _, p in pairs], mentioned


def load_pg_sql(first_parameter: int) -> str:
    """`_LOAD_PG` with its parameters numbered from `first_parameter` (to run inside another statement)."""
    sql = _LOAD_PG
    for n in range(5, 0, -1):
        sql = sql.replace(f"${n}::", f"${n + first_parameter - 1}::")
    return sql


async def _load_pg(session: AsyncSession, directory: _Directory, items: Sequence[Staged]) -> None:
    parameters = load_pg_parameters(items)
    _, learned, groups, _, mentioned = parameters
    if not learned and not groups and not mentioned:
        return
    _fill(directory, await (await session.connection()).exec_driver_sql(_LOAD_PG, parameters))


def _fill(directory: _Directory, rows: Any) -> None:
    """The rows of `_LOAD_PG` into the directory: pending mentions oldest first, and name entries. By
    position (kind, id, community, group, a, b, c, created_at): SQLAlchemy's rows and asyncpg's records alike."""
    pending = []
    for kind, id_, community_id, group_id, a, b, c, created_at in rows:
        if kind == "p":
            created_at = created_at.astimezone(UTC) if created_at is not None else None
            pending.append(_Pending(community_id, group_id, a, b, c, id=id_, created_at=created_at))
        else:
            directory.entries[(group_id, a)] = _Entry(community_id, b, c)
    directory.pending.extend(sorted(pending, key=lambda p: p.id or 0))  # oldest first, as they were written


async def _store(session: AsyncSession, directory: _Directory) -> None:
    rows = name_rows(directory)
    if rows:
        make = postgresql.insert if session.bind.dialect.name == "postgresql" else sqlite.insert
        statement = make(_NAME)
        await session.execute(statement.on_conflict_do_update(
            index_elements=[_NAME.c.group_id, _NAME.c.person_id],
            set_={c: statement.excluded[c] for c in ("community_id", "display_name", "username", "display_key",
                                                     "username_key", "updated_at")}), rows)
    done = [p.id for p in directory.pending if p.done and p.id is not None]
    if done:
        await session.execute(delete(ChatPendingMention).where(ChatPendingMention.id.in_(done)))
    new = [p for p in directory.pending if not p.done and p.id is None]
    if new:
        session.add_all(ChatPendingMention(
            community_id=p.community_id, group_id=p.group_id, message_id=p.message_id, sender_id=p.sender_id,
            name=p.name[:200], name_key=name_key(p.name), created_at=directory.now) for p in new)
        await session.flush()
