"""Scheduled jobs: lurkers, elimination, key people, group health."""
