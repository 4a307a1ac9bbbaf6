"""An old artist address cannot be taken by someone else, even at the same moment as
its owner leaves it (PostgreSQL, real commits)."""

import threading
import time

import pytest

from accounts import services
from accounts.models import PreviousSlug, User
from tests.factories import UserFactory
from tests.threads import run_threads

pytestmark = pytest.mark.django_db(transaction=True)


def test_leaving_an_address_while_another_user_takes_it(monkeypatch):
    owner, other = UserFactory(), UserFactory()
    address = owner.slug
    other_started = threading.Event()
    real_slug_changed = services.slug_changed

    def slow_slug_changed(**kwargs):
        real_slug_changed(**kwargs)
        # Hold the owner's transaction open until the other user's change is under way.
        other_started.wait(10)
        time.sleep(0.3)

    monkeypatch.setattr(services, "slug_changed", slow_slug_changed)

    def leave():
        return services.update_profile(user=owner, display_name="Owner", slug="moved-away")

    def take():
        time.sleep(0.1)  # let the owner go first
        other_started.set()
        return services.update_profile(user=other, display_name="Other", slug=address)

    (_, leave_error), (_, take_error) = run_threads([leave, take])

    assert leave_error is None
    assert isinstance(take_error, services.SlugTaken)
    assert User.objects.get(pk=other.pk).slug != address
    assert PreviousSlug.objects.get(slug=address).user_id == owner.pk
