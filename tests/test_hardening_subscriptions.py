"""Hardening (issue 12): one live Essential subscription per user, never two bills."""

import time

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from payments.models import TestModeCheckout, TestModeSubscription
from payments.testmode import subscription_object
from subscriptions import services
from subscriptions.exceptions import AlreadySubscribed
from subscriptions.models import LIVE_STATUSES, Subscription, SubscriptionStatus
from tests.factories import UserFactory
from tests.threads import run_threads

URLS = {"success_url": "http://testserver/ok", "cancel_url": "http://testserver/no"}


def hold(user, status, sub_id="sub_1") -> Subscription:
    return Subscription.objects.create(
        user=user, stripe_subscription_id=sub_id, status=status, terms_version="t"
    )


def stripe_copy(user, sub_id: str, status="active") -> dict:
    now = timezone.now()
    sub = TestModeSubscription.objects.create(
        id=sub_id,
        customer=f"cus_{sub_id}",
        status=status,
        metadata={"user_id": str(user.pk)},
        current_period_start=now,
        current_period_end=now + timezone.timedelta(days=30),
    )
    return subscription_object(sub)


@pytest.mark.django_db
@pytest.mark.parametrize("status", LIVE_STATUSES)
def test_no_second_checkout_while_a_subscription_is_live(user, status):
    hold(user, status)

    with pytest.raises(AlreadySubscribed):
        services.start_checkout(user=user, **URLS)

    assert not TestModeCheckout.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "status", [SubscriptionStatus.CANCELED, SubscriptionStatus.INCOMPLETE_EXPIRED]
)
def test_an_ended_subscription_does_not_stop_subscribing_again(user, status):
    hold(user, status)

    session = services.start_checkout(user=user, **URLS)

    assert session["url"]


@pytest.mark.django_db
def test_a_past_due_user_gets_a_clear_message_and_no_checkout(client, user):
    hold(user, SubscriptionStatus.PAST_DUE)
    client.force_login(user)

    response = client.post("/subscribe/", follow=True)

    assert not TestModeCheckout.objects.exists()
    assert "past due" in response.content.decode().lower()


@pytest.mark.django_db
def test_postgres_refuses_two_live_subscriptions(user):
    hold(user, SubscriptionStatus.PAST_DUE)
    hold(user, SubscriptionStatus.CANCELED, "sub_old")  # ended ones are any number
    with pytest.raises(IntegrityError), transaction.atomic():
        hold(user, SubscriptionStatus.ACTIVE, "sub_2")


@pytest.mark.django_db(transaction=True)
def test_two_subscriptions_arriving_concurrently_leave_one_live_the_other_canceled():
    """Two checkouts completed side by side: Stripe made two subscriptions. We keep
    one, cancel the other at Stripe at once, and store it canceled."""
    user = UserFactory()
    objs = [stripe_copy(user, f"sub_{i}") for i in range(2)]
    version = int(time.time())

    outcomes = run_threads(
        [lambda obj=obj: services.apply_stripe_subscription(obj, version=version) for obj in objs]
    )

    assert [exc for _, exc in outcomes] == [None, None]
    rows = Subscription.objects.filter(user=user)
    assert rows.count() == 2
    assert rows.filter(status__in=LIVE_STATUSES).count() == 1
    [duplicate] = rows.exclude(status__in=LIVE_STATUSES)
    assert duplicate.status == SubscriptionStatus.CANCELED
    assert TestModeSubscription.objects.get(pk=duplicate.stripe_subscription_id).status == (
        "canceled"
    )
    live = rows.get(status__in=LIVE_STATUSES)
    assert TestModeSubscription.objects.get(pk=live.stripe_subscription_id).status == "active"


@pytest.mark.django_db(transaction=True)
def test_concurrent_subscribe_attempts_open_one_checkout():
    user = UserFactory()

    outcomes = run_threads([lambda: services.start_checkout(user=user, **URLS)] * 4)

    assert [exc for _, exc in outcomes] == [None] * 4
    assert len({session["id"] for session, _ in outcomes}) == 1
    assert TestModeCheckout.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_one_subscription_delivered_concurrently_is_stored_once_and_never_canceled():
    user = UserFactory()
    obj = stripe_copy(user, "sub_once")
    version = int(time.time())

    outcomes = run_threads([lambda: services.apply_stripe_subscription(obj, version=version)] * 4)

    assert [exc for _, exc in outcomes] == [None] * 4
    assert list(Subscription.objects.values_list("status", flat=True)) == ["active"]
    assert TestModeSubscription.objects.get(pk="sub_once").status == "active"
