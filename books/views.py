"""The revenue page in Django admin (/admin/revenue/): thin over books.revenue."""

from __future__ import annotations

import datetime as dt

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse
from django.utils import timezone
from django.views.decorators.http import require_GET

from books import charts, revenue, selectors
from books.models import AccountCode
from payments.models import Purpose
from purchases.selectors import top_tracks

PERMISSION = "payments.view_revenue"


@require_GET
def revenue_view(request):
    if not request.user.has_perm(PERMISSION):
        raise PermissionDenied("The revenue report needs its own permission.")
    try:
        chosen = dt.date.fromisoformat(request.GET.get("month", "") + "-01")
    except ValueError:
        chosen = timezone.now().astimezone(dt.UTC).date()
    months = revenue.months(last=revenue.month_start(chosen))
    month = months[-1]
    accounts = selectors.account_balances(start=month.start, end=month.end)
    active, mrr = revenue.subscribers_now()
    context = {
        **admin.site.each_context(request),
        "title": f"Revenue: {month.start:%B %Y}",
        "months": months,
        "card_in": [
            (Purpose(purpose).label if purpose in Purpose.values else purpose, cents)
            for purpose, cents in month.card_in.items()
        ],
        "month": month,
        "accounts": [(AccountCode(code).label, code, cents) for code, cents in accounts.items()],
        "revenue_accounts": [
            (AccountCode(code).label, month.revenue.get(code, 0))
            for code in revenue.REVENUE_ACCOUNTS
        ],
        "chart": charts.revenue_chart(months),
        "top_tracks": top_tracks(start=month.start, end=month.end),
        "active_subscribers": active,
        "mrr": mrr,
        "previous": f"{revenue.add_months(month.start, -1):%Y-%m}",
        "next": f"{month.end:%Y-%m}" if month.end <= timezone.now() else "",
    }
    return TemplateResponse(request, "admin/books/revenue.html", context)
