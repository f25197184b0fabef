"""Gateway: the public API for front ends, webhooks in from chat platforms and payment providers, bot actions out."""
