"""Reads of the Essential subscription and the allowance."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.conf import settings
from django.utils import timezone

from subscriptions.models import BENEFIT_STATUSES, LIVE_STATUSES, AllowancePeriod, Subscription


def _now() -> dt.datetime:
    return timezone.now()


def month_of(moment: dt.datetime) -> dt.date:
    """The allowance month (UTC) a moment falls in, as its first day."""
    return moment.astimezone(dt.UTC).date().replace(day=1)


def _current_period(user) -> AllowancePeriod | None:
    return AllowancePeriod.objects.filter(user=user, month=month_of(_now())).first()


def current_subscription(user) -> Subscription | None:
    """The user's live subscription, else the most recent one."""
    subscriptions = Subscription.objects.filter(user=user)
    return (
        subscriptions.filter(status__in=LIVE_STATUSES).order_by("-created_at").first()
        or subscriptions.order_by("-created_at").first()
    )


def has_active_subscription(user) -> bool:
    return Subscription.objects.filter(user=user, status__in=BENEFIT_STATUSES).exists()


def allowance_remaining(user) -> int:
    """Track generations left this month from the Essential allowance (0 without one)."""
    if not has_active_subscription(user):
        return 0
    period = _current_period(user)
    return period.remaining if period else settings.ESSENTIAL_MONTHLY_GENERATIONS


def allowance_used(user) -> int:
    period = _current_period(user)
    return period.used if period else 0


@dataclass(frozen=True)
class CommercialTerms:
    plan: str
    terms_version: str


def commercial_rights(user) -> CommercialTerms | None:
    """The terms under which the user's work currently has commercial rights, if any."""
    subscription = (
        Subscription.objects.filter(user=user, status__in=BENEFIT_STATUSES)
        .order_by("-created_at")
        .first()
    )
    if subscription is None:
        return None
    return CommercialTerms(subscription.plan, subscription.terms_version)
