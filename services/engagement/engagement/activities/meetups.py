"""Offline meetups (线下活动): registration through a 接龙 (chat or API) with capacity and a waitlist,
automatic promotion when someone cancels, a reminder before the start, and on-site check-in with a
one-time code, which records attendance (the `meetup_attended` rule) for engagement.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from engagement.activities import chains
from engagement.activities.common import (
    ActivityClosed,
    AlreadyDone,
    InvalidActivity,
    NotEligible,
    completed,
    get_community,
    local_text,
    participated,
    post,
)
from engagement.activities.schemas import AttendeePublic, ChainCreate, MeetupCreate
from engagement.context import EngagementContext
from engagement.db_insert import insert_ignore
from engagement.errors import ThingNotFound
from engagement.models import Meetup, MeetupAttendance
from qunzhu_common.timeutil import utcnow

CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud at the door
CODE_LENGTH = 8
CHECKIN_OPENS_BEFORE = timedelta(hours=2)


async def create(session: AsyncSession, ctx: EngagementContext, *, community_id: str, data: MeetupCreate) -> Meetup:
    community = await get_community(session, community_id)
    if data.starts_at <= utcnow():
        raise InvalidActivity(f"starts_at {data.starts_at.isoformat()} is in the past")
    chain = await chains.create(session, ctx, community_id=community_id, announce=False, data=ChainCreate(
        title=data.title, description=f"{local_text(data.starts_at, community)} @ {data.venue}",
        group_id=data.group_id, capacity=data.capacity, closes_at=data.registration_closes_at or data.starts_at,
        created_by=data.created_by))
    meetup = Meetup(**data.model_dump(exclude={"registration_closes_at"}), community_id=community_id,
                    chain_id=chain.id, created_at=utcnow())
    session.add(meetup)
    await session.flush()
    chain.meetup_id = meetup.id
    await post(session, ctx, community_id=community_id, group_id=meetup.group_id, announce=True,
               action_id=f"meetup:{meetup.id}:opened", text=(
                   f"📍 线下活动「{meetup.title}」\n时间：{local_text(meetup.starts_at, community)}\n"
                   f"地点：{meetup.venue}\n名额 {meetup.capacity} 人，满员后候补。发送「接龙 {meetup.title}」报名。"))
    return meetup


async def get(session: AsyncSession, *, community_id: str, meetup_id: str) -> Meetup:
    meetup = await session.get(Meetup, meetup_id)
    if meetup is None or meetup.community_id != community_id:
        raise ThingNotFound(f"meetup {meetup_id} does not exist in community {community_id}")
    return meetup


async def chain_of(session: AsyncSession, meetup: Meetup):  # noqa: ANN201 - a SignupChain
    return await chains.get(session, community_id=meetup.community_id, chain_id=meetup.chain_id)


async def _confirmed_line(session: AsyncSession, meetup: Meetup, person_id: str):  # noqa: ANN202
    confirmed, waitlist = await chains.lines(session, chain=await chain_of(session, meetup))
    for line in confirmed:
        if line.person_id == person_id:
            return line
    for line in waitlist:
        if line.person_id == person_id:
            raise NotEligible(f"{person_id} is on the waitlist (position {line.position}); "
                              "a code is issued once a place is confirmed")
    raise NotEligible(f"{person_id} is not registered for meetup {meetup.title!r}")


async def issue_code(session: AsyncSession, *, meetup: Meetup, person_id: str) -> MeetupAttendance:
    """The member's one-time check-in code (the same one when asked again); confirmed registrants only."""
    await _confirmed_line(session, meetup, person_id)
    existing = await session.get(MeetupAttendance, (meetup.id, person_id))
    if existing is not None:
        return existing
    for _ in range(5):  # a collision within one meetup is astronomically rare; retry with a new code
        code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
        # ON CONFLICT DO NOTHING covers both keys: a concurrent request for the member (theirs is kept)
        # and a code another member holds (no row: try another code).
        await insert_ignore(session, MeetupAttendance, {
            "meetup_id": meetup.id, "person_id": person_id, "code": code, "issued_at": utcnow()})
        row = await session.get(MeetupAttendance, (meetup.id, person_id), populate_existing=True)
        if row is not None:
            return row
    raise RuntimeError("could not issue a unique check-in code")  # pragma: no cover


