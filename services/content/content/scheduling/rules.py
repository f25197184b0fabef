"""RFC 5545 recurrence rules (python-dateutil), evaluated in a schedule's IANA time zone.

Rules expand in local wall time, so "every Sunday 20:30" stays 20:30 local across DST changes; the
occurrences are then stored in UTC. A local time that does not exist (spring-forward gap) resolves
with the offset before the change (fold=0), i.e. it fires an hour later on the wall clock.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil.rrule import rrule, rrulebase, rruleset, rrulestr

_FORBIDDEN = ("DTSTART", "FREQ=SECONDLY", "\n", "\r")


class ScheduleLike(Protocol):
    rrule: str | None
    timezone: str
    starts_at: datetime
    until_at: datetime | None


def zone(name: str) -> ZoneInfo:
    """The IANA zone, or ValueError naming it."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ValueError(f"unknown IANA time zone {name!r}") from None


def normalise(text: str) -> str:
    body = text.strip()
    if body.upper().startswith("RRULE:"):
        body = body[len("RRULE:") :]
    return body


@lru_cache(maxsize=4096)
def compile_rule(text: str, starts_at: datetime, tz: str) -> rrule:
    """The rule with its DTSTART at `starts_at` in `tz`; ValueError with a readable message if bad."""
    body = normalise(text)
    upper = body.upper()
    for bad in _FORBIDDEN:
        if bad in upper:
            raise ValueError(f"RRULE must not contain {bad.strip() or 'line breaks'} (DTSTART is starts_at)")
    if "FREQ=" not in upper:
        raise ValueError("RRULE needs FREQ (e.g. FREQ=DAILY;BYHOUR=11;BYMINUTE=0)")
    dtstart = starts_at.astimezone(zone(tz))
    try:
        rule = rrulestr(body, dtstart=dtstart, cache=False)
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        raise ValueError(f"invalid RRULE: {exc}") from None
    if not isinstance(rule, rrule):  # an RRULE line with EXRULE/RDATE parts gives a set
        raise ValueError("only a single RRULE is supported; add exceptions through the API")
    return rule


def check_rule(text: str, tz: str) -> str:
    """Syntax check without a real start (request validation); returns the normalised rule."""
    compile_rule(text, datetime(2026, 1, 1, tzinfo=UTC), tz)
    return normalise(text)


def _in_range(schedule: ScheduleLike, occurrence: datetime | None) -> datetime | None:
    if occurrence is None:
        return None
    occurrence = occurrence.astimezone(UTC)
    if schedule.until_at is not None and occurrence > schedule.until_at:
        return None
    return occurrence


# Wider than any DST shift (at most an hour; Lord Howe's is 30 minutes).
_DST_MARGIN = timedelta(hours=3)


def _after(rule: rrulebase, moment: datetime, tz: str, *, inc: bool) -> datetime | None:
    """The first occurrence after (or at, with `inc`) the instant `moment`.

    dateutil compares its local occurrences by wall clock (Python ignores the offset and `fold` of two
    datetimes of the same zone), which is wrong around a DST change: an occurrence in the spring-forward gap
    would not count as itself, and on the fall-back day an instant after the first 01:30 would be answered
    with that 01:30. So start a few hours earlier on the wall clock and compare instants.
    """
    instant = moment.astimezone(UTC)
    for occurrence in rule.xafter(moment.astimezone(zone(tz)) - _DST_MARGIN, inc=True):
        at = occurrence.astimezone(UTC)
        if at > instant or (inc and at == instant):
            return occurrence
    return None


def first_at_or_after(schedule: ScheduleLike, moment: datetime) -> datetime | None:
    """The first occurrence at or after `moment` (UTC), honouring the end date."""
    if schedule.rrule is None:
        return _in_range(schedule, schedule.starts_at if schedule.starts_at >= moment else None)
    rule = compile_rule(schedule.rrule, schedule.starts_at, schedule.timezone)
    return _in_range(schedule, _after(rule, moment, schedule.timezone, inc=True))


def next_after(schedule: ScheduleLike, occurrence: datetime) -> datetime | None:
    """The occurrence following `occurrence`, or None when the schedule is exhausted."""
    if schedule.rrule is None:
        return None
    rule = compile_rule(schedule.rrule, schedule.starts_at, schedule.timezone)
    return _in_range(schedule, _after(rule, occurrence, schedule.timezone, inc=False))


def is_occurrence(schedule: ScheduleLike, moment: datetime) -> bool:
    if schedule.rrule is None:
        return moment == schedule.starts_at
    return first_at_or_after(schedule, moment) == moment.astimezone(UTC)


def without_exceptions(schedule: ScheduleLike, exceptions: Iterable[datetime]) -> rruleset:
    """The schedule's rule as an rruleset with each exception date as an EXDATE.

    dateutil matches an EXDATE against the rule's local occurrences by wall clock, so each exception (an
    instant in UTC) is entered as the rule's own local occurrence at that instant: a date in a DST gap
    (01:30 that resolves to 01:30 GMT, i.e. 02:30 BST on the wall) still cancels itself.
    """
    if schedule.rrule is None:
        raise ValueError("a one-off schedule has no rule")
    rule = compile_rule(schedule.rrule, schedule.starts_at, schedule.timezone)
    result = rruleset(cache=False)
    result.rrule(rule)
    for exception in exceptions:
        own = _after(rule, exception, schedule.timezone, inc=True)
        if own is not None and own.astimezone(UTC) == exception.astimezone(UTC):
            result.exdate(own)
    return result


def upcoming(
    schedule: ScheduleLike, *, after: datetime, count: int, exceptions: Iterable[datetime] = ()
) -> list[datetime]:
    """The next `count` occurrences at or after `after` that will fire (for the API).

    Exception dates are left out (EXDATEs of an rruleset) and nothing past the end date is listed.
    """
    excluded = [e.astimezone(UTC) for e in exceptions]
    if schedule.rrule is None:
        first = first_at_or_after(schedule, after)
        return [first] if first is not None and first not in excluded and count > 0 else []
    ruleset = without_exceptions(schedule, excluded)
    found: list[datetime] = []
    occurrence = _in_range(schedule, _after(ruleset, after, schedule.timezone, inc=True))
    while occurrence is not None and len(found) < count:
        found.append(occurrence)
        occurrence = _in_range(schedule, _after(ruleset, occurrence, schedule.timezone, inc=False))
    return found


def seconds(delta: timedelta) -> float:
    return delta.total_seconds()
