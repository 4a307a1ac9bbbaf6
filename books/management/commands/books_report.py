import datetime as dt
import json as jsonlib

from django.core.management.base import BaseCommand, CommandError

from books import money, selectors


def _day(value: str) -> dt.datetime:
    try:
        return dt.datetime.combine(dt.date.fromisoformat(value), dt.time(), tzinfo=dt.UTC)
    except ValueError as exc:
        raise CommandError(f"Not a date (YYYY-MM-DD): {value!r}") from exc


class Command(BaseCommand):
    help = (
        "Print every account's balance in cents (natural sign; artist payables summed) and "
        "whether the books balance. --from/--to (YYYY-MM-DD, UTC) limit it to the "
        "transactions of [from, to + 1 day)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="Machine-readable output.")
        parser.add_argument("--from", dest="start", type=_day, help="First day (inclusive).")
        parser.add_argument("--to", dest="end", type=_day, help="Last day (inclusive).")

    def handle(self, *args, json: bool = False, start=None, end=None, **options):
        end = end + dt.timedelta(days=1) if end else None
        if start and end and end <= start:
            raise CommandError("--to is before --from.")
        report = selectors.report(start=start, end=end)
        if json:
            self.stdout.write(_dumps(report))
            return
        first = f"{start:%Y-%m-%d}" if start else "the start"
        last = f"{end - dt.timedelta(days=1):%Y-%m-%d}" if end else "now"
        period = f" for {first} .. {last}" if start or end else ""
        self.stdout.write(f"The books{period} (cents, natural sign)")
        for code, cents in report["accounts"].items():
            self.stdout.write(f"  {code:<24} {cents:>14}  {money.display(cents):>14}")
        verdict = "balanced" if report["balanced"] else "NOT balanced: run check_books"
        self.stdout.write(f"  {verdict}")


def _dumps(report: dict) -> str:
    return jsonlib.dumps(report, indent=2, sort_keys=False)
