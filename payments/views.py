from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from core.api import api_error, api_login_required
from credits.models import CreditPackage
from credits.selectors import balance
from payments import selectors, services, testmode
from payments.gateway import GatewayError, get_gateway
from payments.models import PaymentStatus, TestModeIntent
from payments.purposes import fulfilment_for


@api_login_required
@require_POST
def purchase_package_api(request, slug: str):
    package = CreditPackage.objects.filter(slug=slug, is_purchasable=True).first()
    if package is None:
        return api_error("not_found", "No such credit package.", status=404)
    try:
        payment, intent = services.start_package_purchase(user=request.user, package=package)
    except services.SubscriptionRequired as exc:
        return api_error("subscription_required", str(exc), status=403, subscribe_url="/subscribe/")
    except GatewayError:
        return api_error(
            "payment_provider_unavailable",
            "We could not reach the payment provider. Nothing was charged; please try again.",
            status=502,
        )
    return JsonResponse(
        {
            "status": "requires_payment",
            "payment_intent_id": intent["id"],
            "client_secret": intent.get("client_secret"),
            "amount_cents": payment.amount_cents,
            "checkout_url": get_gateway().checkout_url(intent),
        }
    )


@api_login_required
@require_GET
def payment_status_api(request, intent_id: str):
    payment = selectors.payment_for_user(request.user, intent_id)
    if payment is None:
        return api_error("not_found", "No such payment.", status=404)
    return JsonResponse(
        {
            "payment_intent_id": intent_id,
            "status": payment.status,
            "message": payment.failure_message,
            "credits_added": payment.lot.amount if payment.lot_id else 0,
            "balance": balance(request.user),
        }
    )


@login_required
@require_http_methods(["GET", "POST"])
def test_checkout(request, intent_id: str):
    """Test mode's stand-in for Stripe's payment form."""
    if not get_gateway().test_mode:
        raise Http404
    payment = selectors.payment_for_user(request.user, intent_id)
    if payment is None:
        raise Http404
    intent = get_object_or_404(TestModeIntent, pk=intent_id)
    fulfilment = fulfilment_for(payment.purpose)
    error = ""
    if request.method == "POST":
        try:
            intent = testmode.confirm(intent_id, request.POST.get("card_number", ""))
        except ValueError as exc:
            error = str(exc)
        else:
            if intent.status == "succeeded":
                return redirect(fulfilment.after_payment_url(payment))
            error = (intent.last_error or {}).get("message", "The payment failed.")
    return render(
        request,
        "payments/test_checkout.html",
        {
            "payment": payment,
            "intent": intent,
            "cards": testmode.CARDS,
            "error": error,
            "already_paid": payment.status == PaymentStatus.SUCCEEDED,
            "canceled": payment.status == PaymentStatus.CANCELED,
            # What is being paid for, and where "done" and "cancel" lead, by purpose.
            "summary": fulfilment.checkout_summary(payment),
            "done_url": fulfilment.after_payment_url(payment),
            "cancel_url": fulfilment.cancel_url(payment),
        },
    )


@login_required
@require_POST
def test_checkout_cancel(request, intent_id: str):
    """ "Cancel" on the test card page: the PaymentIntent is canceled, so it can never be
    charged, and the buyer is told so on the page they return to."""
    if not get_gateway().test_mode:
        raise Http404
    payment = selectors.payment_for_user(request.user, intent_id)
    if payment is None:
        raise Http404
    fulfilment = fulfilment_for(payment.purpose)
    if payment.status in (PaymentStatus.PENDING, PaymentStatus.FAILED):
        try:
            payment = services.cancel_intent(payment=payment, cause_ref=f"buyer:{request.user.pk}")
        except GatewayError:
            messages.error(request, "We could not cancel the payment. Please try again.")
            return redirect("test_checkout", intent_id=intent_id)
    if payment.status == PaymentStatus.CANCELED:
        messages.info(request, "Payment canceled. You were not charged.")
        return redirect(fulfilment.cancel_url(payment))
    messages.info(request, "This payment had already gone through.")
    return redirect(fulfilment.after_payment_url(payment))
