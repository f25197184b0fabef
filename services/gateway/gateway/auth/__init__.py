"""Authentication (JWT for members, API keys for bots and operators) and role-based authorization."""
