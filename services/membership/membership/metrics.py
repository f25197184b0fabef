"""Business metrics of membership, registered in the service's own registry (its /metrics)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge
from sqlalchemy.ext.asyncio import AsyncSession

from qunzhu_common.outbox import run_after_commit

# The codes service/payments.py rejects a payment with (bounded: a Rejection is raised with one of these).
REJECTION_CODES = ("unknown_plan", "currency_mismatch", "community_dissolved", "blacklisted", "not_eligible",
                   "amount_mismatch")
CURRENCIES = ("CNY",)  # pre-created only; other currencies appear when first paid in


class MembershipMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        p = "qunzhu_membership_"
        self.members = Gauge(p + "members", "Memberships by status (refreshed by the scheduler).",
                             ["status"], registry=registry)
        self.applications_pending = Gauge(p + "applications_pending", "Applications awaiting review.",
                                          registry=registry)
        self.paid_conversions = Counter(p + "paid_conversions_total",
                                        "Payments that made someone a paying member (not renewals).",
                                        registry=registry)
        self.renewals = Counter(p + "renewals_total", "Payments that extended a membership.", registry=registry)
        self.revenue_fen = Counter(p + "revenue_fen_total", "Money captured, fen.", ["currency"],
                                   registry=registry)
        self.refunds_fen = Counter(p + "refunds_fen_total", "Money refunded, fen.", ["currency"],
                                   registry=registry)
        self.payments_rejected = Counter(p + "payments_rejected_total",
                                         "Payments that could not be applied (a refund was requested).",
                                         ["code"], registry=registry)
        self.removals = Counter(p + "removals_total", "Members removed, by reason.", ["reason"],
                                registry=registry)
        self.expirations = Counter(p + "expirations_total", "Memberships expired by the scheduler.",
                                   registry=registry)
        self.reminders = Counter(p + "reminders_total", "Reminders sent.", ["kind"], registry=registry)
        self.unpaid_joins = Counter(p + "unpaid_joins_flagged_total",
                                    "People found in a paid group without an active membership.",
                                    registry=registry)
        self.scheduler_runs = Counter(p + "scheduler_runs_total", "Scheduler passes, by outcome.", ["outcome"],
                                      registry=registry)
        self.scheduler_lateness = Gauge(p + "scheduler_lateness_seconds",
                                        "How late the oldest due item was when the last pass claimed it.",
                                        registry=registry)
        self.initialise()

    def initialise(self) -> None:
        """Create the bounded label sets at 0, so dashboards and alerts see them before the first event."""
        for code in REJECTION_CODES:
            self.payments_rejected.labels(code)
        for currency in CURRENCIES:
            self.revenue_fen.labels(currency)
            self.refunds_fen.labels(currency)
        for outcome in ("ok", "failed"):
            self.scheduler_runs.labels(outcome)
        for kind in ("renewal", "ritual"):  # MemberReminded.kind
            self.reminders.labels(kind)

    def after_commit(self, session: AsyncSession, fn) -> None:  # type: ignore[no-untyped-def]
        """Count only what committed (a rolled-back handler is retried and would count twice)."""
        # A fresh callable each time: run_after_commit drops a hook already registered, and a batch of events
        # in one transaction registers the same bound `counter.inc` once per event (each must count).
        run_after_commit(session, lambda: fn())
