import datetime as dt

import pytest
from django.core.management import call_command
from django.utils import timezone

from credits.models import CreditPackage
from credits.selectors import balance
from payments import testmode
from payments.models import Payment, PaymentStatus, StaffAction, TestModeIntent
from payments.services import start_package_purchase
from tests import stripe_events
from webhooks.models import EventStatus, WebhookEvent

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _test_mode(settings):
    settings.CREDITS_REQUIRE_SUBSCRIPTION = False
    settings.STRIPE_SECRET_KEY = ""


def paid_payment(user, django_capture_on_commit_callbacks):
    payment, intent = start_package_purchase(
        user=user, package=CreditPackage.objects.get(slug="starter")
    )
    with django_capture_on_commit_callbacks(execute=False):  # no Celery delivery
        testmode.confirm(intent["id"], "4242424242424242")
    return payment


def test_reconcile_command_completes_a_payment_whose_event_was_lost(
    user, capsys, time_machine, django_capture_on_commit_callbacks
):
    payment = paid_payment(user, django_capture_on_commit_callbacks)
    assert balance(user) == 5

    time_machine.move_to(timezone.now() + dt.timedelta(minutes=11))
    call_command("reconcile_stripe")

    out = capsys.readouterr().out
    assert f"payment {payment.pk}: completed" in out
    assert balance(user) == 35
    call_command("reconcile_stripe")
    assert "0 payment(s)" in capsys.readouterr().out
    assert balance(user) == 35


def test_reconcile_marks_a_declined_payment_failed(
    user, time_machine, django_capture_on_commit_callbacks
):
    payment, intent = start_package_purchase(
        user=user, package=CreditPackage.objects.get(slug="starter")
    )
    with django_capture_on_commit_callbacks(execute=False):
        testmode.confirm(intent["id"], "4000000000000002")

    time_machine.move_to(timezone.now() + dt.timedelta(minutes=11))
    call_command("reconcile_stripe")

    payment.refresh_from_db()
    assert payment.status == PaymentStatus.FAILED
    assert "declined" in payment.failure_message


def test_admin_refund_action_refunds_and_shows_shortfall(
    admin_client, user, django_capture_on_commit_callbacks
):
    payment = paid_payment(user, django_capture_on_commit_callbacks)
    call_command("reconcile_stripe")  # not due yet: nothing happens
    from payments.services import complete_from_intent

    complete_from_intent(testmode.intent_object(TestModeIntent.objects.get()), cause_ref="test")
    from credits.services import spend

    spend(user=user, amount=3, reason="test", idempotency_key="before-refund")

    with django_capture_on_commit_callbacks(execute=False):
        confirm = admin_client.post(
            "/admin/payments/payment/",
            {"action": "refund_through_stripe", "_selected_action": [payment.pk]},
        )
        payment.refresh_from_db()
        assert payment.status == PaymentStatus.SUCCEEDED  # nothing runs before confirming
        assert "cannot be undone" in confirm.content.decode()
        no_reason = admin_client.post(
            "/admin/payments/payment/",
            {"action": "refund_through_stripe", "_selected_action": [payment.pk], "post": "yes"},
        )
        payment.refresh_from_db()
        assert payment.status == PaymentStatus.SUCCEEDED
        assert "Give a reason" in no_reason.content.decode()
        response = admin_client.post(
            "/admin/payments/payment/",
            {
                "action": "refund_through_stripe",
                "_selected_action": [payment.pk],
                "post": "yes",
                "reason": "Customer asked by e-mail",
            },
            follow=True,
        )

    assert "3 credit(s) were already used" in response.content.decode()
    action = StaffAction.objects.get()
    assert (action.action, action.reason, action.payment_id) == (
        "refund",
        "Customer asked by e-mail",
        payment.pk,
    )
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.REFUNDED
    assert payment.refund_shortfall_credits == 3
    assert balance(user) == 5


def test_admin_finds_payments_by_intent_id_and_email(admin_client, user):
    payment, intent = start_package_purchase(
        user=user, package=CreditPackage.objects.get(slug="starter")
    )
    by_id = admin_client.get("/admin/payments/payment/", {"q": intent["id"]})
    by_email = admin_client.get("/admin/payments/payment/", {"q": user.email})

    assert list(by_id.context["cl"].result_list) == [payment]
    assert list(by_email.context["cl"].result_list) == [payment]


def test_admin_replay_applies_a_failed_event(admin_client, client, user, monkeypatch):
    from payments import services

    real = services.set_status
    monkeypatch.setattr(services, "set_status", lambda *a, **k: 1 / 0)
    payload = stripe_events.event("payment_intent.succeeded", stripe_events.intent(user=user))
    assert stripe_events.deliver(client, payload).status_code == 500
    monkeypatch.setattr(services, "set_status", real)
    event = WebhookEvent.objects.get()

    admin_client.post(
        "/admin/webhooks/webhookevent/",
        {"action": "replay", "_selected_action": [event.pk]},
    )
    event.refresh_from_db()
    assert event.status == EventStatus.FAILED  # the confirmation page only
    admin_client.post(
        "/admin/webhooks/webhookevent/",
        {
            "action": "replay",
            "_selected_action": [event.pk],
            "post": "yes",
            "reason": "Fixed the handler",
        },
    )

    event.refresh_from_db()
    assert event.status == EventStatus.PROCESSED
    assert balance(user) == 35
    Payment.objects.get(status=PaymentStatus.SUCCEEDED)
