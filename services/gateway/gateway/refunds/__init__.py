"""Refunds out: `refund.requested` (membership's command) → a refund_order row → the provider's refund API.

The row is keyed by the command's request id, which is also the provider's idempotency key (Stripe's
Idempotency-Key, WeChat Pay's out_refund_no), so a command delivered twice is carried out once and a call
repeated after a crash cannot refund twice. Access is revoked by `payment.refunded`, when the provider's
webhook confirms the refund, not here.
"""
