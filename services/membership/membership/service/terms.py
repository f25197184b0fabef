"""Term arithmetic (pure): when a membership ends, in the community's time zone.

- `fixed_duration`: N days from the start, same local wall-clock time (a DST jump doesn't move it).
- `fixed_term`: every membership ends at local midnight on the community's anniversary (固定期限);
  29 February falls back to 28 February in other years.

A membership's end is *replayed* from its granted payments in payment order (each term starts when the
previous one ends, or at payment when it already ended), so a refunded payment simply drops out and
duplicate or reordered events cannot shift the result.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class Grant:
    payment_id: str
    paid_at: datetime
    term_type: str
    duration_days: int | None


def anniversary_of(created_at: datetime, tz: str, override: str | None) -> tuple[int, int]:
    if override:
        month, day = override.split("-")
        return int(month), int(day)
    local = created_at.astimezone(ZoneInfo(tz))
    return local.month, local.day


def _on(year: int, month: int, day: int) -> date:
    return date(year, month, min(day, calendar.monthrange(year, month)[1]))


def next_anniversary(after: datetime, *, month: int, day: int, tz: str) -> datetime:
    """The first local midnight of the anniversary strictly after `after`, in UTC."""
    zone = ZoneInfo(tz)
    local_year = after.astimezone(zone).year
    for year in (local_year, local_year + 1, local_year + 2):
        candidate = datetime.combine(_on(year, month, day), time(0), tzinfo=zone)
        if candidate > after:
            return candidate.astimezone(UTC)
    raise AssertionError("unreachable")  # pragma: no cover


def term_end(start: datetime, *, term_type: str, duration_days: int | None, anniversary: tuple[int, int],
             tz: str) -> datetime:
    if term_type == "fixed_duration":
        if not duration_days:
            raise ValueError("fixed_duration needs duration_days")
        local = start.astimezone(ZoneInfo(tz))
        return (local + timedelta(days=duration_days)).astimezone(UTC)
    if term_type == "fixed_term":
        month, day = anniversary
        return next_anniversary(start, month=month, day=day, tz=tz)
    raise ValueError(f"unknown term type {term_type!r}")


def replay(grants: Iterable[Grant], *, anniversary: tuple[int, int], tz: str,
           trial_expires_at: datetime | None = None) -> datetime | None:
    """The end of the membership bought by `grants` (plus a trial), or None when nothing grants access."""
    end: datetime | None = None
    for grant in sorted(grants, key=lambda g: (g.paid_at, g.payment_id)):
        start = grant.paid_at if end is None or end < grant.paid_at else end
        end = term_end(start, term_type=grant.term_type, duration_days=grant.duration_days,
                       anniversary=anniversary, tz=tz)
    candidates = [e for e in (end, trial_expires_at) if e is not None]
    return max(candidates) if candidates else None


def local_day_bounds(moment: datetime, tz: str) -> tuple[datetime, datetime]:
    zone = ZoneInfo(tz)
    day = moment.astimezone(zone).date()
    start = datetime.combine(day, time(0), tzinfo=zone)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone)
    return start.astimezone(UTC), end.astimezone(UTC)


def reminder_due_at(expires_at: datetime, *, days_before: int, local_time: str, tz: str) -> datetime:
    """When the reminder `days_before` the end goes out: that local day at `local_time` (community zone),
    but never after the end itself."""
    zone = ZoneInfo(tz)
    hour, minute = (int(p) for p in local_time.split(":"))
    day = expires_at.astimezone(zone).date() - timedelta(days=days_before)
    due = datetime.combine(day, time(hour, minute), tzinfo=zone).astimezone(UTC)
    return min(due, expires_at)


def format_local(moment: datetime, tz: str) -> str:
    return moment.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M")
