"""The artist page cache follows the account: a deactivated artist's page is gone at
once, for anonymous visitors (whole-page cache) and signed-in ones (content cache)."""

import pytest
from django.test import Client

from tests.factories import UserFactory
from tests.purchases_helpers import published_track

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("signed_in", [False, True], ids=["anonymous", "signed in"])
def test_a_deactivated_artists_page_is_gone_at_once(signed_in, django_capture_on_commit_callbacks):
    artist = UserFactory(display_name="Nova Lights")
    published_track(artist, title="Neon Harbour")
    visitor = Client()
    if signed_in:
        visitor.force_login(UserFactory())
    url = f"/artists/{artist.slug}/"
    assert "Neon Harbour" in visitor.get(url).content.decode()  # now cached

    with django_capture_on_commit_callbacks(execute=True):
        artist.is_active = False
        artist.save()

    assert visitor.get(url).status_code == 404


def test_a_new_display_name_shows_at_once(django_capture_on_commit_callbacks):
    artist = UserFactory(display_name="Nova Lights")
    published_track(artist, title="Neon Harbour")
    url = f"/artists/{artist.slug}/"
    assert "Nova Lights" in Client().get(url).content.decode()

    with django_capture_on_commit_callbacks(execute=True):
        artist.display_name = "Nova Darks"
        artist.save(update_fields=["display_name"])

    page = Client().get(url).content.decode()
    assert "Nova Darks" in page and "Nova Lights" not in page


def test_a_log_in_does_not_throw_the_artists_page_away(django_capture_on_commit_callbacks):
    from tracks import catalog

    artist = UserFactory()
    published_track(artist)
    Client().get(f"/artists/{artist.slug}/")
    version = catalog.current_version(artist.slug)
    with django_capture_on_commit_callbacks(execute=True):
        Client().force_login(artist)  # saves last_login only
    assert catalog.current_version(artist.slug) == version
