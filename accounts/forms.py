import re

from django import forms
from django.contrib.auth import password_validation
from django.contrib.auth.forms import AuthenticationForm
from django.urls import reverse
from django.utils.html import format_html

from accounts.models import User
from accounts.selectors import slug_taken

DUPLICATE_EMAIL = "An account with this e-mail address already exists. Log in instead?"


def duplicate_email_error():
    """DUPLICATE_EMAIL, with "Log in instead?" a link to the login page."""
    text, question = DUPLICATE_EMAIL.rsplit(". ", 1)
    return format_html('{}. <a href="{}">{}</a>', text, reverse("login"), question)


class SignUpForm(forms.Form):
    email = forms.EmailField(
        label="E-mail", widget=forms.EmailInput(attrs={"autocomplete": "email", "autofocus": True})
    )
    display_name = forms.CharField(
        label="Artist or display name",
        max_length=80,
        error_messages={"required": "Please enter a name."},
        help_text="Shown on your artist page. You can change it later.",
    )
    password1 = forms.CharField(
        label="Password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=password_validation.password_validators_help_text_html(),
    )
    password2 = forms.CharField(
        label="Confirm password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def clean_email(self) -> str:
        email = User.objects.normalize_email(self.cleaned_data["email"])
        if User.objects.filter(email__iexact=email).exists():
            raise forms.ValidationError(duplicate_email_error(), code="duplicate_email")
        return email

    def clean_display_name(self) -> str:
        name = self.cleaned_data["display_name"].strip()
        if not name:
            raise forms.ValidationError("Please enter a name.")
        return name

    def clean(self):
        cleaned = super().clean()
        password1, password2 = cleaned.get("password1"), cleaned.get("password2")
        if password1 and password2 and password1 != password2:
            self.add_error("password2", "The two passwords do not match.")
        elif password1:
            probe = User(
                email=cleaned.get("email", ""), display_name=cleaned.get("display_name", "")
            )
            try:
                password_validation.validate_password(password1, probe)
            except forms.ValidationError as error:
                self.add_error("password1", error)
        return cleaned


class EmailAuthenticationForm(AuthenticationForm):
    """The stock login form, with the e-mail compared case-insensitively."""

    def clean_username(self) -> str:
        return User.objects.normalize_email(self.cleaned_data.get("username"))


SLUG_TAKEN = "That address is taken. Try another one."
SLUG_FORMAT = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")  # as accounts_user_slug_format


def clean_artist_slug(slug: str, user: User) -> str:
    """A free, well-formed artist address (the user's own old ones are free to them)."""
    slug = slug.strip().lower()
    if not SLUG_FORMAT.match(slug):
        raise forms.ValidationError(
            "Use lowercase letters, digits and hyphens (not at the start or end), "
            "for example nova-lights."
        )
    if slug != user.slug and slug_taken(slug, exclude_user=user):
        raise forms.ValidationError(SLUG_TAKEN)
    return slug


class ProfileForm(forms.ModelForm):
    class Meta:
        model = User
        fields = ["display_name", "slug"]
        labels = {"slug": "Artist page address"}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["slug"].help_text = (
            f"Your artist page lives at /artists/{self.instance.slug}/. "
            "If you change it, the old address keeps leading to your page."
        )

    def clean_slug(self) -> str:
        return clean_artist_slug(self.cleaned_data["slug"], self.instance)


class NoticesForm(forms.Form):
    email_notices = forms.BooleanField(
        required=False,
        label="E-mail me notices",
        help_text="When credits are about to expire (3 days before) or have expired, and "
        "when Essential renews, fails to renew or ends. Receipts are always sent.",
    )
