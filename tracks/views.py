import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import (
    FileResponse,
    Http404,
    HttpResponse,
    HttpResponsePermanentRedirect,
    JsonResponse,
)
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_GET, require_POST

from accounts.backends import read_with_user
from accounts.selectors import artist_by_slug, moved_artist_slug
from core import shell
from core.api import api_error, api_login_required
from credits.exceptions import InsufficientCredits
from credits.selectors import balance, header_credits
from purchases import buttons
from purchases.selectors import (
    FAN_PAGE_STATE_SQL,
    fan_page_state,
    fan_page_state_of,
    fan_page_state_params,
)
from subscriptions.selectors import allowance_remaining, has_active_subscription
from tracks import catalog, selectors, services
from tracks.engine import GENRE_CHOICES, MAX_DURATION_SECONDS, MOOD_CHOICES
from tracks.forms import GenerateTrackForm, PriceForm
from tracks.models import Track, TrackStatus

ARTIST_PAGE_SIZE = 20


def track_json(track: Track, user) -> dict:
    data = {
        "id": track.pk,
        "status": track.status,
        "progress": track.progress,
        "title": track.title,
        "genre": track.genre,
        "mood": track.mood,
        "duration_seconds": track.duration_seconds,
        "length_seconds": track.length_seconds,
        "error": track.error,
        "is_published": track.is_published,
        "price_credits": track.price_credits,
        "for_sale": track.for_sale,
        "url": track.get_absolute_url(),
    }
    if track.status == TrackStatus.READY:
        data["preview_url"] = reverse("track_preview", kwargs={"track_id": track.pk})
        data["waveform_url"] = reverse("track_waveform", kwargs={"track_id": track.pk})
        if selectors.can_download_full(user, track):
            data["audio_url"] = reverse("track_download", kwargs={"track_id": track.pk})
    if user.is_authenticated and track.creator_id == user.pk:
        data["charge"] = track.charge_kind
        data["charge_returned"] = track.charge_returned_at is not None
    return data


@api_login_required
@require_POST
def generate_api(request):
    try:
        body = json.loads(request.body or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError):
        return api_error("invalid_json", "The request body must be a JSON object.")
    if not isinstance(body, dict):
        return api_error("invalid_json", "The request body must be a JSON object.")
    form = GenerateTrackForm(body)
    if not form.is_valid():
        fields = form.error_fields()
        field, error = next(iter(fields.items()))
        label = form.fields[field].label
        return api_error("invalid", f"{label}: {error}", field=field, fields=fields)
    try:
        track = services.request_generation(creator=request.user, **form.cleaned_data)
    except InsufficientCredits:
        return api_error(
            "insufficient_credits",
            "You have no generations or credits left. Buy credits to keep creating.",
            status=402,
            buy_url=reverse("credits"),
        )
    return JsonResponse({"track_id": track.pk, "status": track.status}, status=202)


@require_GET
def track_api(request, track_id: int):
    track = selectors.visible_track(request.user, track_id)
    if track is None:
        return api_error("not_found", "No such track.", status=404)
    return JsonResponse(track_json(track, request.user))


@login_required
@require_GET
def studio(request):
    return render(
        request,
        "tracks/studio.html",
        {
            "tracks": selectors.studio_tracks(request.user),
            "form": GenerateTrackForm(),
            "genres": GENRE_CHOICES,
            "moods": MOOD_CHOICES,
            "max_duration": MAX_DURATION_SECONDS,
            "balance": balance(request.user),
            "allowance_remaining": allowance_remaining(request.user),
            "subscribed": has_active_subscription(request.user),
        },
    )


def _own_track(request, track_id: int) -> Track:
    return get_object_or_404(Track, pk=track_id, creator=request.user)


@login_required
@require_POST
def publish(request, track_id: int):
    track = _own_track(request, track_id)
    wanted = request.POST.get("published") == "1"
    try:
        services.publish(track=track, published=wanted)
    except services.InvalidTransition as exc:
        messages.error(request, str(exc))
    else:
        messages.success(
            request, f"\u201c{track.title}\u201d is {'published' if wanted else 'unpublished'}."
        )
    return redirect("studio")


