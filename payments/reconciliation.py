"""Reads of the reconciliation desk: every payment of a period beside Stripe's copy.

Stripe's side comes from two list calls for the whole period (PaymentIntents and
charges, 100 per request), our side from three queries (payments, their books, the
failed webhook events), whatever the number of rows. Each row is flagged by the
rules of DESIGN.md, "The admin desk"; each flag has the one action that resolves it.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass, field

from django.db import connection
from django.urls import reverse
from django.utils import timezone

from payments.gateway import GatewayError, fee_of, get_gateway
from payments.models import Payment, PaymentFlag, PaymentStatus, Purpose
from payments.services import PAID_STATUSES
from webhooks.models import EventStatus, WebhookEvent
from webhooks.services import MAX_ATTEMPTS

STALE_AFTER = dt.timedelta(hours=24)
# Stripe objects are made a moment after our row: fetch a little around the period.
STRIPE_WINDOW_MARGIN = dt.timedelta(days=1)


@dataclass(frozen=True)
class Flag:
    code: str
    label: str
    action: str  # the action that resolves it
    help: str


FLAGS = {
    flag.code: flag
    for flag in [
        Flag(
            "paid_not_fulfilled",
            "Paid at Stripe, not fulfilled",
            "settle",
            "Stripe took the money but nothing was delivered here (a lost webhook).",
        ),
        Flag(
            "fulfilled_not_paid",
            "Fulfilled, not paid",
            "settle",
            "We delivered, but Stripe does not show the payment as succeeded.",
        ),
        Flag(
            "refunded_not_here",
            "Refunded at Stripe, not here",
            "settle",
            "Stripe refunded more than we applied: credits or access not yet revoked.",
        ),
        Flag(
            "amount_mismatch",
            "Amount mismatch",
            "refund",
            "Stripe's amount or currency differs from ours; it was not fulfilled.",
        ),
        Flag(
            "stale_pending",
            "Pending over 24 hours",
            "cancel",
            "An abandoned checkout: cancel the PaymentIntent so it can never be paid.",
        ),
        Flag(
            "events_failed",
            "Events failed past their last retry",
            "replay",
            "Stripe's events about it failed every retry; replay them once fixed.",
        ),
    ]
}

ACTIONS = {
    "settle": "Settle from Stripe",
    "replay": "Replay its events",
    "refund": "Refund",
    "cancel": "Cancel the intent",
}


@dataclass
class Row:
    payment: Payment
    stripe_status: str | None = None
    stripe_amount: int | None = None
    stripe_currency: str = ""
    stripe_refunded: int | None = None
    stripe_fee: int | None = None
    fulfilled: bool = False  # the books hold its money-in posting
    books_cash: int = 0  # net cash the books hold for it
    failed_events: list[int] = field(default_factory=list)
    flags: list[Flag] = field(default_factory=list)

    @property
    def actions(self) -> list[str]:
        return list(dict.fromkeys(flag.action for flag in self.flags))

    @property
    def fulfilment_link(self) -> tuple[str, str]:
        payment = self.payment
        if payment.lot_id:
            return (
                f"Lot {payment.lot_id}",
                reverse("admin:credits_creditlot_change", args=[payment.lot_id]),
            )
        if payment.purpose == Purpose.ESSENTIAL:
            url = reverse("admin:subscriptions_subscription_changelist")
            return ("Subscription", f"{url}?user__id__exact={payment.user_id}")
        if payment.purpose == Purpose.TRACK_PURCHASE:
            try:
                url = reverse("admin:purchases_purchase_changelist")
            except Exception:  # noqa: BLE001 - the purchases admin may not be installed
                return ("", "")
            return ("Purchase", f"{url}?payment__id__exact={payment.pk}")
        return ("", "")


@dataclass
class Desk:
    start: dt.datetime
    end: dt.datetime
    rows: list[Row]
    stripe_error: str = ""

    @property
    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(FLAGS, 0)
        for row in self.rows:
            for flag in row.flags:
                counts[flag.code] += 1
        return counts

    def flagged(self, code: str | None) -> list[Row]:
        if not code:
            return self.rows
        return [row for row in self.rows if any(flag.code == code for flag in row.flags)]


def _now() -> dt.datetime:
    return timezone.now()


def _stripe_side(start: dt.datetime, end: dt.datetime) -> tuple[dict, dict]:
    gateway = get_gateway()
    window = {
        "created_gte": int((start - STRIPE_WINDOW_MARGIN).timestamp()),
        "created_lt": int((end + STRIPE_WINDOW_MARGIN).timestamp()),
    }
    intents = {i["id"]: i for i in gateway.list_payment_intents(**window)}
    charges = {}
    for charge in gateway.list_charges(**window):
        intent_id = charge.get("payment_intent")
        if isinstance(intent_id, dict):
            intent_id = intent_id.get("id")
        if intent_id:
            charges[intent_id] = charge
    return intents, charges


_BOOKS_SQL = """
SELECT t.payment_id,
       bool_or(starts_with(t.idempotency_key, 'books:paid:')),
       COALESCE(SUM(l.amount_cents) FILTER (WHERE a.key = 'cash'), 0)
