"""Schedules: RRULE evaluation, the exactly-once scheduler and what a fired occurrence does."""
