"""Engagement's HTTP routes, one module per sub-domain."""

from engagement.api import (
    activities_campaigns,
    activities_celebrations,
    activities_chains,
    activities_lottery,
    activities_meetups,
    activities_polls,
    activities_surveys,
    challenges,
    communities,
    goals,
    homework,
    people,
    points,
    rules,
)

ROUTERS = [communities.router, rules.router, points.router, goals.router, challenges.router,
           homework.router, people.router, activities_lottery.router,
           activities_polls.router, activities_surveys.router,
           activities_chains.router, activities_campaigns.router,
           activities_meetups.router, activities_celebrations.router]
