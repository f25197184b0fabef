"""Chat-platform webhooks in: verification, normalisation to chat.events.v1, dedupe, quarantine."""
