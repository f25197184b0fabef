from qunzhu_common.errors import NotFound


class CommunityNotFound(NotFound):
    slug, title = "community-not-found", "Community not found"
