"""Leaderboards (7 d / 30 d / all time, per community and per group), standings and goals."""
