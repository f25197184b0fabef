"""broadcast status adds up (data only): delivery `confirmed`, broadcast sending/partially_delivered/failed

Content no longer retries a delivery (the gateway does), deliveries the gateway confirmed read `confirmed`,
and a broadcast's status is what its groups' final answers add up to. No schema change.

Revision ID: b7d41e0c5a92
Revises: 8c72bf07573a
Create Date: 2026-11-27 10:00:00.000000
"""
from collections.abc import Sequence

from alembic import op

revision: str = 'b7d41e0c5a92'
down_revision: str | None = '8c72bf07573a'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_FAILED = "EXISTS (SELECT 1 FROM broadcast_delivery d WHERE d.broadcast_id = broadcast.id AND d.status = 'failed')"
_REACHED = (
    "EXISTS (SELECT 1 FROM broadcast_delivery d WHERE d.broadcast_id = broadcast.id"
    " AND d.status IN ('sent', 'confirmed'))"
)


def upgrade() -> None:
    op.execute("UPDATE broadcast_delivery SET status = 'confirmed' WHERE status = 'sent' AND confirmed_at IS NOT NULL")
    op.execute("UPDATE broadcast SET status = 'sending' WHERE status = 'delivering'")
    # "delivered" used to mean "every group was sent its command": a failed group now shows.
    op.execute(f"UPDATE broadcast SET status = 'failed' WHERE status = 'delivered' AND {_FAILED} AND NOT {_REACHED}")
    op.execute(f"UPDATE broadcast SET status = 'partially_delivered' WHERE status = 'delivered' AND {_FAILED}")


def downgrade() -> None:
    op.execute("UPDATE broadcast SET status = 'delivered' WHERE status IN ('partially_delivered', 'failed')")
    op.execute("UPDATE broadcast SET status = 'delivering' WHERE status = 'sending'")
    op.execute("UPDATE broadcast_delivery SET status = 'sent' WHERE status = 'confirmed'")
