"""Membership's domain logic: async functions, session first, keyword-only; they flush, never commit.

One module per area: communities, groups (seats, capacity), plans, joining (applications, invites,
trials), payments and ledger, members (roles, removal, blacklist), paywall, expiry (scheduler work),
ritual, reconcile, removal, fission.
"""

from membership.service.access import load_community
from membership.service.communities import create_community, list_communities

__all__ = ["create_community", "list_communities", "load_community"]
