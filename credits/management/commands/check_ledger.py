from django.core.management.base import BaseCommand, CommandError

from credits.selectors import ledger_discrepancies


class Command(BaseCommand):
    help = (
        "Verify for every user that ledger entries sum to the balance and no lot is "
        "negative. Exits non-zero naming the users when anything is off; fixes nothing."
    )

    def handle(self, *args, **options):
        problems = ledger_discrepancies()
        for problem in problems:
            self.stderr.write(f"user {problem.user_id} <{problem.email}>: {problem.problem}")
        if problems:
            raise CommandError(f"{len(problems)} user(s) with ledger discrepancies.")
        self.stdout.write(self.style.SUCCESS("Ledger OK: every balance matches its entries."))
