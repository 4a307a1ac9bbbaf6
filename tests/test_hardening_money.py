"""Hardening (issue 12), the money side: test mode only when asked for by name, an
allowance given back after its month closed, the reconciliation sweep, package
expiry, the admin's adjust form and the artist page cache after a delete."""

import datetime as dt
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.checks import Error

ROOT = Path(__file__).resolve().parent.parent


def _run(code_or_args: list[str], **env_overrides: str) -> subprocess.CompletedProcess:
    """Run Python with a clean Stripe environment plus `env_overrides`."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("STRIPE_") and k != "DJANGO_SETTINGS_MODULE"
    }
    env.update(
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="soundstudio.example.com",
        **env_overrides,
    )
    return subprocess.run(
        [sys.executable, *code_or_args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


IMPORT_PRODUCTION = ["-c", "import soundstudio.settings.production"]


# --- 1. Production never falls into the test gateway by a forgotten key ---------------


def test_production_settings_refuse_test_mode_without_the_explicit_switch():
    result = _run(IMPORT_PRODUCTION)
    assert result.returncode != 0
    assert "STRIPE_TEST_MODE" in result.stderr


def test_production_settings_start_in_test_mode_when_asked_for_by_name():
    assert _run(IMPORT_PRODUCTION, STRIPE_TEST_MODE="true").returncode == 0


def test_production_settings_start_with_a_stripe_key():
    assert _run(IMPORT_PRODUCTION, STRIPE_SECRET_KEY="sk_test_dummy").returncode == 0


def test_production_settings_refuse_test_mode_when_the_switch_says_false():
    assert _run(IMPORT_PRODUCTION, STRIPE_TEST_MODE="false").returncode != 0


def test_deploy_check_fails_in_test_mode_unless_asked_for():
    args = ["manage.py", "check", "--deploy"]
    refused = _run(args, DJANGO_SETTINGS_MODULE="soundstudio.settings.test")
    assert refused.returncode != 0
    assert "soundstudio.E001" in refused.stderr

    allowed = _run(
        args, DJANGO_SETTINGS_MODULE="soundstudio.settings.test", STRIPE_TEST_MODE="true"
    )
    assert allowed.returncode == 0, allowed.stderr


def test_deploy_check_as_ci_runs_it_passes_with_the_explicit_switch():
    result = _run(
        ["manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        DJANGO_SETTINGS_MODULE="soundstudio.settings.production",
        STRIPE_TEST_MODE="true",
    )
    assert result.returncode == 0, result.stderr


def test_deploy_check_function(settings):
    from core.checks import stripe_test_mode_requested

    settings.STRIPE_SECRET_KEY = ""
    settings.STRIPE_TEST_MODE = True
    settings.STRIPE_TEST_MODE_REQUESTED = False
    [error] = stripe_test_mode_requested(app_configs=None)
    assert isinstance(error, Error)
    assert error.id == "soundstudio.E001"

    settings.STRIPE_TEST_MODE_REQUESTED = True
    assert stripe_test_mode_requested(app_configs=None) == []

    settings.STRIPE_TEST_MODE_REQUESTED = False
    settings.STRIPE_SECRET_KEY = "sk_live_dummy"
    settings.STRIPE_TEST_MODE = False
    assert stripe_test_mode_requested(app_configs=None) == []


def test_deploy_check_is_not_run_by_a_plain_check():
    assert (
        _run(["manage.py", "check"], DJANGO_SETTINGS_MODULE="soundstudio.settings.test").returncode
        == 0
    )


# --- 3. An allowance use given back after its month closed is not lost ---------------


def _at(monkeypatch, moment):
    from subscriptions import selectors as sub_selectors
    from subscriptions import services as sub_services

    monkeypatch.setattr(sub_services, "_now", lambda: moment)
    monkeypatch.setattr(sub_selectors, "_now", lambda: moment)


@pytest.mark.django_db
def test_allowance_given_back_after_its_month_closed_becomes_a_free_credit(user, monkeypatch):
    from books.models import JournalTransaction
    from credits.models import CreditLot, EntryKind, LedgerEntry
    from credits.selectors import balance
    from subscriptions.models import AllowancePeriod, Subscription
    from tracks import services as track_services
    from tracks.models import TrackStatus

    Subscription.objects.create(
        user=user, stripe_subscription_id="sub_x", status="active", terms_version="t"
    )
    _at(monkeypatch, dt.datetime(2027, 1, 31, 23, 59, tzinfo=dt.UTC))
    track = track_services.request_generation(
        creator=user, title="Late", prompt="p", genre="pop", mood="happy", duration_seconds=2
    )
    assert track.charge_kind == "allowance"
    journal_before = JournalTransaction.objects.count()

    _at(monkeypatch, dt.datetime(2027, 2, 1, 0, 1, tzinfo=dt.UTC))
    track = track_services.fail_generation(track_id=track.pk, error="boom")
    track_services.fail_generation(track_id=track.pk, error="again")  # once only

    assert track.status == TrackStatus.FAILED and track.charge_returned_at
    january = AllowancePeriod.objects.get(user=user, month=dt.date(2027, 1, 1))
    assert january.used == 1  # a closed month is never reopened
    assert not AllowancePeriod.objects.filter(user=user, month=dt.date(2027, 2, 1), used__gt=0)
    assert balance(user) == 6  # the gift and one credit instead of the lost use
    lot = CreditLot.objects.get(user=user, source="refund")
    assert (lot.amount, lot.cost_cents, lot.expires_at) == (1, 0, None)
    entry = LedgerEntry.objects.get(user=user, kind=EntryKind.REFUND)
    assert "January 2027" in entry.memo and "credit" in entry.memo
    assert JournalTransaction.objects.count() == journal_before  # free: nothing posted


@pytest.mark.django_db
def test_allowance_given_back_in_its_own_month_goes_back_to_the_month(user, monkeypatch):
    from credits.models import LedgerEntry
    from subscriptions.models import AllowancePeriod, Subscription
    from tracks import services as track_services

    Subscription.objects.create(
        user=user, stripe_subscription_id="sub_y", status="active", terms_version="t"
    )
    _at(monkeypatch, dt.datetime(2027, 1, 31, 23, 0, tzinfo=dt.UTC))
    track = track_services.request_generation(
        creator=user, title="Early", prompt="p", genre="pop", mood="happy", duration_seconds=2
    )
    _at(monkeypatch, dt.datetime(2027, 1, 31, 23, 59, tzinfo=dt.UTC))
    track_services.fail_generation(track_id=track.pk, error="boom")

    assert AllowancePeriod.objects.get(user=user, month=dt.date(2027, 1, 1)).used == 0
    assert LedgerEntry.objects.filter(user=user).count() == 1  # the gift only


# --- 5. One payment's error never stops the reconciliation sweep ---------------------


@pytest.mark.django_db
def test_one_payments_error_does_not_stop_the_settle_sweep(user, settings, monkeypatch, caplog):
    """Three payments paid at Stripe whose webhooks were lost; settling the middle one
    breaks. The others still settle, and the error is logged with its payment."""
    import logging

    from django.utils import timezone

    from credits.models import CreditPackage
    from payments import services, testmode
    from payments.models import Payment, PaymentStatus, TestModeIntent
    from tests.factories import UserFactory

    settings.CREDITS_REQUIRE_SUBSCRIPTION = False
    settings.STRIPE_SECRET_KEY = ""
    starter = CreditPackage.objects.get(slug="starter")
    payments = []
    for buyer in (user, UserFactory(), UserFactory()):
        payment, intent = services.start_package_purchase(user=buyer, package=starter)
        testmode.confirm(intent["id"], "4242424242424242")  # its event never arrives
        moment = timezone.now() - dt.timedelta(minutes=15)
        Payment.objects.filter(pk=payment.pk).update(created_at=moment)
        TestModeIntent.objects.filter(pk=intent["id"]).update(created=moment)
        payments.append(payment)
    broken = payments[1]
    real = services.complete_from_intent

    def complete(intent, **kwargs):
        if intent["id"] == broken.stripe_payment_intent_id:
            raise RuntimeError("boom")
        return real(intent, **kwargs)

    monkeypatch.setattr(services, "complete_from_intent", complete)
    with caplog.at_level(logging.ERROR, logger="payments.services"):
        report = services.reconcile()

    statuses = [Payment.objects.get(pk=p.pk).status for p in payments]
    assert statuses == [PaymentStatus.SUCCEEDED, PaymentStatus.PENDING, PaymentStatus.SUCCEEDED]
    assert f"payment {broken.pk}: error (RuntimeError: boom)" in report
    [record] = [r for r in caplog.records if r.getMessage() == "reconciliation failed"]
    assert record.payment_id == broken.pk and record.exc_info


# --- 6. Package expiry 0, a stale admin form, the catalog after a delete -------------


@pytest.mark.django_db
def test_a_package_expiring_after_zero_days_is_refused():
    from django.core.exceptions import ValidationError
    from django.db import IntegrityError, transaction

    from credits.models import CreditPackage

    package = CreditPackage(slug="zero", name="Zero", credits=1, price_cents=100)
    package.expires_after_days = 0
    with pytest.raises(ValidationError) as caught:
        package.full_clean()
    assert "expires_after_days" in caught.value.message_dict
    with pytest.raises(IntegrityError), transaction.atomic():
        package.save()
    package.expires_after_days = None  # empty: never
    package.full_clean()
    package.save()


@pytest.mark.django_db
def test_the_admin_package_form_says_zero_days_is_not_allowed(admin_client):
    from credits.models import CreditPackage

    starter = CreditPackage.objects.get(slug="starter")
    response = admin_client.post(
        f"/admin/credits/creditpackage/{starter.pk}/change/",
        {
            "slug": "starter",
            "name": "Starter",
            "credits": 30,
            "price_cents": 1999,
            "expires_after_days": 0,
            "is_purchasable": "on",
            "sort_order": 1,
        },
    )
    assert response.status_code == 200
    assert "expires_after_days" in response.context["adminform"].form.errors
    starter.refresh_from_db()
    assert starter.expires_after_days == 30


@pytest.mark.django_db
def test_the_migration_keeps_what_zero_meant_for_existing_packages():
    """Existing rows with 0 sold never-expiring credits: the migration makes them
    empty ("never") before the constraint refuses 0. (The DDL is rolled back with the
    test's transaction.)"""
    import importlib

    from django.apps import apps
    from django.db import connection

    from credits.models import CreditPackage

    migration = importlib.import_module("credits.migrations.0006_package_expiry_days_positive")
    with connection.cursor() as cursor:
        cursor.execute(
            "ALTER TABLE credits_package DROP CONSTRAINT credits_package_expiry_days_positive"
        )
    CreditPackage.objects.filter(slug="starter").update(expires_after_days=0)

    migration.zero_days_means_never(apps, None)

    assert CreditPackage.objects.get(slug="starter").expires_after_days is None
    assert CreditPackage.objects.get(slug="pro").expires_after_days == 30


def _adjust(client, user, amount, request_id):
    from django.urls import reverse

    return client.post(
        reverse("admin:credits_wallet_adjust"),
        {"user": user.pk, "amount": amount, "reason": "ticket 7", "request_id": request_id},
    )


@pytest.mark.django_db
@pytest.mark.parametrize(("first", "again"), [(3, 3), (-2, -2), (3, -2), (-2, 3)])
def test_an_old_adjust_form_resubmitted_for_another_user_changes_nothing(
    admin_client, user, other_user, first, again
):
    import uuid

    from credits.models import LedgerEntry
    from credits.selectors import balance

    request_id = str(uuid.uuid4())
    assert _adjust(admin_client, user, first, request_id).status_code == 302
    entries = LedgerEntry.objects.count()

    response = _adjust(admin_client, other_user, again, request_id)

    assert response.status_code == 200
    assert "already used" in str(response.context["form"].non_field_errors())
    assert LedgerEntry.objects.count() == entries
    assert balance(other_user) == 5 and balance(user) == 5 + first


@pytest.mark.django_db
@pytest.mark.parametrize(("first", "again"), [(3, 4), (-2, -1), (3, -2), (-2, 3)])
def test_an_old_adjust_form_resubmitted_with_another_amount_changes_nothing(
    admin_client, user, first, again
):
    import uuid

    from credits.models import LedgerEntry
    from credits.selectors import balance

    request_id = str(uuid.uuid4())
    assert _adjust(admin_client, user, first, request_id).status_code == 302
    entries = LedgerEntry.objects.count()

    response = _adjust(admin_client, user, again, request_id)

    assert response.status_code == 200
    assert "already used" in str(response.context["form"].non_field_errors())
    assert LedgerEntry.objects.count() == entries
    assert balance(user) == 5 + first


@pytest.mark.django_db(transaction=True)
def test_the_artist_page_version_commits_with_the_delete(monkeypatch, tmp_path):
    """The new version is written in the delete's own transaction: while it is open,
    another process still sees the old version (and the track); once it commits, the
    new version and the deletion arrive together, so the page never lists the track
    under the new version nor keeps it under the old."""
    from django.conf import settings as django_settings
    from django.db import connection
    from django.test import Client

    from tests.factories import UserFactory
    from tests.threads import run_threads
    from tracks import catalog
    from tracks import services as track_services
    from tracks.models import Track
    from tracks.tasks import generate_track

    monkeypatch.setattr(django_settings, "MEDIA_ROOT", tmp_path)
    artist = UserFactory()
    track = track_services.request_generation(
        creator=artist, title="Gone", prompt="p", genre="pop", mood="happy", duration_seconds=2
    )
    generate_track.apply(args=[track.pk])
    track.refresh_from_db()
    track_services.publish(track=track, published=True)
    page = f"/artists/{artist.slug}/"
    assert "Gone" in Client().get(page).content.decode()
    before, track_id = catalog.current_version(artist.slug), track.pk
    seen = []
    real_changed = catalog.changed

    def changed(*slugs):
        real_changed(*slugs)
        assert connection.in_atomic_block

        def elsewhere():  # another connection, as another web process
            return catalog.current_version(artist.slug), Track.objects.filter(pk=track_id).exists()

        ((result, error),) = run_threads([elsewhere])
        assert error is None, error
        seen.append(result)

    monkeypatch.setattr(catalog, "changed", changed)
    track_services.delete_track(track=track)

    assert seen == [(before, True)]
    assert catalog.current_version(artist.slug) != before
    assert "Gone" not in Client().get(page).content.decode()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("amounts", [(3, 3), (3, -2), (-2, -2)])
def test_one_old_adjust_form_sent_for_two_users_at_once_applies_once(amounts):
    """Two staff send the same old form for two users at the same moment: they lock
    different wallets, so neither sees the other's entry; one applies, the other gets
    the clear refusal (never an IntegrityError, a 500 in admin)."""
    import uuid

    from accounts.models import User
    from credits import services
    from credits.exceptions import IdempotencyConflict
    from credits.models import LedgerEntry
    from credits.selectors import balance
    from tests.factories import UserFactory
    from tests.threads import run_threads

    staff = UserFactory()
    User.objects.filter(pk=staff.pk).update(is_staff=True)
    staff = User.objects.get(pk=staff.pk)
    first, second = UserFactory(), UserFactory()
    key = f"adjust:{uuid.uuid4()}"

    def adjust(user, amount):
        return lambda: services.adjust(
            user=user, amount=amount, staff_user=staff, reason="race", idempotency_key=key
        )

    outcomes = run_threads([adjust(first, amounts[0]), adjust(second, amounts[1])])

    errors = [exc for _, exc in outcomes if exc is not None]
    assert len(errors) == 1 and isinstance(errors[0], IdempotencyConflict), outcomes
    assert LedgerEntry.objects.filter(idempotency_key=key).count() == 1
    changed = [u for u, a in zip((first, second), amounts, strict=True) if balance(u) == 5 + a]
    assert len(changed) == 1
