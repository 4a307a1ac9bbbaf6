"""What each kind of e-mail says: `build(notice)` gives its subject, templates and
context, or None when there is nothing left to tell (a lot spent before its
expiry notice went out). One builder per kind, found through BUILDERS."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from django.urls import reverse
from django.utils import timezone

from core.mail import absolute
from credits.models import EntryKind, LedgerEntry
from notices.models import Notice, NoticeKind


@dataclass(frozen=True)
class Message:
    subject: str
    template: str  # templates/<template>.txt and .html
    context: dict


def _now() -> dt.datetime:
    return timezone.now()


def dollars(cents: int) -> str:
    return f"${cents / 100:,.2f}"


def _credits(n: int) -> str:
    return f"{n} credit{'' if n == 1 else 's'}"


def _links() -> dict:
    return {
        "credits_url": absolute(reverse("credits")),
        "subscription_url": absolute(reverse("account_subscription")),
        "subscribe_url": absolute(reverse("subscribe")),
    }


def package_receipt(notice: Notice) -> Message:
    payment = notice.payment
    lot = payment.lot
    package = payment.package
    return Message(
        subject=f"Your receipt: {package.name} package, {_credits(package.credits)}",
        template="emails/package_receipt",
        context={
            "payment": payment,
            "package": package,
            "amount": dollars(payment.amount_cents),
            "credits": lot.amount if lot else package.credits,
            "expires_at": lot.expires_at if lot else None,
            "paid_at": payment.completed_at or payment.created_at,
            **_links(),
        },
    )


def essential_receipt(notice: Notice) -> Message:
    from subscriptions.selectors import current_subscription

    payment = notice.payment
    return Message(
        subject=f"Your receipt: Essential, {dollars(payment.amount_cents)}",
        template="emails/essential_receipt",
        context={
            "payment": payment,
            "amount": dollars(payment.amount_cents),
            "paid_at": payment.completed_at or payment.created_at,
            "subscription": current_subscription(notice.user),
            **_links(),
        },
    )


def credits_expiring(notice: Notice) -> Message | None:
    lot = notice.lot
    if lot.remaining <= 0 or lot.expires_at is None or lot.expires_at <= _now():
        return None  # spent, voided or expired before we wrote: nothing to warn of
    when = f"{lot.expires_at:%-d %B}"
    return Message(
        subject=f"{_credits(lot.remaining)} expire on {when}",
        template="emails/credits_expiring",
        context={"lot": lot, "credits": _credits(lot.remaining), **_links()},
    )


def credits_expired(notice: Notice) -> Message | None:
    first = notice.ledger_entry
    entries = LedgerEntry.objects.filter(
        user_id=first.user_id, kind=EntryKind.EXPIRE, created_at=first.created_at
    )
    expired = -sum(entry.amount for entry in entries)
    if expired <= 0:
        return None
    return Message(
        subject=f"{_credits(expired)} expired",
        template="emails/credits_expired",
        context={
            "credits": _credits(expired),
            "expired_at": first.created_at,
            "balance": min(entry.balance_after for entry in entries),
            **_links(),
        },
    )


def essential_renewed(notice: Notice) -> Message:
    return Message(
        subject="Essential renewed: 5 generations every month",
        template="emails/essential_renewed",
        context={"subscription": notice.subscription, **_links()},
    )


def essential_renewal_failed(notice: Notice) -> Message:
    return Message(
        subject="We could not renew your Essential subscription",
        template="emails/essential_renewal_failed",
        context={"subscription": notice.subscription, **_links()},
    )


def essential_ended(notice: Notice) -> Message:
    return Message(
        subject="Your Essential subscription has ended",
        template="emails/essential_ended",
        context={"subscription": notice.subscription, **_links()},
    )


BUILDERS: dict[str, Callable[[Notice], Message | None]] = {
    NoticeKind.PACKAGE_RECEIPT: package_receipt,
    NoticeKind.ESSENTIAL_RECEIPT: essential_receipt,
    NoticeKind.CREDITS_EXPIRING: credits_expiring,
    NoticeKind.CREDITS_EXPIRED: credits_expired,
    NoticeKind.ESSENTIAL_RENEWED: essential_renewed,
    NoticeKind.ESSENTIAL_RENEWAL_FAILED: essential_renewal_failed,
    NoticeKind.ESSENTIAL_ENDED: essential_ended,
}


def build(notice: Notice) -> Message | None:
    return BUILDERS[notice.kind](notice)
