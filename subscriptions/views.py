from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from payments import testmode
from payments.gateway import GatewayError, get_gateway
from payments.models import TestModeCheckout
from subscriptions import selectors, services
from subscriptions.exceptions import AlreadySubscribed


@require_http_methods(["GET", "POST"])
def subscribe(request):
    subscription = (
        selectors.current_subscription(request.user) if request.user.is_authenticated else None
    )
    if request.method == "POST":
        if not request.user.is_authenticated:
            return redirect(f"{reverse('login')}?next={reverse('subscribe')}")
        try:
            session = services.start_checkout(
                user=request.user,
                success_url=request.build_absolute_uri(reverse("account_subscription"))
                + "?welcome=1",
                cancel_url=request.build_absolute_uri(reverse("subscribe")) + "?canceled=1",
            )
        except AlreadySubscribed as exc:
            messages.info(request, _already_subscribed_message(exc.subscription))
            return redirect("account_subscription")
        except GatewayError:
            messages.error(request, "We could not reach the payment provider. Please try again.")
            return redirect("subscribe")
        return redirect(session["url"])
    return render(
        request,
        "subscriptions/subscribe.html",
        {"subscription": subscription, "canceled": request.GET.get("canceled") == "1"},
    )


def _already_subscribed_message(subscription) -> str:
    if subscription.gives_benefits:
        return "You already have Essential."
    return (
        f"Your Essential subscription is {subscription.get_status_display().lower()}: "
        "update your payment details instead of subscribing again, so you are not billed twice."
    )


@login_required
@require_http_methods(["GET", "POST"])
def test_checkout(request, session_id: str):
    """Test mode's stand-in for Stripe Checkout (subscription mode)."""
    if not get_gateway().test_mode:
        raise Http404
    checkout = TestModeCheckout.objects.filter(
        pk=session_id, metadata__user_id=str(request.user.pk)
    ).first()
    if checkout is None:
        raise Http404
    error = ""
    if request.method == "POST":
        try:
            testmode.complete_checkout(session_id, request.POST.get("card_number", ""))
        except ValueError as exc:
            error = str(exc)
        else:
            return redirect(f"{reverse('account_subscription')}?welcome=1")
    return render(
        request,
        "subscriptions/test_checkout.html",
        {"checkout": checkout, "cards": testmode.CARDS, "error": error},
    )


# Back from checkout, the page reloads every 2 s until the webhook has recorded the
# subscription; after this many tries (about a minute) it stops and says so.
CONFIRM_TRIES = 30


@login_required
def account(request):
    subscription = selectors.current_subscription(request.user)
    welcome = request.GET.get("welcome", "")
    tries = int(welcome) if welcome.isdigit() else 0
    portal_url = None
    if subscription and subscription.stripe_customer_id and not get_gateway().test_mode:
        try:
            portal_url = get_gateway().portal_url(
                customer_id=subscription.stripe_customer_id,
                return_url=request.build_absolute_uri(),
            )
        except GatewayError:
            portal_url = None
    return render(
        request,
        "subscriptions/account.html",
        {
            "subscription": subscription,
            "allowance_used": selectors.allowance_used(request.user),
            "allowance_remaining": selectors.allowance_remaining(request.user),
            "portal_url": portal_url,
            # Confirming: the only thing the page shows, not "free plan" beside it.
            "confirming": bool(tries) and not subscription,
            "confirm_gave_up": tries >= CONFIRM_TRIES,
            "next_try": tries + 1,
            "welcome": bool(tries) and subscription is not None and subscription.gives_benefits,
        },
    )


@login_required
@require_POST
def cancel(request):
    return _set_cancel(request, cancel=True)


@login_required
@require_POST
def resume(request):
    return _set_cancel(request, cancel=False)


def _set_cancel(request, *, cancel: bool):
    subscription = selectors.current_subscription(request.user)
    if subscription is None or not subscription.gives_benefits:
        messages.error(request, "You have no active subscription to change.")
        return redirect("account_subscription")
    try:
        services.set_cancel_at_period_end(subscription=subscription, cancel=cancel)
    except GatewayError as exc:
        messages.error(request, f"Stripe did not accept the change: {exc}")
    else:
        if cancel:
            messages.success(
                request,
                "Essential will end on "
                f"{subscription.current_period_end:%-d %B %Y}. You keep it until then.",
            )
        else:
            messages.success(request, "Welcome back: Essential will renew as usual.")
    return redirect("account_subscription")
