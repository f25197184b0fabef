"""RRULE evaluation in a community's time zone, across DST changes, with end dates."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from content.scheduling import rules


@dataclass
class S:
    rrule: str | None
    timezone: str
    starts_at: datetime
    until_at: datetime | None = None


def test_every_day_at_11_in_shanghai_is_03_utc():
    s = S("FREQ=DAILY;BYHOUR=11;BYMINUTE=0;BYSECOND=0", "Asia/Shanghai", datetime(2026, 11, 26, 0, 0, tzinfo=UTC))
    got = rules.upcoming(s, after=datetime(2026, 11, 26, 0, 0, tzinfo=UTC), count=3)
    assert got == [datetime(2026, 11, d, 3, 0, tzinfo=UTC) for d in (26, 27, 28)]


def test_every_sunday_2030_new_york_keeps_the_wall_clock_across_the_dst_end():
    tz = ZoneInfo("America/New_York")
    s = S(
        "FREQ=WEEKLY;BYDAY=SU;BYHOUR=20;BYMINUTE=30;BYSECOND=0",
        "America/New_York",
        datetime(2026, 10, 18, 20, 30, tzinfo=tz),
    )
    got = rules.upcoming(s, after=datetime(2026, 10, 20, tzinfo=UTC), count=3)
    assert [g.astimezone(tz).strftime("%a %H:%M") for g in got] == ["Sun 20:30"] * 3
    # 2026-11-01 DST ends: the same wall time is one hour later in UTC.
    assert [g.strftime("%m-%d %H:%M") for g in got] == ["10-26 00:30", "11-02 01:30", "11-09 01:30"]


def test_spring_forward_gap_and_london_dst_start():
    tz = ZoneInfo("Europe/London")
    s = S("FREQ=DAILY;BYHOUR=1;BYMINUTE=30;BYSECOND=0", "Europe/London", datetime(2026, 3, 27, 1, 30, tzinfo=tz))
    got = rules.upcoming(s, after=datetime(2026, 3, 27, tzinfo=UTC), count=3)
    # 01:30 does not exist on 2026-03-29 in London; it resolves with the pre-change offset (fold=0).
    assert [g.strftime("%m-%d %H:%M") for g in got] == ["03-27 01:30", "03-28 01:30", "03-29 01:30"]
    assert rules.next_after(s, got[-1]) == datetime(2026, 3, 30, 0, 30, tzinfo=UTC)  # 01:30 BST


def test_end_date_and_one_off():
    s = S(
        "FREQ=DAILY",
        "Asia/Shanghai",
        datetime(2026, 11, 26, 3, tzinfo=UTC),
        until_at=datetime(2026, 11, 27, 3, tzinfo=UTC),
    )
    assert rules.upcoming(s, after=datetime(2026, 11, 1, tzinfo=UTC), count=5) == [
        datetime(2026, 11, 26, 3, tzinfo=UTC),
        datetime(2026, 11, 27, 3, tzinfo=UTC),
    ]
    once = S(None, "UTC", datetime(2026, 11, 26, 3, tzinfo=UTC))
    assert rules.first_at_or_after(once, datetime(2026, 11, 26, 2, tzinfo=UTC)) == once.starts_at
    assert rules.first_at_or_after(once, datetime(2026, 11, 26, 4, tzinfo=UTC)) is None
    assert rules.next_after(once, once.starts_at) is None
    assert rules.is_occurrence(s, datetime(2026, 11, 27, 3, tzinfo=UTC))
    assert not rules.is_occurrence(s, datetime(2026, 11, 27, 4, tzinfo=UTC))


@pytest.mark.parametrize(
    "text",
    [
        "FREQ=FORTNIGHTLY",
        "BYHOUR=11",
        "FREQ=DAILY;BYHOUR=25",
        "DTSTART:20260101T000000Z\nRRULE:FREQ=DAILY",
        "FREQ=SECONDLY",
        "FREQ=DAILY;UNTIL=garbage",
    ],
)
def test_bad_rules_are_refused_with_a_message(text):
    with pytest.raises(ValueError):
        rules.check_rule(text, "Asia/Shanghai")


def test_unknown_zone():
    with pytest.raises(ValueError, match="Mars/Olympus"):
        rules.zone("Mars/Olympus")
