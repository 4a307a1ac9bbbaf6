"""The user's own data as CSV, streamed: the credit ledger, track purchases, payments.

Rows are read in chunks (a long history never sits in memory) and written as they
are read. The ledger's `reason` is the same human reason the credits page shows.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Iterator

from django.apps import apps

from credits import reasons, selectors

CHUNK = 500


class _Echo:
    """A file-like object whose write() returns the line, for csv.writer to stream."""

    def write(self, value: str) -> str:
        return value


def _chunks(queryset) -> Iterator[list]:
    """Keyset pagination on (created_at, id) descending: no OFFSET scans."""
    size = CHUNK
    batch = list(queryset[:size])
    while batch:
        yield batch
        last = batch[-1]
        batch = list(
            queryset.filter(created_at__lte=last.created_at).exclude(
                created_at=last.created_at, id__gte=last.id
            )[:size]
        )


def _iso(moment) -> str:
    return moment.isoformat() if moment else ""


def _dollars(cents) -> str:
    return "" if cents is None else f"{cents / 100:.2f}"


def ledger_rows(user) -> Iterable[list]:
    yield [
        "id",
        "date",
        "kind",
        "reason",
        "amount",
        "balance_before",
        "balance_after",
        "memo",
    ]
    for batch in _chunks(selectors.history(user)):
        for entry in reasons.describe(batch):
            yield [
                entry.pk,
                _iso(entry.created_at),
                entry.kind,
                entry.human_reason,
                entry.amount,
                entry.balance_before,
                entry.balance_after,
                entry.memo,
            ]


def purchase_rows(user) -> Iterable[list]:
    purchase_model = apps.get_model("purchases", "Purchase")
    yield [
        "id",
        "date",
        "track",
        "artist",
        "status",
        "paid_with",
        "price_credits",
        "card_amount_usd",
        "card_fee_usd",
        "artist_earnings_usd",
        "refunded_usd",
        "completed",
        "refunded",
    ]
    queryset = (
        purchase_model.objects.filter(fan_id=user.pk)
        .select_related("track__creator")
        .order_by("-created_at", "-id")
    )
    for batch in _chunks(queryset):
        for p in batch:
            yield [
                p.pk,
                _iso(p.created_at),
                p.track.title,
                p.track.creator.display_name,
                p.status,
                p.payment_method,
                p.price_credits,
                _dollars(p.amount_cents) if p.payment_method == "card" else "",
                _dollars(p.card_fee_cents),
                _dollars(p.artist_earnings_cents),
                _dollars(p.refunded_cents),
                _iso(p.completed_at),
                _iso(p.refunded_at),
            ]


def payment_rows(user) -> Iterable[list]:
    payment_model = apps.get_model("payments", "Payment")
    yield [
        "id",
        "date",
        "for",
        "package",
        "amount_usd",
        "currency",
        "status",
        "card_fee_usd",
        "refunded_usd",
        "completed",
    ]
    queryset = (
        payment_model.objects.filter(user_id=user.pk)
        .select_related("package")
        .order_by("-created_at", "-id")
    )
    for batch in _chunks(queryset):
        for p in batch:
            yield [
                p.pk,
                _iso(p.created_at),
                p.get_purpose_display(),
                p.package.name if p.package_id else "",
                _dollars(p.amount_cents),
                p.currency,
                p.status,
                _dollars(p.fee_cents),
                _dollars(p.refunded_cents),
                _iso(p.completed_at),
            ]


EXPORTS: dict[str, Callable[[object], Iterable[list]]] = {
    "ledger": ledger_rows,
    "purchases": purchase_rows,
    "payments": payment_rows,
}


def stream(kind: str, user) -> Iterator[str]:
    """The CSV lines of one export."""
    writer = csv.writer(_Echo())
    for row in EXPORTS[kind](user):
        yield writer.writerow(row)
