"""Engagement's business metrics, registered on the service's own registry (`qunzhu_engagement_*`)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

from engagement.scoring.rules import RULE_TYPES, SKOOL_LEVELS

# The bounded label values the code produces, created at 0 so that rates and alerts see a series from the
# start instead of a gap until the first occurrence.
VERDICTS = (*RULE_TYPES, "none")  # scoring/engine.py: the verdict's rule type, "none" when there is none
LEDGER_KINDS = ("award", "reversal")  # scoring/ledger.py, scoring/replay.py
LEVELS = tuple(str(n) for n in range(1, len(SKOOL_LEVELS) + 1))  # Skool's L1–L9 (the default thresholds)
REMOVAL_REASONS = ("elimination", "rule_violation")  # jobs/members.py
STRIKE_KINDS = ("bare_link", "ad", "repeat")  # scoring/classify.py
ACTIVITY_KINDS = ("lottery", "poll", "survey", "chain", "campaign", "meetup", "celebration")  # activities/


class EngagementMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        p = "qunzhu_engagement_"
        self.activities_scored = Counter(
            p + "activities_scored_total", "Activities scored, by the classifier's verdict (rule type).",
            ["rule_type"], registry=registry,
        )
        self.activities_pending = Counter(
            p + "activities_pending_total", "Activities kept until their member is known.", registry=registry
        )
        self.points_awarded = Counter(
            p + "points_awarded_points_total", "Points written to the ledger, by rule type (reversals subtract).",
            ["rule_type"], registry=registry,
        )
        self.ledger_entries = Counter(
            p + "ledger_entries_total", "Ledger entries written, by rule type and kind.",
            ["rule_type", "kind"], registry=registry,
        )
        self.levels_reached = Counter(
            p + "levels_reached_total", "Members reaching a level for the first time, by level.",
            ["level"], registry=registry,
        )
        self.members_by_level = Gauge(
            p + "members_by_level_members", "Members per level across communities (last computation).",
            ["level"], registry=registry,
        )
        self.lurkers_flagged = Counter(
            p + "lurkers_flagged_total", "Members flagged as lurkers.", registry=registry
        )
        self.removals_recommended = Counter(
            p + "removals_recommended_total", "Removal recommendations, by reason.", ["reason"], registry=registry
        )
        self.strikes = Counter(p + "strikes_total", "Rule-enforcement strikes, by kind.", ["kind"], registry=registry)
        self.dead_groups_flagged = Counter(
            p + "dead_groups_flagged_total", "Chat groups flagged at risk of dying.", registry=registry
        )
        self.scholarships = Counter(p + "scholarships_awarded_total", "Scholarships awarded.", registry=registry)
        self.key_people_runs = Counter(
            p + "key_people_runs_total", "Key-people computations.", registry=registry
        )

        self.activity_participants = Counter(
            p + "activity_participants_total",
            "Members taking part in a group activity (entry, vote, response, sign-up, registration), by activity.",
            ["activity"], registry=registry,
        )
        self.activity_completions = Counter(
            p + "activity_completions_total",
            "Activities completed: lottery drawn, poll closed, survey answered, chain full, campaign reward "
            "recorded, meetup attended, celebration posted; by activity.",
            ["activity"], registry=registry,
        )

    def initialise(self) -> None:
        """Create every bounded labelled series at 0 (counters) or 0 members (gauge)."""
        for verdict in VERDICTS:
            self.activities_scored.labels(verdict)
        for rule_type in RULE_TYPES:
            self.points_awarded.labels(rule_type)
            for kind in LEDGER_KINDS:
                self.ledger_entries.labels(rule_type, kind)
        for level in LEVELS:
            self.levels_reached.labels(level)
            self.members_by_level.labels(level)
        for reason in REMOVAL_REASONS:
            self.removals_recommended.labels(reason)
        for kind in STRIKE_KINDS:
            self.strikes.labels(kind)
        for activity in ACTIVITY_KINDS:
            self.activity_participants.labels(activity)
            self.activity_completions.labels(activity)
