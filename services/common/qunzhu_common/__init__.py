"""Shared foundation of every Qunzhu service: event contracts, bus, database, outbox/inbox, metrics."""
