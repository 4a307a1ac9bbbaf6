from django.db.models import QuerySet

from accounts.models import User


def featured_artists(limit: int = 8) -> QuerySet[User]:
    return User.objects.filter(is_active=True, is_staff=False).order_by("-date_joined")[:limit]


def artist_by_slug(slug: str) -> User | None:
    return User.objects.filter(slug=slug, is_active=True).first()