@login_required
@require_POST
def price(request, track_id: int):
    track = _own_track(request, track_id)
    form = PriceForm(request.POST)
    if form.is_valid():
        services.set_price(
            track=track,
            price_credits=form.cleaned_data["price_credits"],
            for_sale=form.cleaned_data["for_sale"],
        )
        messages.success(request, f"Saved the price of \u201c{track.title}\u201d.")
    else:
        messages.error(request, "The price must be a whole number of credits, at least 1.")
    return redirect("studio")


@login_required
@require_POST
def delete(request, track_id: int):
    track = _own_track(request, track_id)
    try:
        services.delete_track(track=track)
    except services.InvalidTransition as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Deleted \u201c{track.title}\u201d.")
    return redirect("studio")


# What the signed-in artist page reads with its session and user (accounts.sessions):
# the fan's header figures and live purchases among the page's tracks, and the page's
# version, so that the shell this process holds can be used without asking again.
_PAGE_STATE_SQL = f"SELECT st.*, {catalog.VERSION_SQL} FROM ({FAN_PAGE_STATE_SQL}) st"  # noqa: S608 - constants only


@require_GET
def artist_page(request, slug: str):
    number = request.GET.get("page")
    if request.session.session_key is not None:
        # Perhaps signed in: one query reads the session, the user, what is the fan's
        # own on the page and the page's version.
        variant = shell.key()
        held = catalog.held_shell(slug, number, variant)
        track_ids = [offer.track_id for offer in held[1].offers] if held else []
        params = {**fan_page_state_params(track_ids), "page_slug": slug}
        with read_with_user(_PAGE_STATE_SQL, params) as state:
            signed_in = request.user.is_authenticated
        if signed_in:
            return _signed_in_artist_page(request, slug, number, variant, track_ids, state.row)
    # Anonymous visitors get a whole page held in memory: it has nothing personal in it.
    version = catalog.current_version(slug)
    anonymous = "messages" not in request.COOKIES
    if anonymous and (held_page := catalog.public_page(slug, number, version)) is not None:
        return HttpResponse(held_page)
    content = _artist_content(slug, number, version)
    if content is None:
        return _moved_artist_or_404(request, slug)
    html = buttons.fill(
        content.html,
        request.user,
        artist_id=content.artist_id,
        balance=None,
        next_url=request.get_full_path(),
    )
    context = {"artist_name": content.display_name, "content_html": mark_safe(html)}  # noqa: S308 - our own rendered template
    response = render(request, "tracks/artist.html", context)
    if anonymous:
        catalog.store_public_page(slug, number, response.content, version)
    return response


def _signed_in_artist_page(request, slug, number, variant, track_ids, state_row):
    """The page drawn once for every signed-in visitor (a shell, held while the artist's
    version is current); this visitor's header, messages and Buy buttons are filled in
    from what was read with the session, on every view, so they are never stale."""
    version = state_row[-1] if state_row is not None else None
    if version is None:  # read apart (a session from before) or a page never versioned
        version = catalog.current_version(slug)
    page = catalog.shell(
        slug, number, variant, version, lambda: _render_shell(slug, number, version)
    )
    if page is None:
        return _moved_artist_or_404(request, slug)
    offered = [offer.track_id for offer in page.offers]
    if state_row is not None and offered == track_ids:
        credits, states = fan_page_state_of(state_row)
    else:  # the shell was drawn just now, or the session was read before the view
        credits, states = fan_page_state(request.user, offered)
    own = buttons.signed_in_slots(
        request.user,
        page.offers,
        page.buttons,
        artist_id=page.artist_id,
        balance=credits.balance,
        states=states,
    )
    return HttpResponse(shell.fill(page.parts, request, credits=credits, more=own))


