from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from core.api import api_login_required
from credits import selectors
from subscriptions.selectors import allowance_remaining, has_active_subscription

HISTORY_PAGE_SIZE = 25


@login_required
@require_GET
def credits_page(request):
    history = Paginator(selectors.history(request.user), HISTORY_PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    return render(
        request,
        "credits/credits.html",
        {
            "balance": selectors.balance(request.user),
            "allowance_remaining": allowance_remaining(request.user),
            "lots": selectors.live_lots(request.user),
            "history": history,
            "packages": selectors.purchasable_packages(),
            "subscription_required": settings.CREDITS_REQUIRE_SUBSCRIPTION
            and not has_active_subscription(request.user),
            "stripe_publishable_key": settings.STRIPE_PUBLISHABLE_KEY,
        },
    )


@api_login_required
@require_GET
def balance_api(request):
    lots = [
        {
            "id": lot.pk,
            "amount": lot.amount,
            "remaining": lot.remaining,
            "source": lot.source,
            "expires_at": lot.expires_at.isoformat() if lot.expires_at else None,
            "created_at": lot.created_at.isoformat(),
        }
        for lot in selectors.live_lots(request.user)
    ]
    return JsonResponse(
        {
            "balance": selectors.balance(request.user),
            "allowance_remaining": allowance_remaining(request.user),
            "lots": lots,
        }
    )
