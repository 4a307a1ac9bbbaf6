"""State changes for accounts: registration and the artist profile."""

from django.db import IntegrityError, transaction
from django.utils.text import slugify

from accounts.models import PreviousSlug, User
from accounts.selectors import slug_taken

SLUG_MAX_LENGTH = User._meta.get_field("slug").max_length


def unique_slug(display_name: str) -> str:
    """Return a free artist slug derived from a display name ("DJ Ana" -> "dj-ana-2")."""
    base = slugify(display_name)[: SLUG_MAX_LENGTH - 6].strip("-") or "artist"
    candidate, n = base, 1
    while slug_taken(candidate):
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


class SlugTaken(Exception):
    """The artist address is someone else's (now, or an old one that redirects)."""


def update_profile(*, user: User, display_name: str, slug: str) -> User:
    """Save the name and artist address; an old address keeps redirecting to the new.

    No lock is needed against another user taking the old address meanwhile: until
    this commits it is still our slug, afterwards it is our PreviousSlug, and every
    check reads a committed state in which it is one of the two.
    """
    with transaction.atomic():
        # From the row, not `user`: a bound ModelForm has already set the new slug on it.
        old_slug = User.objects.select_for_update().values_list("slug", flat=True).get(pk=user.pk)
        if slug != old_slug and slug_taken(slug, exclude_user=user):
            raise SlugTaken(slug)
        user.display_name = display_name.strip()
        user.slug = slug
        user.save(update_fields=["display_name", "slug"])
        slug_changed(user=user, old_slug=old_slug)
    from tracks import catalog  # the artist page shows the name

    catalog.changed(old_slug, slug)
    return user


def slug_changed(*, user: User, old_slug: str) -> None:
    """Keep `old_slug` as the user's old address (call in the transaction that saved
    the user's new slug); taking an old address back un-keeps it."""
    if old_slug == user.slug:
        return
    PreviousSlug.objects.filter(user=user, slug=user.slug).delete()
    PreviousSlug.objects.get_or_create(user=user, slug=old_slug)