def _render_shell(slug: str, number: str | None, version: int) -> catalog.ArtistShell | None:
    content = _artist_content(slug, number, version)
    if content is None:
        return None
    context = {"artist_name": content.display_name, "content_html": mark_safe(content.html)}  # noqa: S308 - our own rendered template
    html = shell.render("tracks/artist.html", context)
    offers = tuple(buttons.offers_in(html))
    return catalog.ArtistShell(
        content.artist_id, html, offers, shell.compile(html), buttons.drawn(offers)
    )


def _artist_content(slug: str, number: str | None, version: int):
    """The page's part that is the same for everyone, cached with the artist's id (no
    query for the artist while it is current)."""

    def render_content() -> catalog.ArtistContent | None:
        artist = artist_by_slug(slug)
        if artist is None:
            return None
        page = Paginator(selectors.published_tracks(artist), ARTIST_PAGE_SIZE).get_page(number)
        # URLs built from one reverse() per page instead of three per track.
        base = reverse("track_detail", kwargs={"track_id": 0}).removesuffix("0/")
        html = render_to_string(
            "tracks/_artist_tracks.html", {"artist": artist, "page": page, "track_base": base}
        )
        return catalog.ArtistContent(artist.pk, artist.display_name, html)

    return catalog.content(slug, number, version, render_content)


def _header_credits(request) -> dict:
    """The header's credit figures, read once here because the Buy buttons need the
    balance too (the context processor then makes no query of its own)."""
    if not request.user.is_authenticated:
        return {}
    credits = header_credits(request.user)
    return {
        "header_balance": credits.balance,
        "header_expiring": credits.expiring,
        "header_expiring_at": credits.expiring_at,
    }


def _moved_artist_or_404(request, slug: str) -> HttpResponse:
    """An artist's old address leads (301) to their page, its query string kept."""
    current = moved_artist_slug(slug)
    if current is None:
        raise Http404("No such artist.")
    url = reverse("artist_detail", kwargs={"slug": current})
    if query := request.META.get("QUERY_STRING"):
        url = f"{url}?{query}"
    response = HttpResponsePermanentRedirect(url)
    # Not cached for ever: the artist may take the old address back one day.
    response["Cache-Control"] = "max-age=86400"
    return response


@require_GET
def track_detail(request, track_id: int):
    track = _visible_or_404(request, track_id)
    context = {
        "track": track,
        "rights": selectors.rights_status(track),
        "can_download": selectors.can_download_full(request.user, track),
        "is_owner": request.user.is_authenticated and request.user.pk == track.creator_id,
    }
    if track.is_published:
        header = _header_credits(request)
        context["buy_button"] = buttons.for_track(
            request.user,
            track,
            balance=header.get("header_balance"),
            next_url=request.get_full_path(),
        )
        context.update(header)
    return render(request, "tracks/track.html", context)


def _serve(file, *, content_type: str, download_name: str | None = None):
    if not file:
        raise Http404("Not generated yet.")
    response = FileResponse(
        file.open("rb"),
        content_type=content_type,
        as_attachment=download_name is not None,
        filename=download_name,
    )
    response["Cache-Control"] = "private, max-age=3600"
    return response


def _visible_or_404(request, track_id: int) -> Track:
    track = selectors.visible_track(request.user, track_id)
    if track is None:
        raise Http404("No such track.")
    return track


@require_GET
def preview(request, track_id: int):
    track = _visible_or_404(request, track_id)
    return _serve(track.preview, content_type="audio/mpeg")


@require_GET
def waveform(request, track_id: int):
    track = _visible_or_404(request, track_id)
    return _serve(track.waveform, content_type="image/svg+xml")


@require_GET
def download(request, track_id: int):
    """The full audio: checked on every request, never a public file URL."""
    track = _visible_or_404(request, track_id)
    if not selectors.can_download_full(request.user, track):
        return render(request, "tracks/no_download.html", {"track": track}, status=403)
    extension = track.audio.name.rsplit(".", 1)[-1] if track.audio else "mp3"
    return _serve(
        track.audio, content_type="audio/mpeg", download_name=f"{track.title}.{extension}"
    )
