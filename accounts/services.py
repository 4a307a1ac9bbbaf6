"""State changes for accounts: registration and the artist profile."""

from django.db import IntegrityError, transaction
from django.utils.text import slugify

from accounts.models import User

SLUG_MAX_LENGTH = User._meta.get_field("slug").max_length


def unique_slug(display_name: str) -> str:
    """Return a free artist slug derived from a display name ("DJ Ana" -> "dj-ana-2")."""
    base = slugify(display_name)[: SLUG_MAX_LENGTH - 6].strip("-") or "artist"
    candidate, n = base, 1
    while User.objects.filter(slug=candidate).exists():
        n += 1
        candidate = f"{base}-{n}"
    return candidate


def register_user(*, email: str, password: str, display_name: str) -> User:
    """Create an account with a unique artist slug.

    The slug is picked optimistically; when a concurrent sign-up takes the same
    one, the unique constraint refuses it and the next free slug is tried.
    """
    for _attempt in range(5):
        try:
            with transaction.atomic():
                user = User.objects.create_user(
                    email=email,
                    password=password,
                    display_name=display_name.strip(),
                    slug=unique_slug(display_name),
                )
                _on_user_created(user)
                return user
        except IntegrityError as exc:
            if "slug" not in str(exc):
                raise
    raise IntegrityError("Could not find a free artist slug.")


def _on_user_created(user: User) -> None:
    """What every new account receives, in the sign-up transaction."""
    from credits.services import grant_signup_gift  # credits depends on accounts, not back

    grant_signup_gift(user=user)


def update_profile(*, user: User, display_name: str, slug: str) -> User:
    old_slug = user.slug
    user.display_name = display_name.strip()
    user.slug = slug
    user.save(update_fields=["display_name", "slug"])
    from tracks import catalog  # the artist page shows the name

    catalog.changed(old_slug, slug)
    return user


def set_email_notices(*, user: User, enabled: bool) -> User:
    """Subscribe to notices, or unsubscribe (the profile page, a notice's link)."""
    if user.email_notices != enabled:
        user.email_notices = enabled
        user.save(update_fields=["email_notices"])
    return user
