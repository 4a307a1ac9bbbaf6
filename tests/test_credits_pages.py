import pytest


@pytest.mark.django_db
def test_header_shows_the_balance_with_the_right_plural(client, user):
    from credits.services import spend

    client.force_login(user)
    assert "5 credits</a>" in client.get("/").content.decode()
    spend(user=user, amount=4, reason="test", idempotency_key="header")
    assert "1 credit</a>" in client.get("/").content.decode()


@pytest.mark.django_db
def test_seed_demo_is_idempotent_and_gives_every_demo_user_the_gift(capsys, settings, tmp_path):
    from django.core.management import call_command

    settings.MEDIA_ROOT = tmp_path / "media"  # the demo tracks' audio

    from accounts.models import User
    from credits.selectors import balance

    call_command("seed_demo")
    call_command("seed_demo")

    assert "Admin login: admin@soundstudio.test" in capsys.readouterr().out
    assert User.objects.filter(is_superuser=True).count() == 1
    fan = User.objects.get(email="fan@soundstudio.test")
    assert balance(fan) == 5


@pytest.mark.django_db
def test_admin_adjust_form_searches_users_instead_of_listing_them(admin_client):
    page = admin_client.get("/admin/credits/wallet/adjust/").content.decode()

    assert "admin-autocomplete" in page
    assert "autocomplete.js" in page
