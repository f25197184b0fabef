"""Broadcasts to many groups (多群同步): per-group deliveries, rate-limited, retried, in a stable order."""
