"""Load demo data for `make run`. Safe to run any number of times.

Demo artists with a few published tracks (real audio, made by the engine through
the same services as the studio), a fan with the 5-credit gift (enough for a
2-credit track: 3 left after), and a fan with no credits who pays by card.
"""

import secrets
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction

from accounts.models import User
from accounts.services import register_user
from credits.selectors import balance
from credits.services import grant_signup_gift, spend
from tracks import services as track_services
from tracks.models import Track
from tracks.tasks import generate_track

ADMIN_EMAIL = "admin@soundstudio.test"
DEMO_PASSWORD = "listen-to-the-demo"  # noqa: S105 - demo fans/artists on a local machine only
DEMO_ARTISTS = [
    ("nova@soundstudio.test", "Nova Lights"),
    ("basement@soundstudio.test", "Basement Tapes"),
    ("mira@soundstudio.test", "Mira Sol"),
    ("fan@soundstudio.test", "Frankie Fan"),
]
CARD_FAN = ("casey@soundstudio.test", "Casey Card")  # no credits: buys by card

# (title, prompt, genre, mood, seconds, price in credits) per demo artist.
DEMO_TRACKS = {
    "nova@soundstudio.test": [
        ("Neon Harbour", "shimmering synths over a slow city pulse", "electronic", "calm", 16, 2),
        ("Afterglow Run", "driving arpeggios for a night drive", "electronic", "energetic", 14, 3),
        ("Static Bloom", "soft pads and a warm bassline", "ambient", "calm", 15, 1),
    ],
    "basement@soundstudio.test": [
        ("Dust on the Needle", "laid-back beat with a dusty piano", "hiphop", "calm", 14, 2),
        ("Garage Sunday", "loose drums and a bright riff", "rock", "happy", 12, 1),
    ],
    "mira@soundstudio.test": [
        ("Salt and Honey", "gentle acoustic groove at sunrise", "pop", "happy", 14, 2),
        ("Low Tide", "slow piano and space", "jazz", "sad", 16, 3),
    ],
}


class Command(BaseCommand):
    help = "Create the demo admin, artists with tracks and fans (idempotent); print the logins."

    def handle(self, *args, **options):
        password = self._admin_password()
        with transaction.atomic():
            if not User.objects.filter(email=ADMIN_EMAIL).exists():
                User.objects.create_superuser(email=ADMIN_EMAIL, password=password)
            users = {email: self._user(email, name) for email, name in DEMO_ARTISTS}
            card_fan = self._user(*CARD_FAN)
            if balance(card_fan):  # the gift is used up, so Buy goes to the card form
                spend(
                    user=card_fan,
                    amount=balance(card_fan),
                    reason="demo",
                    idempotency_key=f"demo:card-fan:{card_fan.pk}",
                    memo="Demo: credits used up so this fan pays by card",
                )
        made = 0
        for email, tracks in DEMO_TRACKS.items():
            made += self._tracks(users[email], tracks)
        if made:
            self.stdout.write(f"Made {made} demo track(s).")
        self.stdout.write(
            self.style.SUCCESS(
                f"Admin login: {ADMIN_EMAIL} / {password}   "
                f"(demo users: {DEMO_ARTISTS[0][0]} ... / {DEMO_PASSWORD}; "
                f"fans: {DEMO_ARTISTS[-1][0]} has 5 credits, {CARD_FAN[0]} pays by card)"
            )
        )

    def _user(self, email: str, name: str) -> User:
        user = User.objects.filter(email=email).first()
        if user is None:
            user = register_user(email=email, password=DEMO_PASSWORD, display_name=name)
        grant_signup_gift(user=user)  # idempotent: accounts from older data get it too
        return user

    def _tracks(self, artist: User, specs) -> int:
        """Generate, publish and price the artist's demo tracks, unless they have tracks."""
        if Track.objects.filter(creator=artist).exists():
            return 0
        for title, prompt, genre, mood, seconds, price in specs:
            track = track_services.request_generation(
                creator=artist,
                title=title,
                prompt=prompt,
                genre=genre,
                mood=mood,
                duration_seconds=seconds,
            )
            # Made here and now, so the pages have audio at once; the queued task
            # then finds the track ready and skips it.
            generate_track.apply(args=[track.pk])
            track.refresh_from_db()
            track_services.publish(track=track, published=True)
            track_services.set_price(track=track, price_credits=price, for_sale=True)
        return len(specs)

    def _admin_password(self) -> str:
        """A random admin password, made once per machine and kept in var/."""
        path = Path(settings.BASE_DIR) / "var" / "demo-admin-password"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_urlsafe(12))
            path.chmod(0o600)
        return path.read_text().strip()
