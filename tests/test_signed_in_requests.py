"""What every signed-in request pays for its session and user, and what it still checks."""

import pytest
from django.contrib.auth import SESSION_KEY
from django.contrib.auth.hashers import make_password
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.backends import AccountBackend
from accounts.models import User
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

PAGE = "/accounts/profile/"


def signed_in(client) -> bool:
    response = client.get(PAGE)
    return response.status_code == 200


def test_a_signed_in_request_reads_its_session_from_the_cache(client):
    client.force_login(UserFactory())
    assert signed_in(client)
    with CaptureQueriesContext(connection) as queries:
        assert signed_in(client)
    assert not [q["sql"] for q in queries if "django_session" in q["sql"]]


def test_a_session_outlives_its_cached_copy(client):
    """Sessions are written through to PostgreSQL: losing Redis logs nobody out."""
    client.force_login(UserFactory())
    session = client.session
    cache.delete(session.cache_key)
    assert signed_in(client)


def test_the_user_of_a_request_is_the_whole_row():
    user = UserFactory()
    loaded = AccountBackend().get_user(user.pk)
    fresh = User.objects.get(pk=user.pk)
    fields = [f.attname for f in User._meta.concrete_fields]
    assert [getattr(loaded, f) for f in fields] == [getattr(fresh, f) for f in fields]
    assert not loaded._state.adding
    assert AccountBackend().get_user(user.pk + 1000) is None
    assert AccountBackend().get_user("not a number") is None


def test_a_deactivated_user_is_signed_out_on_the_next_request(client):
    user = UserFactory()
    client.force_login(user)
    assert signed_in(client)
    User.objects.filter(pk=user.pk).update(is_active=False)  # as the admin would
    assert not signed_in(client)


def test_a_password_changed_elsewhere_signs_the_session_out(client):
    user = UserFactory()
    client.force_login(user)
    assert signed_in(client)
    User.objects.filter(pk=user.pk).update(password=make_password("another one entirely"))
    assert not signed_in(client)
    assert SESSION_KEY not in client.session


def test_sessions_opened_before_the_account_backend_still_work(client):
    client.force_login(UserFactory(), backend="django.contrib.auth.backends.ModelBackend")
    assert signed_in(client)


def test_signing_in_uses_the_account_backend(client):
    user = UserFactory()
    response = client.post(
        "/accounts/login/", {"username": user.email, "password": "correct horse battery staple"}
    )
    assert response.status_code == 302
    assert client.session["_auth_user_backend"] == "accounts.backends.AccountBackend"


def test_a_page_reads_its_own_rows_with_the_user_in_one_query(client, django_assert_num_queries):
    from accounts.backends import read_with_user

    user = UserFactory()
    client.force_login(user)
    request = client.get(PAGE).wsgi_request  # a request with this session
    from django.contrib.auth import get_user

    request.__dict__.pop("_cached_user", None)
    with django_assert_num_queries(1), read_with_user("SELECT %(u)s + 1 AS next", {}) as extra:
        assert get_user(request) == user
    assert extra.row == (user.pk + 1,)


def test_what_is_read_with_a_user_who_may_not_sign_in_is_nobodys(client):
    from django.contrib.auth import get_user

    from accounts.backends import read_with_user

    user = UserFactory()
    client.force_login(user)
    request = client.get(PAGE).wsgi_request
    User.objects.filter(pk=user.pk).update(is_active=False)
    with read_with_user("SELECT 1 AS one", {}):
        assert not get_user(request).is_authenticated


def test_the_artist_page_of_a_session_from_before_reads_the_fan_separately(client):
    from tests.purchases_helpers import published_track

    artist = UserFactory()
    track = published_track(artist, price=2, title="Old session song")
    fan = UserFactory()
    client.force_login(fan, backend="django.contrib.auth.backends.ModelBackend")
    assert client.post(f"/api/tracks/{track.pk}/purchase").json()["status"] == "completed"
    html = client.get(f"/artists/{artist.slug}/").content.decode()
    assert "In your collection" in html and "3 credits</a>" in html
