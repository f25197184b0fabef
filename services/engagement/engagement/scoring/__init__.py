"""Scoring: rules, the effective-activity classifier, the ledger, replay."""
