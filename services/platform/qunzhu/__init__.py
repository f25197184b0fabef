"""The Qunzhu platform launcher: embedded mode (all services in one process) and per-service serving."""
