from django.core.management.base import BaseCommand, CommandError

from books.selectors import book_violations


class Command(BaseCommand):
    help = (
        "Check the books: every journal transaction sums to zero, deferred revenue equals "
        "the lots' unreleased cost, every lot's cost basis is traced by its links. Exits 1 "
        "naming every violation; fixes nothing."
    )

    def handle(self, *args, **options):
        violations = book_violations()
        for violation in violations:
            self.stderr.write(f"{violation.check}: {violation.subject}: {violation.problem}")
        if violations:
            raise CommandError(f"{len(violations)} violation(s) in the books.")
        self.stdout.write(self.style.SUCCESS("Books OK: balanced, and deferred revenue = lots."))
