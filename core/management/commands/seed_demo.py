"""Load demo data for `make run`. Safe to run any number of times."""

import secrets
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction

from accounts.models import User
from accounts.services import register_user
from credits.services import grant_signup_gift

ADMIN_EMAIL = "admin@soundstudio.test"
DEMO_PASSWORD = "listen-to-the-demo"  # noqa: S105 - demo fans/artists on a local machine only
DEMO_ARTISTS = [
    ("nova@soundstudio.test", "Nova Lights"),
    ("basement@soundstudio.test", "Basement Tapes"),
    ("mira@soundstudio.test", "Mira Sol"),
    ("fan@soundstudio.test", "Frankie Fan"),
]


class Command(BaseCommand):
    help = "Create the demo admin and a few artists (idempotent); print the admin login."

    def handle(self, *args, **options):
        password = self._admin_password()
        with transaction.atomic():
            if not User.objects.filter(email=ADMIN_EMAIL).exists():
                User.objects.create_superuser(email=ADMIN_EMAIL, password=password)
            for email, name in DEMO_ARTISTS:
                user = User.objects.filter(email=email).first()
                if user is None:
                    user = register_user(email=email, password=DEMO_PASSWORD, display_name=name)
                grant_signup_gift(user=user)  # idempotent: accounts from older data get it too
        self.stdout.write(
            self.style.SUCCESS(
                f"Admin login: {ADMIN_EMAIL} / {password}   "
                f"(demo users: {DEMO_ARTISTS[0][0]} ... / {DEMO_PASSWORD})"
            )
        )

    def _admin_password(self) -> str:
        """A random admin password, made once per machine and kept in var/."""
        path = Path(settings.BASE_DIR) / "var" / "demo-admin-password"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_urlsafe(12))
            path.chmod(0o600)
        return path.read_text().strip()
