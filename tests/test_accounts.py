import pytest
from django.core import mail
from django.urls import reverse

from accounts.models import User
from accounts.services import register_user

PASSWORD = "correct horse battery staple"


def signup(client, **overrides):
    data = {
        "email": "ana@example.com",
        "display_name": "DJ Ana",
        "password1": PASSWORD,
        "password2": PASSWORD,
        **overrides,
    }
    return client.post(reverse("signup"), data)


@pytest.mark.django_db
def test_signup_creates_account_logs_in_and_gives_artist_slug(client):
    response = signup(client)

    assert response.status_code == 302
    user = User.objects.get(email="ana@example.com")
    assert user.display_name == "DJ Ana"
    assert user.slug == "dj-ana"
    assert client.get(reverse("home")).context["user"] == user
    assert client.get("/artists/dj-ana/").status_code == 200


@pytest.mark.django_db
def test_signup_with_duplicate_email_in_any_case_is_refused_clearly(client):
    register_user(email="ana@example.com", password=PASSWORD, display_name="Ana")

    response = signup(client, email="ANA@Example.com")

    assert response.status_code == 200
    assert "already exists" in response.context["form"].errors["email"][0]
    assert User.objects.count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("short", "too short"),
        ("password123", "too common"),
        ("8675309123456", "entirely numeric"),
    ],
)
def test_signup_with_weak_password_is_refused_with_the_reason(client, password, message):
    response = signup(client, password1=password, password2=password)

    assert response.status_code == 200
    errors = " ".join(response.context["form"].errors["password1"])
    assert message in errors
    assert not User.objects.exists()


@pytest.mark.django_db
def test_signup_with_mismatched_passwords_is_refused(client):
    response = signup(client, password2=PASSWORD + "x")

    assert "do not match" in response.context["form"].errors["password2"][0]
    assert not User.objects.exists()


@pytest.mark.django_db
def test_login_is_case_insensitive_on_email_and_logout_ends_the_session(client):
    register_user(email="ana@example.com", password=PASSWORD, display_name="Ana")

    response = client.post(reverse("login"), {"username": "Ana@Example.COM", "password": PASSWORD})
    assert response.status_code == 302
    assert client.session.get("_auth_user_id")

    client.post(reverse("logout"))
    assert not client.session.get("_auth_user_id")


@pytest.mark.django_db
def test_login_with_wrong_password_shows_an_error(client):
    register_user(email="ana@example.com", password=PASSWORD, display_name="Ana")

    response = client.post(reverse("login"), {"username": "ana@example.com", "password": "nope"})

    assert response.status_code == 200
    assert response.context["form"].non_field_errors()
    assert not client.session.get("_auth_user_id")


@pytest.mark.django_db
def test_artist_slugs_are_unique_even_for_identical_names():
    first = register_user(email="a@example.com", password=PASSWORD, display_name="Night Owl")
    second = register_user(email="b@example.com", password=PASSWORD, display_name="Night Owl")
    third = register_user(email="c@example.com", password=PASSWORD, display_name="night owl!")

    assert [first.slug, second.slug, third.slug] == ["night-owl", "night-owl-2", "night-owl-3"]


@pytest.mark.django_db
def test_profile_refuses_a_slug_another_artist_has(client):
    register_user(email="a@example.com", password=PASSWORD, display_name="Taken")
    me = register_user(email="b@example.com", password=PASSWORD, display_name="Me")
    client.force_login(me)

    response = client.post(reverse("profile"), {"display_name": "Me", "slug": "taken"})

    assert "taken" in response.context["form"].errors["slug"][0]
    me.refresh_from_db()
    assert me.slug == "me"


@pytest.mark.django_db
def test_password_reset_sends_a_working_link(client):
    register_user(email="ana@example.com", password=PASSWORD, display_name="Ana")

    client.post(reverse("password_reset"), {"email": "ana@example.com"})

    assert len(mail.outbox) == 1
    link = next(line for line in mail.outbox[0].body.splitlines() if "/accounts/reset/" in line)
    path = link[link.index("/accounts/reset/") :].strip()
    response = client.get(path, follow=True)
    new = "a brand new passphrase 42"
    response = client.post(
        response.redirect_chain[-1][0], {"new_password1": new, "new_password2": new}
    )
    assert response.status_code == 302
    assert client.login(username="ana@example.com", password=new)


@pytest.mark.django_db
def test_unknown_artist_page_is_404(client):
    assert client.get("/artists/nobody/").status_code == 404
