from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from books.selectors import artist_payable
from core.api import api_error, api_login_required
from payments.gateway import GatewayError, get_gateway
from purchases import receipts, selectors, services
from purchases.models import Purchase

SALES_PAGE_SIZE = 50


def purchase_json(purchase: Purchase) -> dict:
    return {
        "id": purchase.pk,
        "track_id": purchase.track_id,
        "status": purchase.status,
        "payment_method": purchase.payment_method,
        "price_credits": purchase.price_credits,
        "amount_cents": purchase.amount_cents,
        "created_at": purchase.created_at.isoformat(),
        "completed_at": purchase.completed_at.isoformat() if purchase.completed_at else None,
    }


@api_login_required
@require_POST
def purchase_api(request, track_id: int):
    track = selectors.track_to_buy(track_id)
    if track is None:
        return api_error("not_found", "No such track.", status=404)
    try:
        result = services.buy(fan=request.user, track=track)
    except services.PurchaseError as exc:
        extra = {"collection_url": reverse("collection")} if exc.code == "already_owned" else {}
        return api_error(exc.code, exc.message, status=exc.status, **extra)
    except GatewayError:
        return api_error(
            "payment_provider_unavailable",
            "We could not reach the payment provider. Nothing was charged; please try again.",
            status=502,
        )
    except services.InvalidTransition as exc:
        return api_error("try_again", str(exc), status=409)
    purchase = result.purchase
    if result.intent is None:
        return JsonResponse(
            {
                "status": "completed",
                "payment_method": "credits",
                "purchase_id": purchase.pk,
                "balance": result.balance,
            }
        )
    return JsonResponse(
        {
            "status": "requires_payment",
            "payment_method": "card",
            "purchase_id": purchase.pk,
            "payment_intent_id": result.intent["id"],
            "client_secret": result.intent["client_secret"],
            "amount_cents": purchase.amount_cents,
            "checkout_url": get_gateway().checkout_url(result.intent),
        }
    )


@api_login_required
@require_GET
def purchases_api(request):
    return JsonResponse(
        {"purchases": [purchase_json(p) for p in selectors.fan_purchases(request.user)]}
    )


@api_login_required
@require_GET
def purchase_detail_api(request, purchase_id: int):
    """One of the fan's purchases: what the page polls while a card payment confirms."""
    purchase = selectors.fan_purchase(request.user, purchase_id)
    if purchase is None:
        return api_error("not_found", "No such purchase.", status=404)
    return JsonResponse(
        {
            **purchase_json(purchase),
            "track_title": purchase.track.title,
            "flag": purchase.flag,
            "failure_message": purchase.failure_message,
            "receipt_url": reverse("purchase_receipt", kwargs={"purchase_id": purchase.pk}),
        }
    )


@login_required
@require_GET
def collection(request):
    confirming = None
    if (wanted := request.GET.get("purchase", "")).isdigit():
        confirming = selectors.fan_purchase(request.user, int(wanted))
    return render(
        request,
        "purchases/collection.html",
        {"purchases": selectors.collection(request.user), "confirming": confirming},
    )


@login_required
@require_GET
def receipt(request, purchase_id: int):
    purchase = selectors.receipt(request.user, purchase_id)
    if purchase is None:
        raise Http404("No such receipt.")
    return render(request, "purchases/receipt.html", receipts.context(purchase))


@login_required
@require_GET
def studio_sales(request):
    page = Paginator(selectors.sales(request.user), SALES_PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    return render(
        request,
        "purchases/sales.html",
        {"page": page, "owed_cents": artist_payable(request.user)},
    )
