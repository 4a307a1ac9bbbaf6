"""An e-mail owed is never lost when the broker is down at commit.

Receipts and notices are queued after commit. If the broker cannot take the task
then, the change that owes the e-mail has committed already: the request must still
succeed, and the e-mail must go out later, once, from the sweep of unsent e-mail.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone
from kombu.exceptions import OperationalError

from notices import tasks as notice_tasks
from notices.models import Notice, NoticeKind
from purchases import services as purchases
from purchases import tasks as purchase_tasks
from purchases.models import Purchase
from tests.factories import UserFactory
from tests.purchases_helpers import published_track
from tests.test_books_refunds import pay_starter

pytestmark = pytest.mark.django_db


def broker_down(*args, **kwargs):
    raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")


def later(minutes: int) -> dt.datetime:
    return timezone.now() + dt.timedelta(minutes=minutes)


def run_sweep(monkeypatch, *, now) -> int:
    """The periodic sweep, with its queued sends run in place as the worker would."""
    monkeypatch.setattr(
        notice_tasks.send_notice, "delay", lambda pk: notice_tasks.send_notice.run(pk)
    )
    monkeypatch.setattr(
        purchase_tasks.send_receipt, "delay", lambda pk: purchase_tasks.send_receipt.run(pk)
    )
    return notice_tasks.send_unsent.run(now=now.isoformat())


def test_a_package_receipt_queued_while_the_broker_is_down_is_sent_by_the_sweep(
    client, user, mailoutbox, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(notice_tasks.send_notice, "delay", broker_down)
    with django_capture_on_commit_callbacks(execute=True):
        payment = pay_starter(client, user)  # the webhook answered 200: see pay_starter

    notice = Notice.objects.get(kind=NoticeKind.PACKAGE_RECEIPT, payment=payment)
    assert notice.sent_at is None and mailoutbox == []

    assert run_sweep(monkeypatch, now=later(2)) == 0  # too fresh: its own task may be on its way
    assert run_sweep(monkeypatch, now=later(15)) == 1
    assert run_sweep(monkeypatch, now=later(30)) == 0  # once
    [mail] = mailoutbox
    assert mail.subject == "Your receipt: Starter package, 30 credits"


def test_a_track_receipt_queued_while_the_broker_is_down_is_sent_by_the_sweep(
    mailoutbox, monkeypatch, django_capture_on_commit_callbacks
):
    artist, fan = UserFactory(display_name="Nova"), UserFactory()
    track = published_track(artist, price=2, title="Neon")
    monkeypatch.setattr(purchase_tasks.send_receipt, "delay", broker_down)
    with django_capture_on_commit_callbacks(execute=True):
        result = purchases.buy(fan=fan, track=track)  # no exception reaches the buyer

    assert Purchase.objects.get(pk=result.purchase.pk).receipt_sent_at is None
    assert run_sweep(monkeypatch, now=later(15)) == 1
    assert run_sweep(monkeypatch, now=later(30)) == 0
    [mail] = mailoutbox
    assert "Neon" in mail.subject or "Neon" in mail.body
    assert Purchase.objects.get(pk=result.purchase.pk).receipt_sent_at is not None


def test_the_sweep_leaves_skipped_and_old_notices_alone(user, mailoutbox, monkeypatch):
    Notice.objects.create(
        user=user, kind=NoticeKind.CREDITS_EXPIRED, key="old", created_at=later(-60 * 24 * 8)
    )
    Notice.objects.create(
        user=user,
        kind=NoticeKind.CREDITS_EXPIRED,
        key="skipped",
        created_at=timezone.now(),
        skipped="unsubscribed from notices",
    )
    assert run_sweep(monkeypatch, now=later(15)) == 0
    assert mailoutbox == []


def test_the_sweep_is_on_the_beat_schedule(settings):
    tasks = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert "notices.send_unsent" in tasks
