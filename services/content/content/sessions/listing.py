"""Reading sessions for the console: a community's sessions page by page, and each session's notices
(its previews: when each is due, whether and when it went out, which broadcast carried it)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import select

from content.models import Broadcast, Schedule, ScheduleOccurrence, SharingSession

# An occurrence's status, as a notice's.
_NOTICE_STATUS = {"pending": "due", "fired": "sent", "skipped": "skipped", "failed": "failed"}


async def list_sessions(
    session: AsyncSession,
    *,
    community_id: str,
    status: str | None,
    starts_from: datetime | None,
    starts_before: datetime | None,
    newest_first: bool,
    offset: int,
    limit: int,
) -> tuple[list[SharingSession], int]:
    where = [SharingSession.community_id == community_id]
    if status is not None:
        where.append(SharingSession.status == status)
    if starts_from is not None:
        where.append(SharingSession.starts_at >= starts_from)
    if starts_before is not None:
        where.append(SharingSession.starts_at < starts_before)
    count = (await session.execute(select(func.count()).select_from(SharingSession).where(*where))).scalar_one()
    order = (
        (SharingSession.starts_at.desc(), SharingSession.id.desc())
        if newest_first
        else (SharingSession.starts_at, SharingSession.id)
    )
    rows = await session.execute(select(SharingSession).where(*where).order_by(*order).offset(offset).limit(limit))
    return list(rows.scalars()), count


async def notices_of(session: AsyncSession, *, session_ids: list[str]) -> dict[str, list[dict]]:
    """Each session's previews in the order they are due (three queries for any number of sessions)."""
    notices: dict[str, list[dict]] = {sid: [] for sid in session_ids}
    if not session_ids:
        return notices
    schedules = list(
        (
            await session.execute(
                select(Schedule).where(
                    Schedule.owner_ref.in_([f"session:{sid}" for sid in session_ids]),
                    Schedule.kind == "session_preview",
                )
            )
        ).scalars()
    )
    occurrences: dict[str, ScheduleOccurrence] = {}
    if schedules:
        rows = await session.execute(
            select(ScheduleOccurrence)
            .where(ScheduleOccurrence.schedule_id.in_([s.id for s in schedules]))
            .order_by(ScheduleOccurrence.occurs_at)
        )
        occurrences = {o.schedule_id: o for o in rows.scalars()}  # a preview is a one-off: one occurrence
    broadcasts: dict[str, str] = {}
    if occurrences:
        rows = await session.execute(
            select(Broadcast.occurrence_id, Broadcast.id).where(
                Broadcast.occurrence_id.in_([o.id for o in occurrences.values()])
            )
        )
        broadcasts = {occurrence_id: broadcast_id for occurrence_id, broadcast_id in rows.all()}
    for schedule in schedules:
        occurrence = occurrences.get(schedule.id)
        if occurrence is not None:
            state = _NOTICE_STATUS.get(occurrence.status, occurrence.status)
        else:
            state = "cancelled" if schedule.status == "cancelled" else "scheduled"
        sent = occurrence is not None and occurrence.status == "fired"
        notices[schedule.owner_ref.removeprefix("session:")].append(
            dict(
                kind="preview",
                offset_s=-schedule.offset_s,
                due_at=schedule.starts_at + timedelta(seconds=schedule.offset_s),
                status=state,
                sent_at=occurrence.fired_at if sent else None,
                catch_up=bool(schedule.payload.get("catch_up")),
                broadcast_id=broadcasts.get(occurrence.id) if occurrence is not None else None,
                schedule_id=schedule.id,
            )
        )
    for rows in notices.values():
        rows.sort(key=lambda n: (n["due_at"], -n["offset_s"]))
    return notices
