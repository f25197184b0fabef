"""An approved summary goes to the session's groups (沉淀): split within each platform's message limit,
sent as ordered broadcasts (one per part, per platform), and tracked per group.

The post, its broadcasts and the session's `summary_post_id` commit together, and the broadcasts of a
post are made once (they are found again by `source="session"`, `source_ref="post:<id>"`), so approving
twice, or a retried request, sends nothing twice; the fan-out and the gateway carry each part once, a
group's parts in `seq` order (the gateway holds a group's later actions back while an earlier one waits).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import select

from content.broadcasts.service import create_broadcast
from content.context import ContentContext
from content.models import Broadcast, BroadcastDelivery, Post, SharingSession
from content.sessions.schemas import SummaryDelivery
from content.settings import MessageLimit

SOURCE = "session"  # a session's broadcast (broadcast.delivered's sources); `source_ref` names the post

MEASURES: dict[str, Callable[[str], int]] = {
    "chars": len,
    "bytes": lambda s: len(s.encode("utf-8")),
    "utf16": lambda s: len(s.encode("utf-16-le")) // 2,  # Telegram counts UTF-16 code units
}

# Sentence ends: Chinese full stops and marks (with their closing quotes), or ASCII ones before a space.
_SENTENCE = re.compile(r"[。！？；…]+[”’」』）)]*|[.!?;]+[\"')]*\s+")


def _sentences(text: str) -> list[str]:
    cuts = [m.end() for m in _SENTENCE.finditer(text)]
    return [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True) if b > a]


_SEPARATORS: tuple[Callable[[str], list[str]], ...] = (
    lambda s: [p for p in re.split(r"(?<=\n\n)", s) if p],  # paragraphs
    lambda s: [p for p in re.split(r"(?<=\n)", s) if p],  # lines
    _sentences,
)


def limit_of(ctx: ContentContext, group_id: str) -> MessageLimit:
    platform = group_id.split(":", 1)[0]
    return ctx.settings.message_limits.get(platform, ctx.settings.default_message_limit)


def _hard_cut(text: str, limit: int, measure: Callable[[str], int]) -> list[str]:
    parts, current = [], ""
    for char in text:
        if current and measure(current + char) > limit:
            parts.append(current)
            current = ""
        current += char
    return [*parts, current] if current else parts


def _pieces(text: str, limit: int, measure: Callable[[str], int], level: int = 0) -> list[str]:
    """Consecutive pieces of `text` each within `limit`, cut at the coarsest boundary that allows it."""
    if measure(text) <= limit:
        return [text]
    if level == len(_SEPARATORS):
        return _hard_cut(text, limit, measure)
    out: list[str] = []
    current = ""
    for segment in _SEPARATORS[level](text):
        if measure(current + segment) <= limit:
            current += segment
            continue
        if measure(segment) <= limit:
            out.append(current)
            current = segment
            continue
        # Too long for one message: cut it finer, filling the current message with its first piece.
        first, *rest = _pieces(segment, limit, measure, level + 1)
        if measure(current + first) <= limit:
            current += first
        else:
            out.append(current)
            current = first
        if rest:
            out.append(current)
            *done, current = rest
            out.extend(done)
    out.append(current)
    return [p for p in out if p]


def _label(i: int, n: int) -> str:
    return f"（{i}/{n}）"


def split_message(text: str, limit: MessageLimit) -> list[str]:
    """`text` as one message, or as several in order, each within the limit and numbered "（1/3）"."""
    measure = MEASURES[limit.unit]
    text = text.strip()
    if measure(text) <= limit.max:
        return [text]
    n = 2
    while True:  # the label's room depends on how many parts there are
        room = limit.max - measure(_label(n, n) + "\n")
        parts = [p.strip() for p in _pieces(text, room, measure)]
        parts = [p for p in parts if p]
        if len(str(len(parts))) <= len(str(n)):
            return [f"{_label(i, len(parts))}\n{p}" for i, p in enumerate(parts, 1)]
        n = len(parts)


def post_url(ctx: ContentContext, post: Post) -> str:
    template = ctx.settings.post_url_template
    return template.format(community_id=post.community_id, post_id=post.id) if template else ""


def summary_message(ctx: ContentContext, post: Post) -> str:
    text = f"【分享总结】{post.title}\n\n{post.body_md.strip()}"
    if url := post_url(ctx, post):
        text += f"\n\n全文：{url}"
    return text


async def summary_broadcasts(session: AsyncSession, *, post_id: str) -> list[Broadcast]:
    rows = await session.execute(
        select(Broadcast).where(Broadcast.source == SOURCE, Broadcast.source_ref == f"post:{post_id}")
    )
    return sorted(rows.scalars(), key=lambda b: (b.audience.get("platform", ""), b.audience.get("part", 0)))


async def lock_session(session: AsyncSession, *, shared: SharingSession) -> SharingSession:
    """Re-read the session under a row lock (PostgreSQL): two approvals at once publish once."""
    if session.bind.dialect.name == "postgresql":
        await session.execute(
            select(SharingSession)
            .where(SharingSession.id == shared.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    return shared


async def send_summary(
    session: AsyncSession, *, ctx: ContentContext, shared: SharingSession, post: Post, now: datetime
) -> list[Broadcast]:
    """Post the published summary to the source and target groups, once: per platform, one broadcast per
    part, so every group receives its series in order."""
    if existing := await summary_broadcasts(session, post_id=post.id):
        return existing
    text = summary_message(ctx, post)
    by_platform: dict[str, list[str]] = {}
    for group_id in dict.fromkeys([shared.source_group_id, *shared.target_group_ids]):
        by_platform.setdefault(group_id.split(":", 1)[0], []).append(group_id)
    made = []
    for platform, group_ids in by_platform.items():
        parts = split_message(text, limit_of(ctx, group_ids[0]))
        for i, part in enumerate(parts, 1):
            made.append(
                await create_broadcast(
                    session,
                    ctx=ctx,
                    community_id=shared.community_id,
                    group_ids=group_ids,
                    text=part,
                    action="send_message",
                    audience={"session_id": shared.id, "platform": platform, "part": i, "parts": len(parts)},
                    source=SOURCE,
                    source_ref=f"post:{post.id}",
                    created_by="content",
                    now=now,
                )
            )
    return made


def _part_state(d: BroadcastDelivery) -> str:
    if d.status == "failed":
        return "failed"
    if d.confirmed_at is not None or d.status in ("confirmed", "delivered"):
        return "delivered"
    return "pending" if d.status == "pending" and d.attempts == 0 else "sending"


async def summary_delivery(session: AsyncSession, *, shared: SharingSession) -> SummaryDelivery | None:
    """Where the published summary stands in each group: delivered when every part is confirmed, failed
    when a part finally failed, else delivering; overall delivered / partially_delivered / failed."""
    if shared.summary_post_id is None:
        return None
    broadcasts = await summary_broadcasts(session, post_id=shared.summary_post_id)
    if not broadcasts:
        return SummaryDelivery(status="none", post_id=shared.summary_post_id, groups=[])
    part_of = {b.id: b.audience.get("part", 0) for b in broadcasts}
    rows = await session.execute(
        select(BroadcastDelivery)
        .where(BroadcastDelivery.broadcast_id.in_(list(part_of)))
        .order_by(BroadcastDelivery.seq)
    )
    groups: dict[str, list[BroadcastDelivery]] = {}
    for d in rows.scalars():
        groups.setdefault(d.group_id, []).append(d)
    order = [shared.source_group_id, *shared.target_group_ids]
    out = []
    for group_id in sorted(groups, key=lambda g: order.index(g) if g in order else len(order)):
        deliveries = sorted(groups[group_id], key=lambda d: part_of[d.broadcast_id])
        states = [_part_state(d) for d in deliveries]
        status = (
            "failed" if "failed" in states else "delivered" if all(s == "delivered" for s in states) else "delivering"
        )
        out.append(
            {
                "group_id": group_id,
                "status": status,
                "parts": len(deliveries),
                "delivered_parts": states.count("delivered"),
                "failed_parts": states.count("failed"),
                "attempts": sum(d.attempts for d in deliveries),
                "last_error": next((d.last_error for d in reversed(deliveries) if d.last_error), ""),
                "part_statuses": states,
            }
        )
    statuses = [g["status"] for g in out]
    if "delivering" in statuses:
        overall = "delivering"
    elif all(s == "delivered" for s in statuses):
        overall = "delivered"
    elif all(s == "failed" for s in statuses):
        overall = "failed"
    else:
        overall = "partially_delivered"
    return SummaryDelivery.model_validate(
        {
            "status": overall,
            "post_id": shared.summary_post_id,
            "delivered": statuses.count("delivered"),
            "failed": statuses.count("failed"),
            "groups": out,
        }
    )
