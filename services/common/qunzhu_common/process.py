"""Process-wide settings of a service process (`qunzhu serve`, `qunzhu run`)."""

from __future__ import annotations

import gc

# Generation-0 collections every 50,000 net allocations instead of 700. A request or a consumed batch
# allocates thousands of short-lived objects (pydantic models, SQLAlchemy rows, envelopes) that reference
# counting frees anyway; with the default threshold the cyclic collector ran every few requests. Measured
# back to back on PostgreSQL: bench/ingest.py 1,965 → 2,320 req/s; bench/engagement.py's batched scoring
# 2,300–2,650 → 3,050–3,300 events/s.
GC_THRESHOLDS = (50_000, 50, 100)


def tune_gc() -> None:
    """Freeze what start-up allocated (modules, app, routes: never garbage) out of every later collection,
    and collect the young generation less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
