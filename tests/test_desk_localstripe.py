"""The reconciliation desk with the real stripe SDK, against a live localstripe.

No webhook of ours is registered with localstripe here, so a payment confirmed at
Stripe is one "whose webhook never came"; localstripe never sends refund events at
all, so a refund made with the SDK is one "made at Stripe, not here".
"""

import datetime as dt

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.utils import timezone

from accounts.models import User
from books.models import JournalTransaction
from credits.models import CreditLot
from credits.selectors import balance
from payments.gateway import get_gateway
from payments.models import Payment, PaymentStatus, Refund, StaffAction
from payments.services import complete_from_intent
from tests.factories import UserFactory
from tests.test_desk import desk_rows

pytestmark = [pytest.mark.slow, pytest.mark.django_db]

DESK = "/admin/reconciliation/"


@pytest.fixture
def stripe_app(localstripe_settings):
    """The app on the real SDK against localstripe, with no webhook of ours."""
    localstripe_settings.CREDITS_REQUIRE_SUBSCRIPTION = False
    assert get_gateway().test_mode is False
    return localstripe_settings


@pytest.fixture
def staff(db):
    staff = UserFactory()
    User.objects.filter(pk=staff.pk).update(is_staff=True)
    staff.user_permissions.add(
        Permission.objects.get(
            content_type__app_label="payments", codename="use_reconciliation_desk"
        )
    )
    return User.objects.get(pk=staff.pk)


@pytest.fixture
def desk(staff):
    client = Client()
    client.force_login(staff)
    return client


def period() -> dict:
    today = timezone.now().astimezone(dt.UTC).date()
    return {"start": (today - dt.timedelta(days=1)).isoformat(), "end": today.isoformat()}


def paid_at_stripe(client, stripe_client, buyer) -> Payment:
    """A Starter package bought through our API and paid with the SDK; no webhook."""
    client.force_login(buyer)
    response = client.post("/api/credits/packages/starter/purchase")
    assert response.status_code == 200, response.content
    intent_id = response.json()["payment_intent_id"]
    stripe_client.v1.payment_intents.update(intent_id, params={"payment_method": "pm_card_visa"})
    assert stripe_client.v1.payment_intents.confirm(intent_id).status == "succeeded"
    payment = Payment.objects.get(stripe_payment_intent_id=intent_id)
    assert payment.status == PaymentStatus.PENDING
    return payment


def fulfilled_then_refunded_at_stripe(client, stripe_client, buyer) -> tuple[Payment, str]:
    payment = paid_at_stripe(client, stripe_client, buyer)
    intent = get_gateway().retrieve_payment_intent(payment.stripe_payment_intent_id)
    complete_from_intent(intent, cause_ref="webhook")
    assert balance(buyer) == 35
    refund = stripe_client.v1.refunds.create(
        params={"payment_intent": payment.stripe_payment_intent_id}
    )
    assert refund.status == "succeeded"
    payment.refresh_from_db()
    assert (payment.status, payment.refunded_cents) == (PaymentStatus.SUCCEEDED, 0)
    return payment, refund.id


def settle(desk, payment, reason="the webhook never came"):
    response = desk.post(f"/admin/reconciliation/payments/{payment.pk}/settle/", {"reason": reason})
    assert response.status_code == 302
    return response


def test_paid_at_stripe_without_its_webhook_is_flagged_paid_not_fulfilled(
    stripe_app, client, stripe_client, desk
):
    payment = paid_at_stripe(client, stripe_client, UserFactory())

    page = desk.get(DESK, period())

    assert "Stripe could not be asked" not in page.content.decode()
    row = desk_rows(page)[payment.pk]
    assert row["flags"] == ["paid_not_fulfilled"]
    assert row["actions"] == ["settle"]


def test_settle_fulfils_a_payment_whose_webhook_never_came_once_when_posted_twice(
    stripe_app, client, stripe_client, desk, staff
):
    buyer = UserFactory()
    payment = paid_at_stripe(client, stripe_client, buyer)

    settle(desk, payment)
    settle(desk, payment, reason="clicked again")

    payment.refresh_from_db()
    assert payment.status == PaymentStatus.SUCCEEDED
    assert CreditLot.objects.filter(user=buyer, source="package").count() == 1
    assert payment.lot.amount == 30
    assert (
        JournalTransaction.objects.filter(
            payment=payment, idempotency_key__startswith="books:paid:"
        ).count()
        == 1
    )
    assert balance(buyer) == 5 + 30
    actions = StaffAction.objects.filter(payment=payment, action="settle", ok=True)
    assert sorted(a.reason for a in actions) == ["clicked again", "the webhook never came"]
    assert {a.staff_user for a in actions} == {staff}


def test_a_refund_made_at_stripe_is_flagged_refunded_not_here(
    stripe_app, client, stripe_client, desk
):
    payment, _ = fulfilled_then_refunded_at_stripe(client, stripe_client, UserFactory())

    page = desk.get(DESK, period())

    assert "Stripe could not be asked" not in page.content.decode()
    row = desk_rows(page)[payment.pk]
    assert row["flags"] == ["refunded_not_here"]
    assert row["actions"] == ["settle"]


def test_settle_applies_a_refund_made_at_stripe(stripe_app, client, stripe_client, desk):
    buyer = UserFactory()
    payment, refund_id = fulfilled_then_refunded_at_stripe(client, stripe_client, buyer)

    settle(desk, payment, reason="refunded in the dashboard")
    settle(desk, payment, reason="again")

    payment.refresh_from_db()
    assert payment.status == PaymentStatus.REFUNDED
    assert payment.refunded_cents == 1999
    assert list(
        Refund.objects.filter(payment=payment).values_list("stripe_refund_id", "amount_cents")
    ) == [(refund_id, 1999)]
    assert balance(buyer) == 5  # the package's 30 unused credits are void
    assert payment.lot.remaining == 0
    assert (
        JournalTransaction.objects.filter(idempotency_key=f"books:refund:{refund_id}").count() == 1
    )
