"""Payment provider webhooks (Stripe, WeChat Pay API v3) → payments.events.v1."""
