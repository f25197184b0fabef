"""INSERT … ON CONFLICT DO NOTHING for a SQLModel table (True when the row was inserted)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from qunzhu_common.db.upsert import insert_if_absent


async def insert_ignore(session: AsyncSession, model: Any, values: dict[str, Any]) -> bool:
    return await insert_if_absent(session, model.__table__, values)
