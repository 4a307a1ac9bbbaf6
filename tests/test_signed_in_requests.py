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


def test_a_signed_in_request_reads_its_session_and_user_in_one_query(client):
    user = UserFactory()
    client.force_login(user)
    assert signed_in(client)
    with CaptureQueriesContext(connection) as queries:
        assert signed_in(client)
    sessions = [q["sql"] for q in queries if "accounts_session" in q["sql"]]
    assert len(sessions) == 1 and '"accounts_user" me' in sessions[0]
    users = [q["sql"] for q in queries if 'FROM "accounts_user"' in q["sql"]]
    assert users == [], "the user was read again"


def test_losing_redis_logs_nobody_out(client):
    """Sessions live in PostgreSQL."""
    client.force_login(UserFactory())
    cache.clear()
    assert signed_in(client)


def test_a_session_remembers_its_user_and_goes_at_log_out(client):
    from accounts.models import Session

    user = UserFactory()
    client.force_login(user)
    assert Session.objects.get(session_key=client.session.session_key).user_id == user.pk
    client.post("/accounts/logout/")
    assert not Session.objects.filter(user=user).exists()


def test_expired_sessions_are_cleared_and_live_ones_kept(client):
    import datetime as dt

    from django.utils import timezone

    from accounts.models import Session
    from accounts.tasks import clear_sessions

    client.force_login(UserFactory())
    live = client.session.session_key
    old = type(client)()
    old.force_login(UserFactory())
    Session.objects.filter(session_key=old.session.session_key).update(
        expire_date=timezone.now() - dt.timedelta(seconds=1)
    )
    assert not signed_in(old)
    assert clear_sessions.apply().get() == 1
    assert clear_sessions.apply().get() == 0  # twice is safe
    assert list(Session.objects.values_list("session_key", flat=True)) == [live]
    assert signed_in(client)


def test_sessions_of_the_old_engine_move_with_their_user(client):
    """The migration to accounts.sessions copies django_session's live sessions."""
    import datetime as dt
    import importlib

    from django.apps import apps
    from django.contrib.sessions.backends.db import SessionStore as OldStore
    from django.utils import timezone

    from accounts.models import Session

    migration = importlib.import_module("accounts.migrations.0004_sessions_with_user")
    user = UserFactory()
    old = OldStore()
    old.update({SESSION_KEY: str(user.pk), "_auth_user_backend": "x", "other": 1})
    old.create()
    expired = OldStore()
    expired.update({SESSION_KEY: str(user.pk)})
    expired.create()
    expired.model.objects.filter(session_key=expired.session_key).update(
        expire_date=timezone.now() - dt.timedelta(days=1)
    )
    migration.move_sessions(apps, None)
    moved = Session.objects.get()
    assert (moved.session_key, moved.user_id) == (old.session_key, user.pk)
    assert moved.get_decoded()["other"] == 1


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


def _fresh_request(client):
    """A request with the client's session, not loaded yet, through the middleware."""
    from django.contrib.sessions.middleware import SessionMiddleware
    from django.test import RequestFactory

    from accounts.middleware import AuthenticationMiddleware

    request = RequestFactory().get(PAGE)
    request.COOKIES.update({k: v.value for k, v in client.cookies.items()})
    SessionMiddleware(lambda r: None).process_request(request)
    AuthenticationMiddleware(lambda r: None).process_request(request)
    return request


def test_a_page_reads_its_own_rows_with_session_and_user_in_one_query(
    client, django_assert_num_queries
):
    from accounts.backends import read_with_user

    user = UserFactory()
    client.force_login(user)
    request = _fresh_request(client)
    with (
        django_assert_num_queries(1),
        read_with_user("SELECT me.id + %(plus)s AS next", {"plus": 1}) as extra,
    ):
        assert request.user == user
    assert extra.row == (user.pk + 1,)


def test_a_page_reads_its_own_rows_with_the_user_when_the_session_came_first(
    client, django_assert_num_queries
):
    from django.contrib.auth import get_user

    from accounts.backends import read_with_user

    user = UserFactory()
    client.force_login(user)
    request = _fresh_request(client)
    assert request.session["_auth_user_id"] == str(user.pk)  # the session, read alone
    with (
        django_assert_num_queries(1),
        read_with_user("SELECT me.id + %(plus)s AS next", {"plus": 1}) as extra,
    ):
        assert get_user(request) == user
    assert extra.row == (user.pk + 1,)


def test_what_is_read_with_a_user_who_may_not_sign_in_is_nobodys(client):
    from django.contrib.auth import get_user

    from accounts.backends import read_with_user

    user = UserFactory()
    client.force_login(user)
    User.objects.filter(pk=user.pk).update(is_active=False)
    request = _fresh_request(client)
    with read_with_user("SELECT 1 AS one", {}):
        assert not request.user.is_authenticated
    request = client.get(PAGE).wsgi_request
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
