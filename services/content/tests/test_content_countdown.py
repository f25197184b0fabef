"""Countdown text reads as people read a clock: never "0 分钟", never less time for more seconds."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from content.scheduling.actions import countdown_text
from content.scheduling.countdown import countdown

_UNIT_S = {"天": 86400, "小时": 3600, "分钟": 60, "秒": 1}


def shown_seconds(text: str) -> int:
    """The amount of time a zh countdown reads as, in seconds."""
    assert text.startswith("还有 ")
    pairs = re.findall(r"(\d+) (天|小时|分钟|秒)", text)
    assert " ".join(f"{n} {u}" for n, u in pairs) == text.removeprefix("还有 ")
    return sum(int(n) * _UNIT_S[u] for n, u in pairs)


@pytest.mark.parametrize(
    ("seconds", "zh", "en"),
    [
        (0, "还有 1 秒", "in 1 second"),
        (3, "还有 3 秒", "in 3 seconds"),
        (30, "还有 30 秒", "in 30 seconds"),
        (33, "还有 35 秒", "in 35 seconds"),
        (57, "还有 55 秒", "in 55 seconds"),
        (59, "还有 1 分钟", "in 1 minute"),
        (60, "还有 1 分钟", "in 1 minute"),
        (89, "还有 1 分钟", "in 1 minute"),
        (90, "还有 2 分钟", "in 2 minutes"),
        (3599, "还有 1 小时", "in 1 hour"),
        (3600, "还有 1 小时", "in 1 hour"),
        (5400, "还有 1 小时 30 分钟", "in 1 hour 30 minutes"),
        (7200 + 61, "还有 2 小时 1 分钟", "in 2 hours 1 minute"),
        (86399, "还有 1 天", "in 1 day"),
        (86400, "还有 1 天", "in 1 day"),
        (2 * 86400 + 3 * 3600 + 1700, "还有 2 天 3 小时", "in 2 days 3 hours"),
        (2 * 86400 + 3 * 3600 + 1800, "还有 2 天 4 小时", "in 2 days 4 hours"),
    ],
)
def test_boundaries_read_as_a_clock_does(seconds, zh, en):
    assert countdown(seconds) == zh
    assert countdown(seconds, "en") == en
    assert countdown(seconds, "fr") == zh  # an unknown locale falls back to Chinese


finite = st.floats(min_value=0, max_value=400 * 86400, allow_nan=False)


@given(finite, finite)
def test_more_seconds_never_reads_as_less_time(a, b):
    low, high = sorted((a, b))
    assert shown_seconds(countdown(low)) <= shown_seconds(countdown(high))


@given(finite)
def test_never_zero_and_close_to_the_truth(seconds):
    text = countdown(seconds)
    assert not re.search(r"(?<!\d)0 ", text)
    shown = shown_seconds(text)
    # Off by at most half the unit it is rounded to (seconds under 10 s read as at least 1).
    unit = 1 if seconds < 9.5 else 5 if seconds < 57.5 else 60 if seconds < 86400 else 3600
    assert abs(shown - seconds) <= max(unit / 2, 1)


@given(st.integers(min_value=0, max_value=10 * 86400))
def test_english_reads_the_same_amount(seconds):
    zh, en = countdown(seconds), countdown(seconds, "en")
    units = {"day": "天", "hour": "小时", "minute": "分钟", "second": "秒"}
    translated = re.sub(r"(\d+) (day|hour|minute|second)s?", lambda m: f"{m[1]} {units[m[2]]}", en)
    assert translated.replace("in ", "还有 ", 1) == zh
    assert not re.search(r"\b1 \w+s\b", en) and not re.search(r"\b([02-9]|\d\d+) (day|hour|minute|second)\b", en)


def test_ritual_countdowns_use_it():
    assert countdown_text("福利夜", 90) == "【倒计时】距离「福利夜」还有 2 分钟！"
    assert countdown_text("福利夜", 30) == "【倒计时】距离「福利夜」还有 30 秒！"


def test_a_non_finite_amount_is_refused():
    with pytest.raises(ValueError):
        countdown(float("inf"))
