"""Engagement's HTTP routes, one module per sub-domain."""

from engagement.api import challenges, communities, goals, homework, people, points, rules

ROUTERS = [communities.router, rules.router, points.router, goals.router, challenges.router,
           homework.router, people.router]
