"""The shortcuts a signed-in request takes (core.csrf, accounts.sessions, core.db,
tracks.catalog) give the same answers as the long way round."""

import pytest
from django.contrib.sessions.backends.db import SessionStore as DjangoStore
from django.middleware.csrf import CSRF_ALLOWED_CHARS, _unmask_cipher_token
from django.test import Client, RequestFactory

from accounts.sessions import SessionStore
from core.csrf import get_token
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def _request_with_secret(secret):
    request = RequestFactory().get("/")
    request.META["CSRF_COOKIE"] = secret
    return request


def test_the_csrf_token_is_djangos_token_for_the_same_secret():
    secret = "".join(CSRF_ALLOWED_CHARS[i % 62] for i in range(7, 39))
    request = _request_with_secret(secret)
    tokens = {get_token(request) for _ in range(200)}
    assert len(tokens) == 200  # a fresh mask every time
    for token in tokens:
        assert len(token) == 64 and set(token) <= set(CSRF_ALLOWED_CHARS)
        assert _unmask_cipher_token(token) == secret
    assert request.META["CSRF_COOKIE_NEEDS_UPDATE"] is True  # renewed, as Django does
    # Every character turns up in the masks, about equally often.
    masks = "".join(token[:32] for token in tokens)
    counts = [masks.count(char) for char in CSRF_ALLOWED_CHARS]
    assert min(counts) > 0 and max(counts) < 4 * len(masks) / 62


def test_without_a_secret_django_makes_one():
    request = RequestFactory().get("/")
    token = get_token(request)
    assert _unmask_cipher_token(token) == request.META["CSRF_COOKIE"]


def test_a_form_posted_with_the_token_passes_the_csrf_check():
    client = Client(enforce_csrf_checks=True)
    user = UserFactory()
    client.force_login(user)
    client.get("/accounts/profile/")  # sets the CSRF cookie
    request = _request_with_secret(client.cookies["csrftoken"].value)
    token = get_token(request)
    refused = client.post("/accounts/logout/")
    assert refused.status_code == 403
    response = client.post("/accounts/logout/", {"csrfmiddlewaretoken": token})
    assert response.status_code == 302
    assert "_auth_user_id" not in client.session


def test_a_session_decodes_as_djangos_and_a_forged_one_is_nobodys():
    store = SessionStore()
    store.update({"_auth_user_id": "7", "cart": [1, 2]})
    text = store.encode(dict(store.items()))
    assert SessionStore().decode(text) == DjangoStore().decode(text)
    again = SessionStore().decode(text)  # the checked copy
    assert again == {"_auth_user_id": "7", "cart": [1, 2]}
    again["cart"].append(3)  # a caller's change does not reach the next reader
    assert SessionStore().decode(text)["cart"] == [1, 2]
    forged = text[:-3] + ("AAA" if not text.endswith("AAA") else "BBB")
    assert SessionStore().decode(forged) == {}


def test_a_new_secret_key_checks_a_session_again(settings):
    text = SessionStore().encode({"_auth_user_id": "7"})
    assert SessionStore().decode(text) == {"_auth_user_id": "7"}
    settings.SECRET_KEY = "another secret key for this test only, long enough to be one"
    assert SessionStore().decode(text) == {}


@pytest.mark.parametrize("prepared", [True, False], ids=["prepared", "bound only"])
def test_the_session_query_answers_the_same_prepared_or_not(client, settings, prepared):
    settings.DATABASE_PREPARED_STATEMENTS = prepared
    user = UserFactory(display_name="Prepared Or Not")
    client.force_login(user)
    for _ in range(3):  # first use prepares it, later ones reuse it
        page = client.get("/accounts/profile/")
        assert page.status_code == 200 and "Prepared Or Not" in page.content.decode()


def test_held_pages_are_bounded_and_the_least_recently_used_go_first():
    from tracks.catalog import _Memory

    memory = _Memory(3)
    for key in "abc":
        memory.put((key,), 1, key.upper())
    assert memory.get(("a",)) == (1, "A")  # a is now the most recently used
    memory.put(("d",), 1, "D")
    assert memory.get(("b",)) is None
    assert [memory.get((k,)) for k in "acd"] == [(1, "A"), (1, "C"), (1, "D")]


def test_a_frozen_heap_still_collects_what_is_made_after_it():
    import gc
    import weakref

    from core.heap import freeze_after_startup

    try:
        assert freeze_after_startup() > 10_000  # Django and the URL patterns' views

        class Node:
            pass

        a, b = Node(), Node()
        a.other, b.other = b, a  # a cycle only the collector can free
        gone = weakref.ref(a)
        del a, b
        gc.collect()
        assert gone() is None
    finally:
        gc.unfreeze()
