"""Cached artist pages belong to the release that drew them.

A release that changes base.html or the static files (whose names carry a content
hash) must never serve a page an older release cached: that page would link style
sheets and scripts the new release no longer has.
"""

import pytest
from django.test import Client

from core import release
from tests.factories import UserFactory
from tests.purchases_helpers import published_track

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("signed_in", [False, True], ids=["anonymous", "signed in"])
def test_a_new_release_draws_the_page_again(signed_in, monkeypatch):
    artist = UserFactory(display_name="Nova Lights")
    published_track(artist, title="Neon Harbour")
    visitor = Client()
    if signed_in:
        visitor.force_login(UserFactory())
    url = f"/artists/{artist.slug}/"
    monkeypatch.setattr(release, "current", lambda: "release-1")
    assert "Neon Harbour" in visitor.get(url).content.decode()

    # The next release's templates say something else around the same tracks.
    from django.template import engines

    monkeypatch.setattr(release, "current", lambda: "release-2")
    original = engines["django"].engine.find_template

    def with_new_footer(name, dirs=None, skip=None):
        template, origin = original(name, dirs, skip)
        if name == "base.html":
            template = (
                engines["django"]
                .from_string(
                    template.source.replace("Made for music creators", "Release two footer")
                )
                .template
            )
        return template, origin

    monkeypatch.setattr(engines["django"].engine, "find_template", with_new_footer)
    page = visitor.get(url).content.decode()
    assert "Release two footer" in page and "Neon Harbour" in page


def test_the_release_is_the_environment_or_a_digest_of_templates_and_static(monkeypatch):
    release.current.cache_clear()
    monkeypatch.setenv("RELEASE", "abc123")
    assert release.current() == "abc123"
    release.current.cache_clear()
    monkeypatch.delenv("RELEASE")
    digest = release.current()
    assert len(digest) == 12 and digest == release.current()
    release.current.cache_clear()
