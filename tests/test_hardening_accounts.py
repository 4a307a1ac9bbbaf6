"""Hardening (issue 12): every way an account is made gives it a unique artist slug
and the Free gift of 5 credits, exactly once (key signup:<id>)."""

import pytest
from django.core.management import call_command
from django.db import transaction
from django.urls import reverse

from accounts.models import User
from credits.models import CreditLot, LedgerEntry
from credits.selectors import balance
from credits.services import grant_signup_gift
from tests.threads import run_threads

PASSWORD = "correct horse battery staple"  # noqa: S105


def assert_new_account(user: User) -> None:
    assert user.slug
    assert User.objects.filter(slug=user.slug).count() == 1
    assert balance(user) == 5
    assert LedgerEntry.objects.filter(idempotency_key=f"signup:{user.pk}").count() == 1
    [lot] = CreditLot.objects.filter(user=user)
    assert (lot.source, lot.amount, lot.expires_at) == ("signup", 5, None)


@pytest.mark.django_db
def test_create_user_with_only_email_and_password():
    user = User.objects.create_user(email="Ana@Example.com", password=PASSWORD)

    assert user.email == "ana@example.com"
    assert user.slug == "ana"
    assert user.display_name == "ana"
    assert_new_account(user)


@pytest.mark.django_db
def test_two_users_with_the_same_local_part_get_distinct_slugs():
    first = User.objects.create_user(email="ana@one.example", password=PASSWORD)
    second = User.objects.create_user(email="ana@two.example", password=PASSWORD)

    assert (first.slug, second.slug) == ("ana", "ana-2")
    assert_new_account(first)
    assert_new_account(second)


@pytest.mark.django_db
def test_create_user_with_a_display_name_derives_the_slug_from_it():
    user = User.objects.create_user(email="x@example.com", password=PASSWORD, display_name="DJ Ana")

    assert user.slug == "dj-ana"
    assert_new_account(user)


@pytest.mark.django_db
def test_create_superuser_gets_a_slug_and_the_gift():
    admin = User.objects.create_superuser(email="root@example.com", password=PASSWORD)

    assert admin.is_staff and admin.is_superuser
    assert_new_account(admin)


@pytest.mark.django_db
def test_the_createsuperuser_command_gets_a_slug_and_the_gift(monkeypatch):
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", PASSWORD)
    call_command(
        "createsuperuser",
        interactive=False,
        email="boss@example.com",
        display_name="The Boss",
        verbosity=0,
    )

    admin = User.objects.get(email="boss@example.com")
    assert admin.slug == "the-boss" and admin.is_superuser
    assert_new_account(admin)


@pytest.mark.django_db
def test_the_admin_add_form_gets_a_slug_and_the_gift(admin_client):
    admin_before = User.objects.get()
    response = admin_client.post(
        reverse("admin:accounts_user_add"),
        {
            "email": "new@example.com",
            "display_name": "New Artist",
            "slug": "",
            "password1": PASSWORD,
            "password2": PASSWORD,
        },
    )

    assert response.status_code == 302, response.context["adminform"].form.errors
    user = User.objects.exclude(pk=admin_before.pk).get()
    assert user.email == "new@example.com" and user.slug == "new-artist"
    assert user.check_password(PASSWORD)
    assert_new_account(user)


@pytest.mark.django_db
def test_the_admin_add_form_keeps_a_slug_given_and_refuses_a_taken_one(admin_client):
    User.objects.create_user(email="a@example.com", password=PASSWORD, display_name="Taken")
    data = {
        "email": "new@example.com",
        "display_name": "New",
        "password1": PASSWORD,
        "password2": PASSWORD,
    }
    taken = admin_client.post(reverse("admin:accounts_user_add"), {**data, "slug": "taken"})
    assert taken.status_code == 200
    assert "slug" in taken.context["adminform"].form.errors

    chosen = admin_client.post(reverse("admin:accounts_user_add"), {**data, "slug": "my-page"})
    assert chosen.status_code == 302
    assert_new_account(User.objects.get(slug="my-page"))


@pytest.mark.django_db
def test_the_signup_view_gives_the_gift_once(client):
    response = client.post(
        reverse("signup"),
        {
            "email": "fan@example.com",
            "display_name": "Fan",
            "password1": PASSWORD,
            "password2": PASSWORD,
        },
    )

    assert response.status_code == 302
    user = User.objects.get(email="fan@example.com")
    grant_signup_gift(user=user)  # again: changes nothing
    assert_new_account(user)


@pytest.mark.django_db
def test_a_failed_gift_leaves_no_account(monkeypatch):
    import credits.services

    def broken(*, user):
        raise RuntimeError("ledger down")

    monkeypatch.setattr(credits.services, "grant_signup_gift", broken)
    with pytest.raises(RuntimeError), transaction.atomic():
        User.objects.create_user(email="lost@example.com", password=PASSWORD)
    assert not User.objects.filter(email="lost@example.com").exists()


@pytest.mark.django_db(transaction=True)
def test_concurrent_accounts_with_the_same_local_part_get_distinct_slugs():
    outcomes = run_threads(
        [
            lambda i=i: User.objects.create_user(email=f"sam@host{i}.example", password=PASSWORD)
            for i in range(4)
        ]
    )

    assert [exc for _, exc in outcomes] == [None] * 4
    users = [user for user, _ in outcomes]
    assert sorted(u.slug for u in users) == ["sam", "sam-2", "sam-3", "sam-4"]
    for user in users:
        assert_new_account(user)


@pytest.mark.django_db
def test_the_admin_add_page_shows_the_form(admin_client):
    page = admin_client.get(reverse("admin:accounts_user_add")).content.decode()

    assert 'name="email"' in page and 'name="slug"' in page and 'name="password1"' in page
    assert "Leave empty to derive it from the display name." in page
