"""Who holds which role in a community, as content sees it: the common authorizer over content's own
projection of membership's roles (`community_member`), shared by route dependencies and services."""

from __future__ import annotations

from content.models import CommunityMember
from qunzhu_common.actor import Authorizer, projection_lookup

authorizer = Authorizer(projection_lookup(CommunityMember))
