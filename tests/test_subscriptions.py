import datetime as dt
import threading
import time

import pytest
from django.db import connection
from django.utils import timezone

from credits.exceptions import InsufficientCredits
from credits.selectors import balance
from credits.services import spend
from payments.models import TestModeSubscription
from subscriptions import selectors, services
from subscriptions.models import AllowancePeriod, Subscription, SubscriptionStatus
from tests import stripe_events
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def stripe_copy(user, *, status="active", start=None, sub_id="sub_1"):
    """Stripe's own record of the subscription (the test gateway keeps it in the DB)."""
    start = start or timezone.now()
    sub, _ = TestModeSubscription.objects.update_or_create(
        id=sub_id,
        defaults={
            "customer": "cus_1",
            "status": status,
            "metadata": {"user_id": str(user.pk)},
            "current_period_start": start,
            "current_period_end": start + dt.timedelta(days=30),
        },
    )
    return sub


def sub_event(event_type, sub, *, created, **changes):
    from payments.testmode import subscription_object

    obj = {**subscription_object(sub), **changes}
    payload = stripe_events.event(event_type, obj)
    payload["created"] = created
    return payload


def invoice_event(event_type, sub, *, created, billing_reason="subscription_cycle"):
    from payments.testmode import invoice_object

    payload = stripe_events.event(
        event_type,
        invoice_object(sub, billing_reason=billing_reason, paid=event_type == "invoice.paid"),
    )
    payload["created"] = created
    return payload


def deliver_twice(client, payload):
    assert stripe_events.deliver(client, payload).status_code == 200
    assert stripe_events.deliver(client, payload).status_code == 200


def subscribe(user, client, *, created=None):
    sub = stripe_copy(user)
    created = created or int(time.time())
    deliver_twice(client, sub_event("customer.subscription.created", sub, created=created))
    return sub


def state(user):
    s = Subscription.objects.get(user=user)
    return s.status, s.cancel_at_period_end


def test_whole_lifecycle_by_events_each_twice_and_out_of_order(client, user):
    t0 = int(time.time())
    sub = stripe_copy(user)
    checkout = stripe_events.event(
        "checkout.session.completed",
        {
            "id": "cs_1",
            "object": "checkout.session",
            "mode": "subscription",
            "subscription": "sub_1",
            "customer": "cus_1",
            "metadata": {"user_id": str(user.pk)},
        },
    )
    checkout["created"] = t0
    deliver_twice(client, checkout)
    assert state(user) == ("active", False)
    assert selectors.has_active_subscription(user)
    deliver_twice(client, sub_event("customer.subscription.created", sub, created=t0))
    assert state(user) == ("active", False)

    # Payment fails: Stripe moves the subscription to past_due and tells us by invoice.
    sub.status = "past_due"
    sub.save()
    deliver_twice(client, invoice_event("invoice.payment_failed", sub, created=t0 + 10))
    assert state(user) == ("past_due", False)
    assert not selectors.has_active_subscription(user)
    assert selectors.allowance_remaining(user) == 0

    # An old "active" update arriving late must not undo past_due.
    stale = sub_event("customer.subscription.updated", sub, created=t0 + 5, status="active")
    deliver_twice(client, stale)
    assert state(user) == ("past_due", False)

    sub.status = "active"
    sub.save()
    deliver_twice(client, invoice_event("invoice.paid", sub, created=t0 + 20))
    assert state(user) == ("active", False)

    sub.cancel_at_period_end = True
    sub.save()
    deliver_twice(client, sub_event("customer.subscription.updated", sub, created=t0 + 30))
    assert state(user) == ("active", True)
    assert selectors.has_active_subscription(user)  # still active until the period ends

    sub.status = "canceled"
    sub.save()
    deliver_twice(client, sub_event("customer.subscription.deleted", sub, created=t0 + 40))
    assert state(user) == ("canceled", True)
    assert not selectors.has_active_subscription(user)

    # Late deliveries of earlier events change nothing any more.
    deliver_twice(client, invoice_event("invoice.paid", sub, created=t0 + 20))
    deliver_twice(
        client, sub_event("customer.subscription.updated", sub, created=t0 + 30, status="active")
    )
    assert state(user) == ("canceled", True)


def test_updated_before_created_keeps_the_newer_state(client, user):
    t0 = int(time.time())
    sub = stripe_copy(user)
    sub.cancel_at_period_end = True
    sub.save()
    stripe_events.deliver(client, sub_event("customer.subscription.updated", sub, created=t0 + 5))
    stripe_events.deliver(
        client,
        sub_event(
            "customer.subscription.created",
            sub,
            created=t0,
            status="incomplete",
            cancel_at_period_end=False,
        ),
    )
    assert state(user) == ("active", True)


def test_equal_timestamps_ask_stripe(client, user):
    t0 = int(time.time())
    sub = stripe_copy(user, status="past_due")
    stripe_events.deliver(client, sub_event("customer.subscription.updated", sub, created=t0))
    # Same second, payload claims active, but Stripe's copy says past_due.
    stripe_events.deliver(
        client, sub_event("customer.subscription.updated", sub, created=t0, status="active")
    )
    assert state(user) == ("past_due", False)


def test_packages_need_a_subscription_then_work_with_one(client, user, settings):
    settings.CREDITS_REQUIRE_SUBSCRIPTION = True
    client.force_login(user)
    assert client.post("/api/credits/packages/starter/purchase").status_code == 403
    page = client.get("/credits/").content.decode()
    assert 'href="/subscribe/"' in page

    subscribe(user, client)

    response = client.post("/api/credits/packages/starter/purchase")
    assert response.status_code == 200
    assert response.json()["status"] == "requires_payment"