def normalise_code(code: str) -> str:
    return code.strip().upper().replace(" ", "").replace("-", "")


async def check_in(session: AsyncSession, ctx: EngagementContext, *, meetup: Meetup, code: str, at: datetime
                   ) -> MeetupAttendance:
    """Accept a code once, on site (from 2 h before the start to the end), for a still-confirmed member."""
    row = (await session.execute(select(MeetupAttendance).where(
        MeetupAttendance.meetup_id == meetup.id, MeetupAttendance.code == normalise_code(code)))).scalar_one_or_none()
    if row is None:
        raise InvalidActivity("unknown check-in code for this meetup")
    if row.used_at is not None:
        raise AlreadyDone(f"this code was already used at {row.used_at.isoformat()}")
    if at < meetup.starts_at - CHECKIN_OPENS_BEFORE or at > meetup.ends_at:
        raise ActivityClosed(f"check-in is open from {(meetup.starts_at - CHECKIN_OPENS_BEFORE).isoformat()} "
                             f"to {meetup.ends_at.isoformat()}")
    await _confirmed_line(session, meetup, row.person_id)  # cancelled since: the code no longer admits
    used = await session.execute(update(MeetupAttendance).where(
        MeetupAttendance.meetup_id == meetup.id, MeetupAttendance.person_id == row.person_id,
        MeetupAttendance.used_at.is_(None)).values(used_at=at))
    if used.rowcount != 1:
        raise AlreadyDone("this code was just used")
    await session.refresh(row)
    await participated(session, ctx, community_id=meetup.community_id, activity="meetup", activity_id=meetup.id,
                       person_id=row.person_id, action="attended", at=at, group_id=meetup.group_id,
                       title=meetup.title)
    completed(session, ctx, "meetup")
    return row


async def attendance(session: AsyncSession, *, meetup: Meetup) -> list[AttendeePublic]:
    confirmed, _ = await chains.lines(session, chain=await chain_of(session, meetup))
    used = dict((await session.execute(select(MeetupAttendance.person_id, MeetupAttendance.used_at).where(
        MeetupAttendance.meetup_id == meetup.id))).all())
    return [AttendeePublic(person_id=line.person_id, line=line.line, position=line.position,
                           attended_at=used.get(line.person_id)) for line in confirmed]


async def remind_due(session: AsyncSession, ctx: EngagementContext, *, now: datetime) -> int:
    """Post each meetup's reminder once, `remind_before_s` before its start (late runs still remind)."""
    rows = (await session.execute(select(Meetup).where(
        Meetup.reminded_at.is_(None), Meetup.remind_before_s > 0, Meetup.starts_at > now))).scalars().all()
    sent = 0
    for meetup in rows:
        if meetup.starts_at - timedelta(seconds=meetup.remind_before_s) > now:
            continue
        claimed = await session.execute(update(Meetup).where(Meetup.id == meetup.id, Meetup.reminded_at.is_(None))
                                        .values(reminded_at=now))
        if claimed.rowcount != 1:
            continue
        community = await get_community(session, meetup.community_id)
        confirmed, waitlist = await chains.lines(session, chain=await chain_of(session, meetup))
        names = "、".join(chains.shown(line) for line in confirmed) or "（暂无）"
        await post(session, ctx, community_id=meetup.community_id, group_id=meetup.group_id, announce=True,
                   action_id=f"meetup:{meetup.id}:reminder", text=(
                       f"⏰ 提醒：「{meetup.title}」{local_text(meetup.starts_at, community)} 在 {meetup.venue}。\n"
                       f"已报名：{names}" + (f"\n候补 {len(waitlist)} 人" if waitlist else "")
                       + "\n到场请出示签到码。"))
        sent += 1
    return sent
