"""Engagement's tables, one module per sub-domain, all on engagement's own metadata."""

from engagement.models.base import EngagementModel, inbox_table, metadata, outbox_table, registry
from engagement.models.challenges import (
    ChallengeCompletion,
    ChallengeCreate,
    ChallengeProgress,
    ChallengePublic,
    CheckinChallenge,
)
from engagement.models.community import CommunityCopy, CommunityCopyPublic, GroupCopy, GroupMember, MemberCopy
from engagement.models.goals import CommunityGoal, GoalCreate, GoalPublic
from engagement.models.homework import (
    Assignment,
    AssignmentCreate,
    AssignmentPublic,
    GradeCreate,
    Submission,
    SubmissionCreate,
    SubmissionPublic,
)
from engagement.models.people import DeadGroupFlag, KeyPeopleSnapshot, LurkerFlag, RemovalRecommendation
from engagement.models.scoring import Activity, MemberScore, NewActivity, PointsDaily, PointsLedger, RuleSetVersion

__all__ = [
    "Activity",
    "NewActivity",
    "Assignment",
    "AssignmentCreate",
    "AssignmentPublic",
    "GradeCreate",
    "Submission",
    "SubmissionCreate",
    "SubmissionPublic",
    "ChallengeCompletion",
    "ChallengeCreate",
    "ChallengeProgress",
    "ChallengePublic",
    "CheckinChallenge",
    "CommunityCopy",
    "CommunityCopyPublic",
    "CommunityGoal",
    "DeadGroupFlag",
    "KeyPeopleSnapshot",
    "LurkerFlag",
    "RemovalRecommendation",
    "GoalCreate",
    "GoalPublic",
    "EngagementModel",
    "GroupCopy",
    "GroupMember",
    "MemberCopy",
    "MemberScore",
    "PointsDaily",
    "PointsLedger",
    "RuleSetVersion",
    "inbox_table",
    "metadata",
    "outbox_table",
    "registry",
]
