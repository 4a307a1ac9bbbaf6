from accounts.models import PreviousSlug, User


def artist_by_slug(slug: str) -> User | None:
    return User.objects.filter(slug=slug, is_active=True).first()


def moved_artist_slug(slug: str) -> str | None:
    """The current slug of the active artist who used to be at `slug`, if any."""
    return (
        PreviousSlug.objects.filter(slug=slug, user__is_active=True)
        .values_list("user__slug", flat=True)
        .first()
    )


def slug_taken(slug: str, *, exclude_user: User | None = None) -> bool:
    """Whether an artist address is someone's, now or as an old address that redirects."""
    users = User.objects.filter(slug=slug)
    old = PreviousSlug.objects.filter(slug=slug)
    if exclude_user is not None:
        users, old = users.exclude(pk=exclude_user.pk), old.exclude(user=exclude_user)
    return users.exists() or old.exists()
