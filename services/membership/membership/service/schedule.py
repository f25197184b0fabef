"""When a membership's next reminder is due (renewal before the end, ritual after joining); pure."""

from __future__ import annotations

from datetime import datetime, timedelta

from membership.models import Community, Membership
from membership.models.member import LIVE_STATUSES
from membership.service.terms import reminder_due_at


def reminder_dues(member: Membership, community: Community, ritual_hours: list[int]) -> list[tuple[datetime, str]]:
    """Every reminder this membership is due, as (when, key) pairs."""
    dues: list[tuple[datetime, str]] = []
    if community.status != "active":
        return dues
    if member.status in LIVE_STATUSES and not member.comp and member.expires_at is not None:
        for days in community.reminder_days:
            at = reminder_due_at(member.expires_at, days_before=days, local_time=community.reminder_local_time,
                                 tz=community.timezone)
            dues.append((at, f"renewal:{member.expires_at.isoformat()}:{days}"))
    if member.status == "pending_ritual" and member.joined_at is not None and community.ritual_enabled:
        for hours in ritual_hours:
            dues.append((member.joined_at + timedelta(hours=hours), f"ritual:{member.joined_at.isoformat()}:{hours}"))
    return sorted(dues)


def schedule_reminders(member: Membership, community: Community, ritual_hours: list[int], now: datetime) -> None:
    """Point `next_reminder_at` at the next reminder after now (the scheduler claims rows by it)."""
    upcoming = [at for at, _ in reminder_dues(member, community, ritual_hours) if at > now]
    member.next_reminder_at = min(upcoming) if upcoming else None
