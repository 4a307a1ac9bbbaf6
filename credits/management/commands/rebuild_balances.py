from django.core.management.base import BaseCommand

from accounts.models import User
from credits.services import rebuild_balance


class Command(BaseCommand):
    help = "Recompute every cached balance from the ledger entries (the projection)."

    def add_arguments(self, parser):
        parser.add_argument("--email", help="Only this user.")

    def handle(self, *args, email=None, **options):
        users = User.objects.order_by("pk")
        if email:
            users = users.filter(email=email.lower())
        for user in users.iterator():
            rebuild_balance(user=user)
        self.stdout.write(self.style.SUCCESS(f"Rebuilt {users.count()} balance(s)."))
