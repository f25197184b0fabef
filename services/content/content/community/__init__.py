"""Projections of membership (communities, roles) and the community's chat groups."""