def test_mid_month_subscriber_gets_all_five(client, user, time_machine):
    time_machine.move_to(dt.datetime(2026, 3, 20, 15, 0, tzinfo=dt.UTC), tick=False)
    services.open_month()  # the 1st's job ran before they joined
    subscribe(user, client)

    assert selectors.allowance_remaining(user) == 5
    charges = [services.charge_generation(user=user, idempotency_key=f"g{i}") for i in range(5)]
    assert [c.kind for c in charges] == ["allowance"] * 5
    assert services.charge_generation(user=user, idempotency_key="g5").kind == "credits"
    assert balance(user) == 4


def test_reset_across_month_boundary_twice_and_late(client, user, time_machine):
    time_machine.move_to(dt.datetime(2026, 1, 31, 23, 59, tzinfo=dt.UTC), tick=False)
    subscribe(user, client)
    for i in range(5):
        services.charge_generation(user=user, idempotency_key=f"jan{i}")
    assert selectors.allowance_remaining(user) == 0

    time_machine.move_to(dt.datetime(2026, 2, 1, 0, 0, tzinfo=dt.UTC), tick=False)
    assert selectors.allowance_remaining(user) == 5  # no roll-over, full new month
    assert services.open_month() == 1
    assert services.open_month() == 0  # twice: nothing more
    assert AllowancePeriod.objects.filter(user=user).count() == 2
    jan = AllowancePeriod.objects.get(user=user, month=dt.date(2026, 1, 1))
    assert jan.used == 5  # January's record is kept, untouched

    time_machine.move_to(dt.datetime(2026, 3, 1, 6, 0, tzinfo=dt.UTC), tick=False)
    services.charge_generation(user=user, idempotency_key="mar0")  # before the late job
    assert services.open_month() == 0  # the late job leaves the used period alone
    assert AllowancePeriod.objects.get(user=user, month=dt.date(2026, 3, 1)).used == 1


def test_proration_invoice_does_not_reset_the_allowance(client, user):
    sub = subscribe(user, client)
    for i in range(3):
        services.charge_generation(user=user, idempotency_key=f"p{i}")

    for reason in ("subscription_update", "subscription_cycle"):
        payload = invoice_event(
            "invoice.paid", sub, created=int(time.time()) + 1, billing_reason=reason
        )
        assert stripe_events.deliver(client, payload).status_code == 200

    assert selectors.allowance_remaining(user) == 2


def test_give_back_returns_allowance_or_credit_exactly_once(client, user):
    subscribe(user, client)
    allowance = services.charge_generation(user=user, idempotency_key="a")
    assert selectors.allowance_remaining(user) == 4
    assert services.give_back_generation(charge=allowance) is True
    assert services.give_back_generation(charge=allowance) is False
    assert selectors.allowance_remaining(user) == 5

    for i in range(5):
        services.charge_generation(user=user, idempotency_key=f"b{i}")
    paid = services.charge_generation(user=user, idempotency_key="c")
    assert paid.kind == "credits" and balance(user) == 4
    assert services.give_back_generation(charge=paid) is True
    assert services.give_back_generation(charge=paid) is False
    assert balance(user) == 5


def test_same_key_charges_once(client, user):
    subscribe(user, client)
    first = services.charge_generation(user=user, idempotency_key="k")
    again = services.charge_generation(user=user, idempotency_key="k")
    assert first == again
    assert selectors.allowance_remaining(user) == 4


def test_without_subscription_generation_costs_a_credit_and_then_refuses(user):
    for i in range(5):
        assert services.charge_generation(user=user, idempotency_key=f"n{i}").kind == "credits"
    with pytest.raises(InsufficientCredits):
        services.charge_generation(user=user, idempotency_key="n5")


def run_together(n, fn):
    barrier = threading.Barrier(n)
    results = []

    def worker(i):
        try:
            barrier.wait()
            results.append(fn(i))
        except Exception as exc:  # collected and asserted by the caller
            results.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not any(thread.is_alive() for thread in threads)
    return results


@pytest.mark.django_db(transaction=True)
def test_ten_concurrent_charges_with_five_allowance_and_three_credits():
    from django.test import Client

    user = UserFactory()
    spend(user=user, amount=2, reason="setup", idempotency_key="setup")  # 3 credits left
    subscribe(user, Client())

    results = run_together(
        10, lambda i: services.charge_generation(user=user, idempotency_key=f"c{i}")
    )

    kinds = sorted(r.kind if not isinstance(r, Exception) else type(r).__name__ for r in results)
    assert kinds == ["InsufficientCredits"] * 2 + ["allowance"] * 5 + ["credits"] * 3
    assert selectors.allowance_remaining(user) == 0
    assert balance(user) == 0


@pytest.mark.django_db(transaction=True)
def test_monthly_reset_run_concurrently_opens_each_period_once():
    from django.test import Client

    users = [UserFactory() for _ in range(5)]
    for n, user in enumerate(users):
        sub = stripe_copy(user, sub_id=f"sub_{n}")
        stripe_events.deliver(
            Client(), sub_event("customer.subscription.created", sub, created=int(time.time()))
        )
    month = dt.date(2027, 1, 1)

    opened = run_together(4, lambda i: services.open_month(month=month))

    assert sum(opened) == 5
    assert AllowancePeriod.objects.filter(month=month).count() == 5
    assert Subscription.objects.filter(status=SubscriptionStatus.ACTIVE).count() == 5
