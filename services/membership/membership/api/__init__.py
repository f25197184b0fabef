"""Membership's HTTP routes: thin — dependencies → permission check → one service call → response model."""

from membership.api import catalog, communities, growth, members, money, ops, paywall, stats

ROUTERS = [communities.router, catalog.router, members.router, money.router, paywall.router, growth.router,
           ops.router, stats.router]

__all__ = ["ROUTERS"]
