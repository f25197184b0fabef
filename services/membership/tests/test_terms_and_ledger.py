"""Pure rules: term arithmetic in a time zone, the ledger's split and proportional refunds, periods."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from membership.service.fission import period_bounds
from membership.service.ledger import allocate, split_payment
from membership.service.terms import Grant, next_anniversary, reminder_due_at, replay, term_end

SHANGHAI = "Asia/Shanghai"


def test_a_29_february_anniversary_falls_on_28_february_in_other_years():
    end = next_anniversary(datetime(2027, 1, 10, tzinfo=UTC), month=2, day=29, tz=SHANGHAI)
    assert end == datetime(2027, 2, 27, 16, 0, tzinfo=UTC)  # 2027-02-28 00:00 +08:00
    leap = next_anniversary(datetime(2028, 1, 10, tzinfo=UTC), month=2, day=29, tz=SHANGHAI)
    assert leap == datetime(2028, 2, 28, 16, 0, tzinfo=UTC)


def test_the_anniversary_is_strictly_after_the_start():
    at_midnight = datetime(2026, 11, 25, 16, 0, tzinfo=UTC)  # exactly 2026-11-26 00:00 in Shanghai
    assert next_anniversary(at_midnight, month=11, day=26, tz=SHANGHAI) == datetime(2027, 11, 25, 16, tzinfo=UTC)


def test_a_fixed_duration_keeps_the_local_wall_clock_time_across_dst():
    start = datetime(2027, 10, 30, 14, 0, tzinfo=UTC)  # 16:00 in Berlin (CEST ends on 31 October)
    end = term_end(start, term_type="fixed_duration", duration_days=2, anniversary=(1, 1), tz="Europe/Berlin")
    assert end == datetime(2027, 11, 1, 15, 0, tzinfo=UTC)  # 16:00 CET: 49 hours later


def test_replay_chains_terms_and_ignores_order_of_arrival():
    grants = [Grant("b", datetime(2027, 3, 1, tzinfo=UTC), "fixed_duration", 30),
              Grant("a", datetime(2027, 1, 1, tzinfo=UTC), "fixed_duration", 30),
              Grant("c", datetime(2027, 6, 1, tzinfo=UTC), "fixed_duration", 30)]
    end = replay(grants, anniversary=(1, 1), tz="UTC")
    # a: Jan 1 → Jan 31 (lapsed); b: Mar 1 → Mar 31 (lapsed); c: Jun 1 → Jul 1
    assert end == datetime(2027, 7, 1, tzinfo=UTC)
    assert replay(reversed(grants), anniversary=(1, 1), tz="UTC") == end
    back_to_back = [Grant("x", datetime(2027, 1, 1, tzinfo=UTC), "fixed_duration", 30),
                    Grant("y", datetime(2027, 1, 5, tzinfo=UTC), "fixed_duration", 30)]
    assert replay(back_to_back, anniversary=(1, 1), tz="UTC") == datetime(2027, 3, 2, tzinfo=UTC)


def test_a_reminder_is_never_due_after_the_end():
    end = datetime(2027, 1, 1, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai
    assert reminder_due_at(end, days_before=0, local_time="10:00", tz=SHANGHAI) == end


@pytest.mark.parametrize("amount", [0, 1, 3, 99, 100_000, 123_457])
def test_the_split_always_adds_up(amount):
    split = split_payment(amount, platform_bps=500, referral_bps=777, has_referrer=True)
    assert split.total == amount and min(split.as_list()) >= 0


def test_proportional_refunds_stay_within_each_share_and_end_exactly_at_it():
    rng = random.Random(7)
    for _ in range(500):
        shares = [rng.randrange(0, 1000) for _ in range(4)]
        whole = sum(shares)
        taken, previous = 0, [0, 0, 0, 0]
        while taken < whole:
            taken = min(whole, taken + rng.randrange(1, max(2, whole // 3)))
            parts = allocate(shares, taken)
            assert sum(parts) == taken
            assert all(0 <= p <= s for p, s in zip(parts, shares, strict=True))
            previous = parts
        assert previous == shares or whole == 0


def test_allocate_refuses_more_than_there_is():
    with pytest.raises(ValueError):
        allocate([1, 2], 4)


def test_periods_are_local_days_weeks_and_months():
    now = datetime(2026, 11, 29, 18, 0, tzinfo=UTC)  # Monday 30 Nov 02:00 in Shanghai
    assert period_bounds("day", now, SHANGHAI) == (datetime(2026, 11, 29, 16, tzinfo=UTC),
                                                    datetime(2026, 11, 30, 16, tzinfo=UTC))
    assert period_bounds("week", now, SHANGHAI) == (datetime(2026, 11, 29, 16, tzinfo=UTC),
                                                     datetime(2026, 12, 6, 16, tzinfo=UTC))
    assert period_bounds("month", now, SHANGHAI) == (datetime(2026, 10, 31, 16, tzinfo=UTC),
                                                      datetime(2026, 11, 30, 16, tzinfo=UTC))
