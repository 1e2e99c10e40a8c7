from __future__ import annotations

from django.core.management.base import BaseCommand

from orders.notifications import notifications_failed_resend


class Command(BaseCommand):
    help = "Send every failed consumer notification again, now, through the configured backend."

    def add_arguments(self, parser):
        parser.add_argument("--order", dest="order_id", help="Only this order's notifications.")

    def handle(self, *args, order_id=None, **options):
        counts = notifications_failed_resend(
            order_id=order_id, progress=lambda nid, outcome: self.stdout.write(f"notification {nid}: {outcome}")
        )
        summary = ", ".join(f"{n} {outcome}" for outcome, n in sorted(counts.items())) or "nothing to resend"
        self.stdout.write(self.style.SUCCESS(summary))
