"""State changes of the Essential subscription and its monthly allowance.

Subscription state comes from Stripe only: every webhook handler and every
account action ends in `apply_stripe_subscription`, which refuses to let an older
Stripe state overwrite a newer one and asks Stripe when two are equally new.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from credits import services as credit_services
from credits.exceptions import AlreadyRefunded
from credits.models import Cause, EntryKind, LedgerEntry, LotSource
from credits.pricing import TRACK_GENERATION_CREDITS
from payments.gateway import get_gateway
from subscriptions.exceptions import AlreadySubscribed
from subscriptions.models import (
    BENEFIT_STATUSES,
    LIVE_STATUSES,
    ONE_LIVE_CONSTRAINT,
    AllowanceUse,
    Subscription,
    SubscriptionStatus,
)
from subscriptions.selectors import month_of

logger = logging.getLogger(__name__)
S = SubscriptionStatus

# Stripe's subscription lifecycle; canceled and incomplete_expired are final.
TRANSITIONS: dict[str, set[str]] = {
    S.INCOMPLETE: {S.ACTIVE, S.TRIALING, S.INCOMPLETE_EXPIRED, S.PAST_DUE, S.CANCELED},
    S.TRIALING: {S.ACTIVE, S.PAST_DUE, S.UNPAID, S.PAUSED, S.CANCELED},
    S.ACTIVE: {S.PAST_DUE, S.UNPAID, S.PAUSED, S.CANCELED},
    S.PAST_DUE: {S.ACTIVE, S.UNPAID, S.CANCELED},
    S.UNPAID: {S.ACTIVE, S.PAST_DUE, S.CANCELED},
    S.PAUSED: {S.ACTIVE, S.CANCELED},
    S.CANCELED: set(),
    S.INCOMPLETE_EXPIRED: set(),
}


def _now() -> dt.datetime:
    return timezone.now()


def _ts(value) -> dt.datetime | None:
    return dt.datetime.fromtimestamp(value, tz=dt.UTC) if value else None


def _period(obj: dict) -> tuple[dt.datetime | None, dt.datetime | None]:
    """Current period bounds; newer API versions keep them on the subscription items."""
    start, end = obj.get("current_period_start"), obj.get("current_period_end")
    items = (obj.get("items") or {}).get("data") or []
    if items and not start:
        start, end = items[0].get("current_period_start"), items[0].get("current_period_end")
    return _ts(start), _ts(end)


def can_move(current: str, new: str) -> bool:
    return current == new or new in TRANSITIONS.get(current, set())


# --- Applying Stripe's state --------------------------------------------------------


def apply_stripe_subscription(obj: dict, *, version: int, cause_ref: str = "") -> Subscription:
    """Store a Stripe subscription object unless we already hold a newer state.

    `version` is the Unix time of the state (the event's `created`). An equally new
    state is ambiguous (two events in one second), so Stripe is asked for the truth.
    """
    with transaction.atomic():
        subscription = (
            Subscription.objects.select_for_update()
            .filter(stripe_subscription_id=obj["id"])
            .first()
        )
        if subscription is None:
            user_id = (obj.get("metadata") or {}).get("user_id")
            if not user_id:
                raise ValueError(f"Subscription {obj['id']} carries no user_id metadata")
            try:
                with transaction.atomic():
                    _create(obj, user_id=int(user_id))
            except IntegrityError as exc:
                # Either a concurrent delivery created this one (lock theirs), or the
                # user already has another live subscription: this one would bill twice.
                known = Subscription.objects.filter(stripe_subscription_id=obj["id"]).exists()
                if not known and ONE_LIVE_CONSTRAINT in str(exc):
                    obj = _cancel_second_subscription(obj, user_id=int(user_id))
                    try:
                        with transaction.atomic():
                            _create(obj, user_id=int(user_id))
                    except IntegrityError:
                        pass  # a concurrent delivery stored it canceled; lock theirs
            subscription = Subscription.objects.select_for_update().get(
                stripe_subscription_id=obj["id"]
            )
        elif version < subscription.stripe_version:
            logger.info("stale subscription state ignored", extra={"subscription": obj["id"]})
            return subscription
        elif version == subscription.stripe_version and cause_ref != "stripe-fetch":
            obj = get_gateway().retrieve_subscription(obj["id"])
        _store(subscription, obj, version=version)
    return subscription


def _create(obj: dict, *, user_id: int) -> Subscription:
    """Insert a subscription we have not seen; the constraints refuse a duplicate id or
    a second live subscription of the user."""
    return Subscription.objects.create(
        user_id=user_id,
        stripe_subscription_id=obj["id"],
        stripe_customer_id=obj.get("customer") or "",
        status=obj["status"],
        terms_version=settings.ESSENTIAL_TERMS_VERSION,
        stripe_version=0,
    )


def _cancel_second_subscription(obj: dict, *, user_id: int) -> dict:
    """Cancel at Stripe, at once, a subscription made while the user had a live one
    (two checkouts completed side by side); return its canceled state to store."""
    logger.error(
        "second live subscription canceled",
        extra={"subscription": obj["id"], "user_id": user_id},
    )
    if obj.get("status") in _ENDED:
        return obj
    return get_gateway().cancel_subscription(
        obj["id"], idempotency_key=f"subscription:{obj['id']}:cancel-duplicate"
    )


_ENDED = {S.CANCELED, S.INCOMPLETE_EXPIRED}


def _store(subscription: Subscription, obj: dict, *, version: int) -> None:
    new_status = obj["status"]
    if not can_move(subscription.status, new_status) and subscription.stripe_version:
        logger.warning(
            "subscription transition refused",
            extra={
                "subscription": subscription.stripe_subscription_id,
                "from": subscription.status,
                "to": new_status,
            },
        )
        return
    start, end = _period(obj)
    subscription.status = new_status
    subscription.current_period_start = start or subscription.current_period_start
    subscription.current_period_end = end or subscription.current_period_end
    subscription.cancel_at_period_end = bool(obj.get("cancel_at_period_end"))
    subscription.canceled_at = _ts(obj.get("canceled_at"))
    subscription.stripe_customer_id = obj.get("customer") or subscription.stripe_customer_id
    subscription.stripe_version = max(version, subscription.stripe_version)
    subscription.save(
        update_fields=[
            "status",
            "current_period_start",
            "current_period_end",
            "cancel_at_period_end",
            "canceled_at",
            "stripe_customer_id",
            "stripe_version",
            "updated_at",
        ]
    )


def sync_from_stripe(subscription_id: str, *, version: int) -> Subscription:
    """Fetch a subscription from Stripe and store it (for events that lack its state)."""
    obj = get_gateway().retrieve_subscription(subscription_id)
    return apply_stripe_subscription(obj, version=version, cause_ref="stripe-fetch")


# --- Account actions ---------------------------------------------------------------


def start_checkout(*, user, success_url: str, cancel_url: str) -> dict:
    """Start a Checkout Session in subscription mode; return it (with its `url`).

    Raises AlreadySubscribed while the user has a live subscription (any status but
    canceled and incomplete_expired: a past_due one is still billed). PostgreSQL
    holds the same rule (one live subscription per user) for subscriptions Stripe
    makes anyway.
    """
    live = Subscription.objects.filter(user=user, status__in=LIVE_STATUSES).first()
    if live is not None:
        raise AlreadySubscribed(live)
    return get_gateway().create_subscription_checkout(
        user_id=user.pk,
        email=user.email,
        success_url=success_url,
        cancel_url=cancel_url,
        # One open checkout per user per hour: a double click reuses it.
        idempotency_key=f"subscribe:{user.pk}:{_now():%Y%m%d%H}",
    )


def set_cancel_at_period_end(*, subscription: Subscription, cancel: bool) -> Subscription:
    """Cancel at the period's end (or resume before then) through Stripe."""
    obj = get_gateway().set_cancel_at_period_end(
        subscription.stripe_subscription_id,
        cancel=cancel,
        idempotency_key=f"subscription:{subscription.pk}:cancel:{int(cancel)}:{_now():%Y%m%d%H%M}",
    )
    return apply_stripe_subscription(obj, version=int(_now().timestamp()), cause_ref="stripe-fetch")


# --- The monthly allowance -----------------------------------------------------------


def open_month(*, month: dt.date | None = None) -> int:
    """Open the allowance period of `month` for every subscriber with benefits.

    One statement; idempotent per month (the unique (user, month) pair), so it is
    safe to run late, twice or concurrently. Returns how many periods it opened.
    """
    month = month or month_of(_now())
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO subscriptions_allowanceperiod"
            ' (user_id, month, "limit", used, opened_by, created_at)'
            " SELECT DISTINCT user_id, %s, %s, 0, 'reset', now()"
            " FROM subscriptions_subscription WHERE status = ANY(%s)"
            " ON CONFLICT (user_id, month) DO NOTHING",
            [month, settings.ESSENTIAL_MONTHLY_GENERATIONS, list(BENEFIT_STATUSES)],
        )
        return cursor.rowcount


