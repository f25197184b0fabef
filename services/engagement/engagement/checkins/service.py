"""Check-in challenges, derived from the check-in activities (nothing to rebuild on replay).

A check-in counts for a challenge when it happened on a local day from `starts_on`, before the
deadline, inside the daily window (if any) and in the challenge's group (if any). Progress is
counted in distinct local days.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from engagement.context import EngagementContext
from engagement.errors import ThingNotFound
from engagement.models import (
    Activity,
    ChallengeCompletion,
    ChallengeCreate,
    ChallengeProgress,
    CheckinChallenge,
    CommunityCopy,
)
from qunzhu_common.events.contracts.engagement import CheckinChallengeCompleted
from qunzhu_common.timeutil import utcnow


def streaks(days: list[date], today: date) -> tuple[int, int]:
    """(current, longest) runs of consecutive days; the current run is alive if it reaches today or yesterday."""
    longest = run = 0
    previous: date | None = None
    for day in sorted(set(days)):
        run = run + 1 if previous is not None and day - previous == timedelta(days=1) else 1
        longest = max(longest, run)
        previous = day
    current = run if previous is not None and today - previous <= timedelta(days=1) else 0
    return current, longest


async def create_challenge(
    session: AsyncSession, *, community: CommunityCopy, data: ChallengeCreate
) -> CheckinChallenge:
    zone = ZoneInfo(community.timezone)
    start = datetime.combine(data.starts_on, datetime.min.time(), zone)
    deadline = data.deadline or start + timedelta(days=data.length_days + 7)
    challenge = CheckinChallenge(
        **data.model_dump(exclude={"deadline"}), community_id=community.id, deadline=deadline, created_at=utcnow()
    )
    session.add(challenge)
    await session.flush()
    return challenge


async def get_challenge(session: AsyncSession, *, community_id: str, challenge_id: str) -> CheckinChallenge:
    challenge = await session.get(CheckinChallenge, challenge_id)
    if challenge is None or challenge.community_id != community_id:
        raise ThingNotFound(f"challenge {challenge_id} does not exist in community {community_id}")
    return challenge


def _counts(challenge: CheckinChallenge, activity_at: datetime, group_id: str, zone: ZoneInfo) -> date | None:
    """The local day this check-in counts for in the challenge, or None."""
    local = activity_at.astimezone(zone)
    if local.date() < challenge.starts_on or activity_at > challenge.deadline:
        return None
    if challenge.group_id and group_id != challenge.group_id:
        return None
    if challenge.window_start is not None and challenge.window_end is not None:
        if not challenge.window_start <= local.time() < challenge.window_end:
            return None
    return local.date()


async def _days_by_person(
    session: AsyncSession, challenge: CheckinChallenge, zone: ZoneInfo, person_id: str | None = None
) -> dict[str, list[date]]:
    start = datetime.combine(challenge.starts_on, datetime.min.time(), zone)
    query = select(Activity.person_id, Activity.occurred_at, Activity.group_id).where(
        Activity.community_id == challenge.community_id,
        Activity.kind == "checkin",
        Activity.status == "scored",
        Activity.occurred_at >= start,
        Activity.occurred_at <= challenge.deadline,
    )
    if person_id is not None:
        query = query.where(Activity.person_id == person_id)
    days: dict[str, set[date]] = defaultdict(set)
    for person, at, group in await session.execute(query):
        day = _counts(challenge, at, group, zone)
        if day is not None:
            days[person].add(day)
    return {p: sorted(d) for p, d in days.items()}


def _progress(challenge: CheckinChallenge, person: str, days: list[date], today: date) -> ChallengeProgress:
    current, longest = streaks(days, today)
    return ChallengeProgress(
        person_id=person, days_checked_in=len(days), current_streak=current, longest_streak=longest,
        completed=len(days) >= challenge.length_days, days_needed=max(0, challenge.length_days - len(days)),
        last_checkin_day=days[-1] if days else None,
    )


async def progress(
    session: AsyncSession, *, challenge: CheckinChallenge, timezone: str, person_id: str, now: datetime | None = None
) -> ChallengeProgress:
    zone = ZoneInfo(timezone)
    days = (await _days_by_person(session, challenge, zone, person_id)).get(person_id, [])
    return _progress(challenge, person_id, days, (now or utcnow()).astimezone(zone).date())


async def leaderboard(
    session: AsyncSession, *, challenge: CheckinChallenge, timezone: str, limit: int = 50, now: datetime | None = None
) -> list[ChallengeProgress]:
    """Check-in leaderboard: most days, then the longest streak, then who reached it first."""
    zone = ZoneInfo(timezone)
    today = (now or utcnow()).astimezone(zone).date()
    rows = [_progress(challenge, p, d, today) for p, d in (await _days_by_person(session, challenge, zone)).items()]
    rows.sort(key=lambda r: (-r.days_checked_in, -r.longest_streak, r.last_checkin_day or date.max, r.person_id))
    for i, row in enumerate(rows):
        same = i and (rows[i - 1].days_checked_in, rows[i - 1].longest_streak) == (row.days_checked_in,
                                                                                   row.longest_streak)
        row.rank = rows[i - 1].rank if same else i + 1
    return rows[:limit]


async def open_challenges(
    session: AsyncSession, *, community_ids: list[str], since: datetime
) -> list[CheckinChallenge]:
    """Challenges of these communities still open at `since` (a scored batch reads them once)."""
    return list((await session.execute(
        select(CheckinChallenge).where(CheckinChallenge.community_id.in_(community_ids),
                                       CheckinChallenge.deadline >= since)
    )).scalars().all())


async def on_checkin(
    session: AsyncSession,
    ctx: EngagementContext,
    *,
    activity: Activity,
    community: CommunityCopy,
    challenges: list[CheckinChallenge],
) -> None:
    """After a check-in is scored: announce each challenge of `challenges` it completes (once per member)."""
    zone = ZoneInfo(community.timezone)
    for challenge in challenges:
        if challenge.community_id != community.id or challenge.deadline < activity.occurred_at:
            continue
        if _counts(challenge, activity.occurred_at, activity.group_id, zone) is None:
            continue
        state = await progress(session, challenge=challenge, timezone=community.timezone,
                               person_id=activity.person_id, now=activity.occurred_at)
        if not state.completed:
            continue
        done = await session.scalar(select(ChallengeCompletion.id).where(
            ChallengeCompletion.challenge_id == challenge.id, ChallengeCompletion.person_id == activity.person_id
        ))
        if done is not None:
            continue
        session.add(ChallengeCompletion(challenge_id=challenge.id, person_id=activity.person_id,
                                        completed_at=activity.occurred_at))
        await ctx.emit(session, type="checkin_challenge.completed", community_id=community.id,
                       data=CheckinChallengeCompleted(
                           community_id=community.id, challenge_id=challenge.id, challenge_title=challenge.title,
                           person_id=activity.person_id, days_checked_in=state.days_checked_in,
                           longest_streak=state.longest_streak, completed_at=activity.occurred_at,
                       ))
