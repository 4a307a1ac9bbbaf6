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
    """The sign-up form's account: see create_account for what every account gets."""
    return User.objects.create_user(email=email, password=password, display_name=display_name)


def create_account(user: User, *, using: str | None = None) -> User:
    """Save a new account (an unsaved User, its password set) with what every new
    account receives, in one transaction: a unique artist slug derived from its name
    when it has none, and the Free gift, once (key signup:<id>).

    Every way an account is made ends here: the manager's create_user and
    create_superuser (sign-up, `createsuperuser`) and the admin's add form. A name
    left empty is the e-mail's local part. The slug is picked optimistically; when a
    concurrent sign-up takes the same one, the unique constraint refuses it and the
    next free slug is tried.
    """
    user.display_name = (user.display_name or "").strip() or user.email.split("@")[0]
    derive = not user.slug
    for _attempt in range(5):
        if derive:
            user.slug = unique_slug(user.display_name)
        try:
            with transaction.atomic(using=using):
                user.save(using=using)
                _on_user_created(user)
                return user
        except IntegrityError as exc:
            if not (derive and _is_slug_taken(exc)):
                raise
    raise IntegrityError("Could not find a free artist slug.")


def _is_slug_taken(exc: IntegrityError) -> bool:
    constraint = getattr(getattr(exc.__cause__, "diag", None), "constraint_name", "") or ""
    return "slug" in constraint and constraint != "accounts_user_slug_format"


def _on_user_created(user: User) -> None:
    """What every new account receives, in its creation's transaction."""
    from credits import services as credit_services  # credits depends on accounts, not back

    credit_services.grant_signup_gift(user=user)


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


def set_email_notices(*, user: User, enabled: bool) -> User:
    """Subscribe to notices, or unsubscribe (the profile page, a notice's link)."""
    if user.email_notices != enabled:
        user.email_notices = enabled
        user.save(update_fields=["email_notices"])
    return user


def slug_changed(*, user: User, old_slug: str) -> None:
    """Keep `old_slug` as the user's old address (call in the transaction that saved
    the user's new slug); taking an old address back un-keeps it."""
    if old_slug == user.slug:
        return
    PreviousSlug.objects.filter(user=user, slug=user.slug).delete()
    PreviousSlug.objects.get_or_create(user=user, slug=old_slug)