FROM books_journal_transaction t
JOIN payments_payment p ON p.id = t.payment_id
JOIN books_journal_line l ON l.transaction_id = t.id
JOIN books_account a ON a.id = l.account_id
WHERE p.created_at >= %s AND p.created_at < %s
GROUP BY t.payment_id
"""


def _failed_events() -> dict[str, list[int]]:
    """Events that failed past their last retry, by the PaymentIntent they concern."""
    by_intent: dict[str, list[int]] = {}
    for pk, payload in WebhookEvent.objects.filter(
        status=EventStatus.FAILED, attempts__gte=MAX_ATTEMPTS
    ).values_list("pk", "payload"):
        obj = (payload.get("data") or {}).get("object") or {}
        intent_id = obj.get("payment_intent") if obj.get("object") != "payment_intent" else None
        intent_id = intent_id or obj.get("id")
        if isinstance(intent_id, str):
            by_intent.setdefault(intent_id, []).append(pk)
    return by_intent


def desk(*, start: dt.datetime, end: dt.datetime, now: dt.datetime | None = None) -> Desk:
    """Every payment created in [start, end), beside Stripe's copy, flagged."""
    now = now or _now()
    payments = list(
        Payment.objects.filter(created_at__gte=start, created_at__lt=end)
        .select_related("user", "package")
        .order_by("created_at", "id")
    )
    stripe_error = ""
    try:
        intents, charges = _stripe_side(start, end)
    except GatewayError as exc:
        intents, charges, stripe_error = {}, {}, str(exc)
    with connection.cursor() as cursor:
        cursor.execute(_BOOKS_SQL, [start, end])
        books = {pk: (paid, cash) for pk, paid, cash in cursor.fetchall()}
    failed = _failed_events()
    rows = []
    for payment in payments:
        row = Row(payment=payment)
        row.fulfilled, row.books_cash = books.get(payment.pk, (False, 0))
        intent_id = payment.stripe_payment_intent_id
        intent = intents.get(intent_id) if intent_id else None
        charge = charges.get(intent_id) if intent_id else None
        if intent is not None:
            row.stripe_status = intent.get("status")
            row.stripe_amount = intent.get("amount")
            row.stripe_currency = intent.get("currency", "")
        if charge is not None:
            row.stripe_refunded = charge.get("amount_refunded") or 0
            row.stripe_fee = fee_of(charge)
        row.failed_events = failed.get(intent_id, []) if intent_id else []
        if not stripe_error:
            row.flags = _flags(row, now=now)
        rows.append(row)
    return Desk(start=start, end=end, rows=rows, stripe_error=stripe_error)


def _flags(row: Row, *, now: dt.datetime) -> list[Flag]:
    payment = row.payment
    codes = []
    if payment.stripe_payment_intent_id:  # Essential invoices have no intent of ours
        succeeded = row.stripe_status == "succeeded"
        mismatch = payment.flag == PaymentFlag.AMOUNT_MISMATCH or (
            row.stripe_amount is not None
            and (
                row.stripe_amount != payment.amount_cents
                or row.stripe_currency.lower() != payment.currency.lower()
            )
        )
        if succeeded and not row.fulfilled and not mismatch:
            codes.append("paid_not_fulfilled")
        if (row.fulfilled or payment.status in PAID_STATUSES) and not succeeded:
            codes.append("fulfilled_not_paid")
        if (row.stripe_refunded or 0) > payment.refunded_cents and not mismatch:
            codes.append("refunded_not_here")
        if mismatch and succeeded and (row.stripe_refunded or 0) < (row.stripe_amount or 0):
            codes.append("amount_mismatch")
    if payment.status == PaymentStatus.PENDING and payment.created_at <= now - STALE_AFTER:
        codes.append("stale_pending")
    if row.failed_events:
        codes.append("events_failed")
    return [FLAGS[code] for code in codes]


CSV_COLUMNS = [
    "payment_id",
    "created_at",
    "user",
    "purpose",
    "status",
    "amount_cents",
    "currency",
    "refunded_cents",
    "fee_cents",
    "payment_intent",
    "stripe_status",
    "stripe_amount_cents",
    "stripe_refunded_cents",
    "stripe_fee_cents",
    "fulfilled",
    "books_cash_cents",
    "flags",
]


def to_csv(rows: list[Row]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        p = row.payment
        writer.writerow(
            [
                p.pk,
                p.created_at.isoformat(),
                p.user.email,
                p.purpose,
                p.status,
                p.amount_cents,
                p.currency,
                p.refunded_cents,
                "" if p.fee_cents is None else p.fee_cents,
                p.stripe_payment_intent_id or p.stripe_invoice_id or "",
                row.stripe_status or "",
                "" if row.stripe_amount is None else row.stripe_amount,
                "" if row.stripe_refunded is None else row.stripe_refunded,
                "" if row.stripe_fee is None else row.stripe_fee,
                "yes" if row.fulfilled else "no",
                row.books_cash,
                " ".join(flag.code for flag in row.flags),
            ]
        )
    return out.getvalue()
