"""A schedule shows the truth: `upcoming` lists only what will fire (no exceptions, nothing past the end,
nothing while paused), the same in GET one, the list and after each change."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from content.scheduling import rules

DAILY_11 = "FREQ=DAILY;BYHOUR=11;BYMINUTE=0;BYSECOND=0"  # Asia/Shanghai: 03:00 UTC


def day(d: int, month: int = 11) -> str:
    return f"2026-{month:02d}-{d:02d}T03:00:00Z"


@dataclass
class S:
    rrule: str | None
    timezone: str
    starts_at: datetime
    until_at: datetime | None = None


# -- the rule alone -----------------------------------------------------------------------------------


def test_upcoming_leaves_out_exception_dates_and_stops_at_the_end():
    s = S(DAILY_11, "Asia/Shanghai", datetime(2026, 11, 26, 3, tzinfo=UTC), datetime(2026, 12, 1, 3, tzinfo=UTC))
    at = [datetime(2026, 11, d, 3, tzinfo=UTC) for d in (26, 27, 28, 29, 30)] + [datetime(2026, 12, 1, 3, tzinfo=UTC)]
    exceptions = [at[1], at[3].astimezone(ZoneInfo("Asia/Shanghai"))]  # an instant, in whichever zone
    got = rules.upcoming(s, after=at[0], count=10, exceptions=exceptions)
    assert got == [at[0], at[2], at[4], at[5]]
    assert rules.upcoming(s, after=at[0], count=2, exceptions=exceptions) == [at[0], at[2]]
    # Every occurrence up to the end excepted: nothing will fire.
    assert rules.upcoming(s, after=at[0], count=5, exceptions=at) == []
    # A date that is not an occurrence changes nothing.
    assert rules.upcoming(s, after=at[0], count=3, exceptions=[at[0] + timedelta(minutes=1)]) == at[:3]


def test_an_exception_in_a_dst_gap_still_cancels_itself():
    tz = ZoneInfo("Europe/London")
    s = S("FREQ=DAILY;BYHOUR=1;BYMINUTE=30;BYSECOND=0", "Europe/London", datetime(2026, 3, 27, 1, 30, tzinfo=tz))
    plain = rules.upcoming(s, after=datetime(2026, 3, 27, tzinfo=UTC), count=4)
    gap = plain[2]  # 2026-03-29 01:30 does not exist in London; it is 01:30 UTC (02:30 BST on the wall)
    assert gap == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
    got = rules.upcoming(s, after=datetime(2026, 3, 27, tzinfo=UTC), count=3, exceptions=[gap])
    assert got == [plain[0], plain[1], plain[3]]


@settings(max_examples=60, deadline=None)
@given(
    zone=st.sampled_from(["Asia/Shanghai", "Europe/London", "America/New_York", "Australia/Lord_Howe"]),
    rule=st.sampled_from(["FREQ=DAILY;BYHOUR=1;BYMINUTE=30", "FREQ=WEEKLY;BYDAY=SU;BYHOUR=2;BYMINUTE=0", DAILY_11]),
    start_day=st.integers(min_value=0, max_value=364),
    excepted=st.sets(st.integers(min_value=0, max_value=19), max_size=12),
)
def test_upcoming_with_exceptions_is_the_plain_list_without_them(zone, rule, start_day, excepted):
    s = S(rule, zone, datetime(2026, 1, 1, tzinfo=UTC) + timedelta(days=start_day))
    plain = rules.upcoming(s, after=s.starts_at, count=40)
    exceptions = [plain[i] for i in excepted]
    expected = [at for at in plain if at not in exceptions][:8]
    assert rules.upcoming(s, after=s.starts_at, count=8, exceptions=exceptions) == expected


def test_a_one_off_with_its_exception_has_nothing_upcoming():
    once = S(None, "UTC", datetime(2026, 11, 26, 3, tzinfo=UTC))
    assert rules.upcoming(once, after=datetime(2026, 11, 26, tzinfo=UTC), count=5) == [once.starts_at]
    assert rules.upcoming(once, after=datetime(2026, 11, 26, tzinfo=UTC), count=5, exceptions=[once.starts_at]) == []


# -- through the API ------------------------------------------------------------------------------------


@pytest.fixture
async def env(bus, start_content_at, seed_community, clock):
    async with start_content_at() as content:
        community = await seed_community(bus, content, clock)
        yield community


async def shown(c, sid: str) -> dict:
    """The schedule as GET one shows it, checked to be the same in the list."""
    one = await c.get(f"/schedules/{sid}")
    assert one.status_code == 200
    listed = [s for s in (await c.get("/schedules")).json() if s["id"] == sid]
    assert listed == [one.json()]
    return one.json()


async def test_exceptions_end_date_and_pause_show_in_upcoming(env, clock):
    c = env
    created = await c.post(
        "/schedules",
        {"text": "早安", "starts_at": c.t0.isoformat(), "rrule": DAILY_11, "until_at": "2026-12-01T03:00:00Z"},
    )
    assert created.status_code == 201, created.text
    sid = created.json()["id"]
    assert created.json()["upcoming"] == [day(27), day(28), day(29), day(30), day(1, 12)]

    # An exception on the next one and on the 29th: neither is listed; the next that fires is the 28th.
    for d in (27, 29):
        added = await c.post(f"/schedules/{sid}/exceptions", {"occurs_at": day(d)})
        assert added.status_code == 200, added.text
    s = await shown(c, sid)
    assert s["exceptions"] == [day(27), day(29)]
    assert s["upcoming"] == [day(28), day(30), day(1, 12)]  # and nothing past the end date
    assert (s["next_occurs_at"], s["next_due_at"]) == (day(28), day(28))

    # Taking an exception back lists the date again.
    removed = await c.post(f"/schedules/{sid}/exceptions", {"occurs_at": day(29)}, method="DELETE")
    assert removed.json()["upcoming"] == [day(28), day(29), day(30), day(1, 12)]

    # Moving the end date earlier shortens the list.
    ended = await c.post(f"/schedules/{sid}/end", {"until_at": "2026-11-29T12:00:00Z"}, method="PUT")
    assert ended.json()["upcoming"] == [day(28), day(29)]

    # Paused: nothing will fire, so nothing is upcoming (in GET one, the list and the pause answer).
    paused = (await c.post(f"/schedules/{sid}/pause")).json()
    assert (paused["status"], paused["upcoming"], paused["next_occurs_at"], paused["next_due_at"]) == (
        "paused",
        [],
        None,
        None,
    )
    assert (await shown(c, sid))["upcoming"] == []
    clock.set(c.t0 + timedelta(days=1, hours=23, minutes=1))  # the 28th passes while paused
    assert (await c.tick()).fired == 0

    # Resumed: from the next occurrence due from now, the exception dates still left out.
    resumed = (await c.post(f"/schedules/{sid}/resume")).json()
    assert (resumed["status"], resumed["upcoming"], resumed["next_occurs_at"]) == ("active", [day(29)], day(29))
    clock.set(c.t0 + timedelta(days=2, hours=23))
    assert (await c.tick()).fired == 1
    done = await shown(c, sid)
    assert (done["status"], done["upcoming"], done["next_occurs_at"]) == ("completed", [], None)
    # The history agrees: only the 29th fired; nothing reads pending that did not fire.
    history = (await c.get(f"/schedules/{sid}/occurrences")).json()
    assert sorted((o["occurs_at"], o["status"], o["skip_reason"]) for o in history) == [
        (day(29), "fired", None),
    ]


async def test_an_exception_on_the_next_occurrence_is_skipped_and_recorded_when_it_comes(env, clock):
    c = env
    created = (await c.post("/schedules", {"text": "早安", "starts_at": c.t0.isoformat(), "rrule": DAILY_11})).json()
    sid = created["id"]
    await c.post(f"/schedules/{sid}/exceptions", {"occurs_at": day(27)})
    assert (await shown(c, sid))["upcoming"][:2] == [day(28), day(29)]
    clock.set(c.t0 + timedelta(hours=23))
    assert (await c.tick()).fired == 0
    history = (await c.get(f"/schedules/{sid}/occurrences")).json()
    assert [(o["occurs_at"], o["status"], o["skip_reason"]) for o in history] == [(day(27), "skipped", "exception")]
    assert (await shown(c, sid))["upcoming"][:2] == [day(28), day(29)]
