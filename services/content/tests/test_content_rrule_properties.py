"""Scheduling properties (issue 7, part 5): RRULE occurrences across DST changes and month ends.

Generated rules in America/New_York, Europe/London, Australia/Sydney (DST) and Asia/Shanghai (none):
- a daily rule fires exactly once per local calendar day, at its wall-clock time (or, on the day that time
  does not exist, one hour later — the documented fold=0 resolution), never twice on the fall-back day;
- BYMONTHDAY=29/30/31 fires in exactly the months that have that day (RFC 5545: others are skipped),
  BYMONTHDAY=-1 on the last day of every month;
- `upcoming`, `next_after`, `first_at_or_after`, `is_occurrence` and the end date agree with each other.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from content.scheduling import rules

# Local dates on which the offset changes (2026–2027).
TRANSITIONS = {
    "America/New_York": [date(2026, 3, 8), date(2026, 11, 1), date(2027, 3, 14), date(2027, 11, 7)],
    "Europe/London": [date(2026, 3, 29), date(2026, 10, 25), date(2027, 3, 28), date(2027, 10, 31)],
    "Australia/Sydney": [date(2026, 4, 5), date(2026, 10, 4), date(2027, 4, 4), date(2027, 10, 3)],
    "Asia/Shanghai": [date(2026, 3, 8), date(2026, 11, 1)],  # no DST: the same dates as a control
}
ZONES = sorted(TRANSITIONS)


@dataclass
class S:
    rrule: str | None
    timezone: str
    starts_at: datetime
    until_at: datetime | None = None


def exists(day: date, wall: time, tz: ZoneInfo) -> bool:
    """Whether this wall-clock time happens on that day (not in a spring-forward gap)."""
    local = datetime.combine(day, wall, tzinfo=tz)
    return local.astimezone(UTC).astimezone(tz).replace(tzinfo=None) == local.replace(tzinfo=None)


@st.composite
def daily_around_a_transition(draw):
    zone = draw(st.sampled_from(ZONES))
    transition = draw(st.sampled_from(TRANSITIONS[zone]))
    start = transition - timedelta(days=draw(st.integers(0, 10)))
    # Hours 0–3 hit the gap and the repeated hour in every one of these zones.
    wall = time(draw(st.sampled_from([0, 1, 2, 3, 9, 11, 20, 23])), draw(st.sampled_from([0, 15, 30, 59])))
    return zone, start, wall


@settings(max_examples=60, deadline=None)
@given(case=daily_around_a_transition(), days=st.integers(15, 25))
def test_a_daily_rule_fires_once_per_local_day_at_its_wall_time(case, days):
    zone, start, wall = case
    tz = ZoneInfo(zone)
    s = S(f"FREQ=DAILY;BYHOUR={wall.hour};BYMINUTE={wall.minute};BYSECOND=0", zone,
          datetime.combine(start, time(0, 0), tzinfo=tz).astimezone(UTC))
    got = rules.upcoming(s, after=s.starts_at, count=days)

    assert len(got) == days
    assert all(g.tzinfo == UTC for g in got)
    assert all(a < b for a, b in zip(got, got[1:], strict=False))
    local = [g.astimezone(tz) for g in got]
    # Once per local day, no day skipped, none doubled (the fall-back day repeats an hour).
    assert [d.date() for d in local] == [start + timedelta(days=n) for n in range(days)]
    for moment in local:
        if exists(moment.date(), wall, tz):
            assert moment.time() == wall, f"{moment} is not at {wall} local"
        else:  # the gap: fold=0 keeps the offset before the change, one hour later on the wall clock
            shifted = datetime.combine(moment.date(), wall) + timedelta(hours=1)
            assert moment.replace(tzinfo=None) == shifted
    # Consecutive firings are a day apart give or take the DST change.
    assert {b - a for a, b in zip(got, got[1:], strict=False)} <= {timedelta(hours=h) for h in (23, 24, 25)}


@settings(max_examples=60, deadline=None)
@given(zone=st.sampled_from(ZONES), monthday=st.sampled_from([29, 30, 31, -1]),
       start=st.dates(date(2026, 1, 1), date(2030, 12, 31)), hour=st.sampled_from([0, 2, 9, 21, 23]),
       count=st.integers(3, 14))
def test_month_end_rules_fire_in_exactly_the_months_that_have_the_day(zone, monthday, start, hour, count):
    tz = ZoneInfo(zone)
    s = S(f"FREQ=MONTHLY;BYMONTHDAY={monthday};BYHOUR={hour};BYMINUTE=0;BYSECOND=0", zone,
          datetime.combine(start, time(0, 0), tzinfo=tz).astimezone(UTC))
    got = [g.astimezone(tz) for g in rules.upcoming(s, after=s.starts_at, count=count)]

    expected, year, month = [], start.year, start.month
    while len(expected) < count:
        last = calendar.monthrange(year, month)[1]
        day = last if monthday == -1 else monthday
        if day <= last and date(year, month, day) >= start:
            expected.append(date(year, month, day))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    assert [g.date() for g in got] == expected
    assert all(g.hour in (hour, hour + 1) for g in got)  # +1 only in a spring-forward gap


@settings(max_examples=60, deadline=None)
@given(case=daily_around_a_transition(), weekly=st.booleans(), probe=st.floats(0, 1), end_after=st.integers(1, 12))
def test_the_schedule_functions_agree_with_each_other_and_the_end_date(case, weekly, probe, end_after):
    zone, start, wall = case
    # Wall times in the changing hour (00:00–04:00 local) disagree: see the two reported defects below.
    assume(wall.hour >= 4)
    tz = ZoneInfo(zone)
    text = f"FREQ={'WEEKLY;BYDAY=SU,WE' if weekly else 'DAILY'};BYHOUR={wall.hour};BYMINUTE={wall.minute};BYSECOND=0"
    open_ended = S(text, zone, datetime.combine(start, time(0, 0), tzinfo=tz).astimezone(UTC))
    got = rules.upcoming(open_ended, after=open_ended.starts_at, count=12)
    assert len(got) == 12

    for a, b in zip(got, got[1:], strict=False):
        assert rules.next_after(open_ended, a) == b
        assert rules.is_occurrence(open_ended, a)
        between = a + (b - a) * probe
        if a < between < b:
            assert not rules.is_occurrence(open_ended, between)
            assert rules.first_at_or_after(open_ended, between) == b
        assert rules.first_at_or_after(open_ended, a) == a

    ended = S(text, zone, open_ended.starts_at, until_at=got[end_after - 1])
    assert rules.upcoming(ended, after=ended.starts_at, count=20) == got[:end_after]
    assert rules.next_after(ended, got[end_after - 1]) is None


NEW_YORK = ZoneInfo("America/New_York")


def test_the_occurrence_in_the_spring_forward_gap_is_an_occurrence():
    s = S("FREQ=DAILY;BYHOUR=2;BYMINUTE=0;BYSECOND=0", "America/New_York", datetime(2026, 3, 7, 5, 0, tzinfo=UTC))
    gap_day = rules.upcoming(s, after=datetime(2026, 3, 8, tzinfo=UTC), count=1)[0]
    assert gap_day == datetime(2026, 3, 8, 7, 0, tzinfo=UTC)  # 03:00 EDT: fold=0, as documented
    assert rules.is_occurrence(s, gap_day)


def test_first_at_or_after_never_answers_an_earlier_moment_on_the_fall_back_day():
    s = S("FREQ=DAILY;BYHOUR=1;BYMINUTE=30;BYSECOND=0", "America/New_York", datetime(2026, 10, 25, tzinfo=UTC))
    moment = datetime(2026, 11, 1, 6, 0, tzinfo=UTC)  # 01:00 EST, half an hour after 01:30 EDT fired
    assert rules.first_at_or_after(s, moment) >= moment
