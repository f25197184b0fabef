"""Engagement service: scoring rules, points ledger, levels, leaderboards, key people, group health."""
