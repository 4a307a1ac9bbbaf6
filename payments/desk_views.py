"""The reconciliation desk in Django admin (/admin/reconciliation/): thin views over
payments.reconciliation (reads) and the desk actions in payments.services."""

from __future__ import annotations

import datetime as dt

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods

from books import money
from payments import reconciliation, services
from payments.gateway import GatewayError
from payments.models import Payment, StaffAction

PERMISSION = "payments.use_reconciliation_desk"
ACTION_SERVICES = {
    "settle": services.settle_from_stripe,
    "replay": services.replay_payment_events,
    "refund": services.refund_from_desk,
    "cancel": services.cancel_from_desk,
}


class PeriodForm(forms.Form):
    start = forms.DateField(label="From", required=False, widget=forms.DateInput({"type": "date"}))
    end = forms.DateField(label="To", required=False, widget=forms.DateInput({"type": "date"}))
    flag = forms.ChoiceField(
        required=False,
        choices=[("", "All payments")] + [(c, f.label) for c, f in reconciliation.FLAGS.items()],
    )

    def period(self) -> tuple[dt.datetime, dt.datetime]:
        """[start, end) in UTC: the chosen days, by default this month so far."""
        today = timezone.now().astimezone(dt.UTC).date()
        data = self.cleaned_data if self.is_valid() else {}
        first = data.get("start") or today.replace(day=1)
        last = data.get("end") or today
        if last < first:
            first, last = last, first
        return (
            dt.datetime.combine(first, dt.time(), tzinfo=dt.UTC),
            dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC),
        )


class ActionForm(forms.Form):
    reason = forms.CharField(
        widget=forms.Textarea({"rows": 3, "cols": 60}),
        help_text="Recorded with the action and your name.",
    )
    amount = forms.DecimalField(
        required=False,
        min_value=0.01,
        decimal_places=2,
        label="Amount ($)",
        help_text="Refunds only: leave empty to refund everything not refunded yet.",
    )


def _check(request) -> None:
    if not request.user.has_perm(PERMISSION):
        raise PermissionDenied("The reconciliation desk needs its own permission.")


def _desk(request):
    today = timezone.now().astimezone(dt.UTC).date()
    form = PeriodForm({"start": today.replace(day=1), "end": today, **request.GET.dict()})
    start, end = form.period()
    return form, reconciliation.desk(start=start, end=end)


@require_GET
def reconciliation_view(request):
    _check(request)
    form, desk = _desk(request)
    flag = form.cleaned_data.get("flag") if form.is_valid() else ""
    context = {
        **admin.site.each_context(request),
        "title": "Reconciliation",
        "form": form,
        "desk": desk,
        "rows": desk.flagged(flag),
        "flag": flag,
        "flags": reconciliation.FLAGS,
        "counts": desk.counts,
        "action_labels": reconciliation.ACTIONS,
        "query": request.GET.urlencode(),
        "recent_actions": StaffAction.objects.select_related("staff_user", "payment")[:20],
        "money": money,
    }
    return TemplateResponse(request, "admin/payments/reconciliation.html", context)


@require_GET
def reconciliation_csv(request):
    _check(request)
    form, desk = _desk(request)
    response = HttpResponse(reconciliation.to_csv(desk.rows), content_type="text/csv")
    name = f"reconciliation-{desk.start:%Y%m%d}-{desk.end - dt.timedelta(days=1):%Y%m%d}.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


@require_http_methods(["GET", "POST"])
def action_view(request, payment_id: int, action: str):
    """Every desk action: a confirmation page with a reason, then the service."""
    _check(request)
    if action not in ACTION_SERVICES:
        raise PermissionDenied("Unknown action.")
    payment = get_object_or_404(Payment.objects.select_related("user", "package"), pk=payment_id)
    form = ActionForm(request.POST if request.method == "POST" else None)
    back = reverse("admin_reconciliation") + (
        f"?{request.GET['back']}" if request.GET.get("back") else ""
    )
    if request.method == "POST" and form.is_valid():
        kwargs = {}
        if action == "refund" and form.cleaned_data.get("amount"):
            kwargs["amount_cents"] = int(form.cleaned_data["amount"] * 100)
        try:
            done = ACTION_SERVICES[action](
                payment=payment,
                staff_user=request.user,
                reason=form.cleaned_data["reason"],
                **kwargs,
            )
        except (GatewayError, services.InvalidTransition, ValueError) as exc:
            messages.error(request, f"Payment {payment.pk}: {exc}")
        else:
            messages.success(request, f"Payment {payment.pk}: {done.outcome}")
        return redirect(back)
    context = {
        **admin.site.each_context(request),
        "title": f"{reconciliation.ACTIONS[action]}: payment {payment.pk}",
        "payment": payment,
        "action": action,
        "action_label": reconciliation.ACTIONS[action],
        "form": form,
        "back": back,
        "left_display": money.display(payment.amount_cents - payment.refunded_cents),
    }
    return TemplateResponse(request, "admin/payments/desk_action.html", context)
