"""The weekly digest (精华周报): featured and most-commented posts of the week, as a broadcast."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import select

from content.models import Post


async def digest_posts(
    session: AsyncSession, *, community_id: str, now: datetime, top: int, days: int = 7
) -> list[Post]:
    """Featured posts first, then the most commented, of the last `days` days."""
    rows = await session.execute(
        select(Post).where(
            Post.community_id == community_id,
            Post.state == "published",
            Post.published_at >= now - timedelta(days=days),
        )
    )
    posts = sorted(rows.scalars(), key=lambda p: (not p.featured, -p.comments, -p.published_at.timestamp(), p.id))
    return posts[:top]


def digest_text(title: str, posts: list[Post]) -> str:
    lines = [f"【{title or '本周精华'}】"]
    for i, post in enumerate(posts, 1):
        mark = "⭐" if post.featured else ""
        lines.append(f"{i}. {mark}{post.title}（{post.comments} 条讨论）")
    return "\n".join(lines)
