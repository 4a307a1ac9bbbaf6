from django.core.management.base import BaseCommand

from payments.services import reconcile


class Command(BaseCommand):
    help = (
        "Ask Stripe about every payment pending for over 10 minutes and complete or fail "
        "it through the same services as the webhook. Safe to run at any time."
    )

    def handle(self, *args, **options):
        report = reconcile()
        for line in report:
            self.stdout.write(line)
        self.stdout.write(self.style.SUCCESS(f"Reconciled: {len(report)} payment(s) looked at."))
