import datetime as dt

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import JsonResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from core.api import api_error, api_login_required
from credits import charts, pricing, reasons, selectors
from subscriptions.selectors import allowance_remaining, has_active_subscription

HISTORY_PAGE_SIZE = 25
HISTORY_API_DEFAULT_LIMIT = 25
HISTORY_API_MAX_LIMIT = 100


def _now() -> dt.datetime:
    return timezone.now()


@login_required
@require_GET
def credits_page(request):
    show = request.GET.get("show", "")
    if show not in selectors.HISTORY_FILTERS:
        show = ""
    history = Paginator(selectors.history(request.user, show=show), HISTORY_PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    history.object_list = reasons.describe(list(history.object_list))
    now = _now()
    lots = selectors.live_lots(request.user).select_related("package")
    subscribed = has_active_subscription(request.user)
    return render(
        request,
        "credits/credits.html",
        {
            "balance": selectors.balance(request.user),
            "subscribed": subscribed,
            "allowance_remaining": allowance_remaining(request.user),
            "allowance_resets_at": selectors.next_month_start(now),
            "lots": lots,
            "history": history,
            "show": show,
            "filters": [(key, label) for key, (label, _) in selectors.HISTORY_FILTERS.items()],
            "chart": charts.credits_used_chart(selectors.spent_by_month(request.user)),
            "packages": selectors.purchasable_packages(),
            "subscription_required": settings.CREDITS_REQUIRE_SUBSCRIPTION and not subscribed,
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


def _entry_json(entry) -> dict:
    return {
        "id": entry.pk,
        "kind": entry.kind,
        "amount": entry.amount,
        "balance_before": entry.balance_before,
        "balance_after": entry.balance_after,
        "reason": entry.human_reason,
        "memo": entry.memo,
        "created_at": entry.created_at.isoformat(),
    }


class BadParameter(ValueError):
    def __init__(self, name: str, message: str):
        super().__init__(f"{name}: {message}")
        self.name = name


def _int_param(request, name: str, *, default: int, low: int, high: int | None) -> int:
    raw = request.GET.get(name)
    if raw is None or raw == "":
        return default
    span = f"from {low} to {high}" if high is not None else f"of {low} or more"
    try:
        value = int(raw)
    except ValueError:
        raise BadParameter(name, f"must be a whole number {span}.") from None
    if value < low or (high is not None and value > high):
        raise BadParameter(name, f"must be a whole number {span}.")
    return value


@api_login_required
@require_GET
def history_api(request):
    try:
        limit = _int_param(
            request, "limit", default=HISTORY_API_DEFAULT_LIMIT, low=1, high=HISTORY_API_MAX_LIMIT
        )
        offset = _int_param(request, "offset", default=0, low=0, high=None)
    except BadParameter as exc:
        return api_error("invalid", str(exc), field=exc.name)
    entries = selectors.history(request.user)
    page = reasons.describe(list(entries[offset : offset + limit]))
    return JsonResponse({"entries": [_entry_json(e) for e in page], "total": entries.count()})


@api_login_required
@require_GET
def stats_api(request):
    user = request.user
    last = selectors.history(user).first()
    return JsonResponse(
        {
            "balance": selectors.balance(user),
            "total_spent": selectors.credits_spent(user),
            "spent_this_month": selectors.credits_spent(user, since=selectors.month_start(_now())),
            "allowance_remaining": allowance_remaining(user),
            "expiring_soon": [
                {"credits": lot.remaining, "expires_at": lot.expires_at.isoformat()}
                for lot in selectors.expiring_soon(user)
            ],
            "last_entry": _entry_json(reasons.describe([last])[0]) if last else None,
        }
    )


@require_GET
def costs_api(request):
    return JsonResponse(
        {"costs": pricing.costs(), "credit_price_cents": pricing.CREDIT_PRICE_CENTS}
    )
