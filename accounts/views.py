from functools import wraps

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.db import IntegrityError
from django.http import Http404, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from accounts import export, services, throttle
from accounts.forms import (
    SLUG_TAKEN,
    EmailAuthenticationForm,
    NoticesForm,
    ProfileForm,
    SignUpForm,
    duplicate_email_error,
)


@require_http_methods(["GET", "POST"])
def signup(request):
    if request.user.is_authenticated:
        return redirect("home")
    form = SignUpForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            user = services.register_user(
                email=form.cleaned_data["email"],
                password=form.cleaned_data["password1"],
                display_name=form.cleaned_data["display_name"],
            )
        except IntegrityError:  # a concurrent sign-up with the same e-mail won the race
            form.add_error("email", duplicate_email_error())
        else:
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            messages.success(request, f"Welcome to SoundStudio, {user.display_name}!")
            return redirect("home")
    return render(request, "accounts/signup.html", {"form": form})


@login_required
@require_http_methods(["GET", "POST"])
def profile(request):
    form = ProfileForm(request.POST or None, instance=request.user)
    if request.method == "POST" and form.is_valid():
        try:
            services.update_profile(
                user=request.user,
                display_name=form.cleaned_data["display_name"],
                slug=form.cleaned_data["slug"],
            )
        except (IntegrityError, services.SlugTaken):
            form.add_error("slug", SLUG_TAKEN)
        else:
            messages.success(request, "Profile saved.")
            return redirect("profile")
    notices_form = NoticesForm(initial={"email_notices": request.user.email_notices})
    return render(request, "accounts/profile.html", {"form": form, "notices_form": notices_form})


@login_required
@require_http_methods(["POST"])
def notices(request):
    form = NoticesForm(request.POST)
    if form.is_valid():
        enabled = form.cleaned_data["email_notices"]
        services.set_email_notices(user=request.user, enabled=enabled)
        messages.success(
            request,
            "We will e-mail you notices." if enabled else "No more notices; receipts still come.",
        )
    return redirect("profile")


@login_required
@require_http_methods(["GET"])
def export_csv(request, kind: str):
    """The user's ledger, purchases or payments as a CSV download, streamed."""
    if kind not in export.EXPORTS:
        raise Http404("No such export.")
    response = StreamingHttpResponse(
        export.stream(kind, request.user), content_type="text/csv; charset=utf-8"
    )
    filename = f"soundstudio-{kind}-{timezone.now():%Y-%m-%d}.csv"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "private, no-store"
    return response


def _minutes(lock: throttle.Lockout) -> str:
    return f"{lock.minutes_left} minute{'s' if lock.minutes_left != 1 else ''}"


def _refused(request, message: str):
    return render(request, "registration/throttled.html", {"message": message}, status=429)


def throttled_login(view):
    """Refuse log-ins for a locked-out e-mail or address (failures are counted by
    accounts.signals). Wraps our log-in page and the admin's."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if request.method == "POST":
            lock = throttle.lockout(
                throttle.LOGIN, request=request, email=request.POST.get("username")
            )
            if lock is not None:
                where = "for this e-mail address" if lock.scope == "email" else "from your network"
                return _refused(
                    request,
                    f"Too many failed log-in attempts {where}. For your safety, log-in is "
                    f"paused: please try again in {_minutes(lock)}.",
                )
        return view(request, *args, **kwargs)

    return wrapper


login_view = throttled_login(
    auth_views.LoginView.as_view(
        authentication_form=EmailAuthenticationForm, redirect_authenticated_user=True
    )
)
_password_reset = auth_views.PasswordResetView.as_view()


def password_reset(request, *args, **kwargs):
    """Django's reset page (the same answer whether or not the e-mail has an account),
    throttled per e-mail and per address alike for both."""
    if request.method == "POST":
        email = request.POST.get("email")
        lock = throttle.lockout(throttle.PASSWORD_RESET, request=request, email=email)
        if lock is not None:
            return _refused(
                request,
                f"Too many password reset requests. Please try again in {_minutes(lock)}.",
            )
        throttle.record_attempt(throttle.PASSWORD_RESET, request=request, email=email)
    return _password_reset(request, *args, **kwargs)
