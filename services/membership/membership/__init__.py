"""Membership and paywall service: communities, plans, members, roles, payments, invitations."""
