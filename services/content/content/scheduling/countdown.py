"""Countdown text as people read a clock: "还有 30 秒", "还有 1 小时 30 分钟", "还有 2 天 3 小时"."""

from __future__ import annotations

import math

_UNITS = {
    # locale: (prefix, day, hour, minute, second, plural suffix)
    "zh": ("还有 ", "天", "小时", "分钟", "秒", ""),
    "en": ("in ", "day", "hour", "minute", "second", "s"),
}


def _nearest(value: float, unit: int) -> int:
    """`value` rounded to the nearest multiple of `unit`, halves up (90 s is 2 minutes, not 1)."""
    return math.floor(value / unit + 0.5) * unit


def countdown(seconds: float, locale: str = "zh") -> str:
    """How long until something, rounded the way people read a clock, never reading zero.

    The rule (each step rounds to the nearest unit, halves up):

    - under 10 s: whole seconds, at least 1 ("还有 3 秒");
    - under a minute: to 5 s ("还有 35 秒"); from 57.5 s this rounds to a minute;
    - under a day: to the minute, as hours and minutes ("还有 2 分钟" for 90 s, "还有 1 小时 30 分钟";
      3599 s reads "还有 1 小时", 86399 s "还有 1 天"); zero minutes or hours are left out;
    - a day or more: to the hour, as days and hours ("还有 2 天 3 小时").

    The amount shown never decreases as `seconds` grows. `locale` is "zh" (default) or "en" ("in 30 seconds",
    "in 1 hour 30 minutes"); any other locale reads as zh.
    """
    if not math.isfinite(seconds):
        raise ValueError("a countdown needs a finite number of seconds")
    prefix, day, hour, minute, second, plural = _UNITS.get(locale, _UNITS["zh"])

    def amount(n: int, unit: str) -> str:
        return f"{n} {unit}{plural if n != 1 else ''}"

    if seconds < 9.5:
        return prefix + amount(max(1, _nearest(seconds, 1)), second)
    if seconds < 57.5:
        return prefix + amount(_nearest(seconds, 5), second)
    if seconds < 86400:
        hours, minutes = divmod(_nearest(seconds, 60) // 60, 60)
        if hours == 24:
            return prefix + amount(1, day)
        parts = [amount(hours, hour)] if hours else []
        return prefix + " ".join(parts + ([amount(minutes, minute)] if minutes or not hours else []))
    days, hours = divmod(_nearest(seconds, 3600) // 3600, 24)
    return prefix + " ".join([amount(days, day)] + ([amount(hours, hour)] if hours else []))
