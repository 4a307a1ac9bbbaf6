"""Artist page versions (tracks.catalog) under concurrent requests, on PostgreSQL."""

import time

import pytest
from django.db import transaction

from tests.threads import run_threads
from tracks import catalog
from tracks.models import ArtistPage

pytestmark = pytest.mark.django_db(transaction=True)


def test_four_first_views_of_a_page_agree_on_its_first_version():
    outcomes = run_threads([lambda: catalog.current_version("brand-new-artist")] * 4)
    assert [error for _, error in outcomes] == [None] * 4
    versions = {version for version, _ in outcomes}
    assert len(versions) == 1
    assert ArtistPage.objects.get(slug="brand-new-artist").version in versions


def test_changes_naming_the_same_pages_in_any_order_never_deadlock():
    """A rename bumps two slugs; two renames naming them in opposite orders lock the
    rows in one order, so both commit, each with versions of its own."""
    before = {slug: catalog.current_version(slug) for slug in ("old-name", "new-name")}

    def rename(slugs):
        def run():
            with transaction.atomic():
                catalog.changed(*slugs)
                time.sleep(0.2)  # hold the rows while the other one tries
            return {p.slug: p.version for p in ArtistPage.objects.filter(slug__in=slugs)}

        return run

    outcomes = run_threads([rename(("old-name", "new-name")), rename(("new-name", "old-name"))])
    assert [error for _, error in outcomes] == [None, None]
    after = {p.slug: p.version for p in ArtistPage.objects.filter(slug__in=before)}
    assert all(after[slug] > before[slug] for slug in before)
    first, second = (result for result, _ in outcomes)
    assert first != second  # one committed after the other, with newer versions


def test_a_view_reading_the_version_does_not_wait_for_a_change_in_progress():
    slug = "busy-artist"
    before = catalog.current_version(slug)
    with transaction.atomic():
        catalog.changed(slug)  # holds the row until this block commits
        # Were the read to wait for the row, it would wait for this block, which waits
        # for it: the thread's statement timeout would end it with an error.
        ((seen, error),) = run_threads([lambda: catalog.current_version(slug)])
    assert error is None and seen == before
    assert catalog.current_version(slug) > before