@dataclass(frozen=True)
class GenerationCharge:
    """What one track generation took: an allowance use or one credit."""

    kind: str  # "allowance" or "credits"
    allowance_use_id: int | None = None
    ledger_entry_id: int | None = None


def charge_generation(*, user, idempotency_key: str) -> GenerationCharge:
    """Take one generation's cost: the allowance first, then 1 credit.

    Raises credits.exceptions.InsufficientCredits when neither can pay. Concurrency-
    safe: the allowance is taken by one conditional UPDATE, so a month can never
    see more than its limit used.
    """
    earlier = AllowanceUse.objects.filter(idempotency_key=idempotency_key).first()
    if earlier is not None:
        return GenerationCharge("allowance", allowance_use_id=earlier.pk)
    paid = LedgerEntry.objects.filter(idempotency_key=idempotency_key).first()
    if paid is not None:
        return GenerationCharge("credits", ledger_entry_id=paid.pk)
    month = month_of(_now())
    if Subscription.objects.filter(user=user, status__in=BENEFIT_STATUSES).exists():
        try:
            with transaction.atomic():
                with connection.cursor() as cursor:
                    # The first use in a month the reset job has not opened yet opens it.
                    cursor.execute(
                        "INSERT INTO subscriptions_allowanceperiod"
                        ' (user_id, month, "limit", used, opened_by, created_at)'
                        " VALUES (%s, %s, %s, 0, 'first_use', now())"
                        " ON CONFLICT (user_id, month) DO NOTHING",
                        [user.pk, month, settings.ESSENTIAL_MONTHLY_GENERATIONS],
                    )
                    cursor.execute(
                        "UPDATE subscriptions_allowanceperiod SET used = used + 1"
                        ' WHERE user_id = %s AND month = %s AND used < "limit" RETURNING id',
                        [user.pk, month],
                    )
                    row = cursor.fetchone()
                if row is not None:
                    use = AllowanceUse.objects.create(
                        period_id=row[0], idempotency_key=idempotency_key
                    )
                    return GenerationCharge("allowance", allowance_use_id=use.pk)
        except IntegrityError:  # the same key raced us; its use stands
            use = AllowanceUse.objects.get(idempotency_key=idempotency_key)
            return GenerationCharge("allowance", allowance_use_id=use.pk)
    entry = credit_services.spend(
        user=user,
        amount=TRACK_GENERATION_CREDITS,
        reason="track_generation",
        idempotency_key=idempotency_key,
        memo="Track generation",
    )
    return GenerationCharge("credits", ledger_entry_id=entry.pk)


