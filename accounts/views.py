from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.db import IntegrityError
from django.http import Http404, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from accounts import export, services
from accounts.forms import DUPLICATE_EMAIL, NoticesForm, ProfileForm, SignUpForm


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
            form.add_error("email", DUPLICATE_EMAIL)
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
        except IntegrityError:
            form.add_error("slug", "That address is taken. Try another one.")
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
