from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.contrib.sessions.base_session import AbstractBaseSession
from django.db import models
from django.db.models.functions import Lower
from django.urls import reverse
from django.utils import timezone


class UserManager(BaseUserManager):
    use_in_migrations = True

    @classmethod
    def normalize_email(cls, email: str | None) -> str:
        # E-mail is the login: compare it case-insensitively everywhere.
        return (email or "").strip().lower()

    def _create_user(self, email: str, password: str | None, **extra_fields):
        if not email:
            raise ValueError("An e-mail address is required.")
        from accounts.services import create_account  # the services import this model

        user = self.model(email=self.normalize_email(email), **extra_fields)
        user.set_password(password)
        return create_account(user, using=self._db)

    def create_user(self, email: str, password: str | None = None, **extra_fields):
        extra_fields.setdefault("is_staff", False)
        extra_fields.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra_fields)

    def create_superuser(self, email: str, password: str | None = None, **extra_fields):
        extra_fields.setdefault("is_staff", True)
        extra_fields.setdefault("is_superuser", True)
        extra_fields.setdefault("display_name", "Admin")
        return self._create_user(email, password, **extra_fields)


class User(AbstractBaseUser, PermissionsMixin):
    """A SoundStudio account. Every user can be a fan and an artist."""

    email = models.EmailField("e-mail address", unique=True)
    display_name = models.CharField(max_length=80)
    slug = models.SlugField(
        "artist URL",
        max_length=60,
        unique=True,
        # Admin shows help texts as HTML: no <placeholder> here, it would vanish.
        help_text="Your artist page lives at /artists/your-address/. "
        "Lowercase letters, digits and hyphens.",
    )
    is_staff = models.BooleanField(default=False)
    is_active = models.BooleanField(default=True)
    date_joined = models.DateTimeField(default=timezone.now)
    # Notices (credits about to expire or expired, Essential renewed, failed or ended).
    # Receipts are sent whatever this says.
    email_notices = models.BooleanField(
        "e-mail me notices",
        default=True,
        db_default=True,  # rows inserted in bulk by SQL (the benches) are subscribed too
        help_text="Credits about to expire or expired, and changes to your Essential plan.",
    )

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS = ["display_name"]

    class Meta:
        constraints = [
            models.UniqueConstraint(Lower("email"), name="accounts_user_email_ci_unique"),
            models.CheckConstraint(
                condition=models.Q(slug__regex=r"^[a-z0-9]+(-[a-z0-9]+)*$"),
                name="accounts_user_slug_format",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.display_name} <{self.email}>"

    def get_absolute_url(self) -> str:
        return reverse("artist_detail", kwargs={"slug": self.slug})


class PreviousSlug(models.Model):
    """An artist address the user had before: /artists/<slug>/ redirects to their
    current page. An old address stays theirs (no one else can take it, so a link
    never starts leading to a stranger); taking it back removes it from here."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="previous_slugs")
    slug = models.SlugField(max_length=60, unique=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"/artists/{self.slug}/"


class Session(AbstractBaseSession):
    """Django's session row with the signed-in user's id beside it (accounts.sessions):
    a request reads its session and its user in one query."""

    user = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.CASCADE, related_name="sessions"
    )

    @classmethod
    def get_session_store_class(cls):
        from accounts.sessions import SessionStore

        return SessionStore

    class Meta(AbstractBaseSession.Meta):
        db_table = "accounts_session"