def give_back_generation(*, charge: GenerationCharge, memo: str = "") -> bool:
    """Return a generation's cost, at most once; True if this call gave it back.

    An allowance use goes back to its month while that month is open. Once it has
    closed (charged on the 31st, failed after midnight) the use could never be spent
    again, so the user gets one free credit instead: a never-expiring lot that costs
    nothing (so nothing is posted to the books), its entry saying why.
    """
    if charge.kind == "allowance":
        with transaction.atomic():
            use = (
                AllowanceUse.objects.select_for_update()
                .select_related("period")
                .filter(pk=charge.allowance_use_id, returned_at__isnull=True)
                .first()
            )
            if use is None:
                return False
            now = _now()
            use.returned_at = now
            use.save(update_fields=["returned_at"])
            if use.period.month == month_of(now):
                with connection.cursor() as cursor:
                    cursor.execute(
                        "UPDATE subscriptions_allowanceperiod SET used = used - 1"
                        " WHERE id = %s AND used > 0",
                        [use.period_id],
                    )
            else:
                _allowance_back_as_credit(use, memo=memo)
        return True
    entry = LedgerEntry.objects.get(pk=charge.ledger_entry_id)
    if LedgerEntry.objects.filter(reverses=entry).exists():
        return False
    try:
        credit_services.refund(
            entry=entry,
            idempotency_key=f"refund:{entry.idempotency_key}",
            memo=memo or "Generation failed: credit returned",
            cause=Cause.TASK,
        )
    except AlreadyRefunded:
        return False
    return True


def _allowance_back_as_credit(use: AllowanceUse, *, memo: str) -> None:
    """Give a use from a closed month back as one free, never-expiring credit."""
    closed = f"{use.period.month:%B %Y}"
    credit_services.grant(
        user=use.period.user,
        amount=1,
        source=LotSource.REFUND,
        idempotency_key=f"allowance-back:{use.idempotency_key}",
        kind=EntryKind.REFUND,
        cause=Cause.TASK,
        cause_ref=use.idempotency_key,
        reason="allowance_month_closed",
        memo=(
            f"{memo or 'Generation failed'}: its {closed} allowance has closed, "
            "so you get 1 credit instead"
        ),
    )
