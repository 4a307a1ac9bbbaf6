"""E-mail receipts and notices: claimed once per cause in the cause's transaction,
queued after commit, sent once by a task, in plain text and HTML; notices stop for a
user who unsubscribed, receipts do not."""

from __future__ import annotations

import datetime as dt
import re
import time

import pytest
from django.utils import timezone

from credits import services as credits
from notices import services as notices
from notices import tasks
from notices.models import Notice, NoticeKind
from tests import stripe_events
from tests.factories import UserFactory
from tests.test_books_refunds import pay_starter
from tests.test_subscriptions import deliver_twice, invoice_event, sub_event, subscribe
from tests.threads import run_threads

pytestmark = pytest.mark.django_db


def send_all() -> int:
    """Run the send task for every claimed notice, as the worker would."""
    return sum(notices.send(notice_id=pk) for pk in Notice.objects.values_list("pk", flat=True))


def html_of(mail) -> str:
    [(html, mime)] = mail.alternatives
    assert mime == "text/html"
    return html


def expiring_lot(user, *, amount=7, days=2, key=None):
    return credits.grant(
        user=user,
        amount=amount,
        source="admin",
        idempotency_key=key or f"lot:{user.pk}:{amount}:{days}",
        expires_at=timezone.now() + dt.timedelta(days=days, hours=1),
    )


def unsubscribe(user):
    from accounts.services import set_email_notices

    set_email_notices(user=user, enabled=False)


# --- Receipts --------------------------------------------------------------------


def test_a_package_purchase_claims_its_receipt_in_the_webhook_and_sends_it_after_commit(
    client, user, mailoutbox, django_capture_on_commit_callbacks, monkeypatch
):
    queued = []
    monkeypatch.setattr(tasks.send_notice, "delay", queued.append)
    with django_capture_on_commit_callbacks() as callbacks:
        payment = pay_starter(client, user)

    notice = Notice.objects.get(kind=NoticeKind.PACKAGE_RECEIPT)
    assert (notice.user_id, notice.payment_id) == (user.pk, payment.pk)
    assert queued == []  # nothing is queued before the commit
    for callback in callbacks:
        callback()
    assert queued == [notice.pk]  # the send task, queued on commit
    assert mailoutbox == []  # never sent from the request

    assert notices.send(notice_id=notice.pk) is True
    assert notices.send(notice_id=notice.pk) is False  # once
    [mail] = mailoutbox
    assert mail.to == [user.email]
    assert mail.subject == "Your receipt: Starter package, 30 credits"
    expires = payment.lot.expires_at
    for part in (mail.body, html_of(mail)):
        assert "$19.99" in part and "30 credits" in part
        assert f"expire on {expires:%-d %B %Y, %H:%M} UTC" in part
    assert "List-Unsubscribe" not in mail.extra_headers  # a receipt, not a notice


def test_an_essential_payment_has_a_receipt_and_a_renewal_a_notice(client, user, mailoutbox):
    sub = subscribe(user, client)
    deliver_twice(client, invoice_event("invoice.paid", sub, created=int(time.time()) + 5))

    assert sorted(Notice.objects.values_list("kind", flat=True)) == [
        NoticeKind.ESSENTIAL_RECEIPT,
        NoticeKind.ESSENTIAL_RENEWED,
    ]
    assert send_all() == 2
    subjects = sorted(m.subject for m in mailoutbox)
    assert subjects == [
        "Essential renewed: 5 generations every month",
        "Your receipt: Essential, $5.00",
    ]
    receipt = next(m for m in mailoutbox if m.subject.startswith("Your receipt"))
    assert "$5.00" in receipt.body and "$5.00" in html_of(receipt)


def test_a_failed_renewal_and_the_end_of_essential_are_notices_once_each(client, user, mailoutbox):
    sub = subscribe(user, client)
    t0 = int(time.time())
    sub.status = "past_due"
    sub.save()
    failed = invoice_event("invoice.payment_failed", sub, created=t0 + 10)
    deliver_twice(client, failed)
    sub.status = "canceled"
    sub.save()
    deliver_twice(client, sub_event("customer.subscription.deleted", sub, created=t0 + 20))

    assert send_all() == 2
    assert sorted(m.subject for m in mailoutbox) == [
        "We could not renew your Essential subscription",
        "Your Essential subscription has ended",
    ]
    assert all("List-Unsubscribe" in m.extra_headers for m in mailoutbox)


def test_a_track_purchase_receipt_has_an_html_part_with_the_fee_lines(mailoutbox):
    from purchases import services as purchases
    from tests.purchases_helpers import published_track

    artist, fan = UserFactory(display_name="Nova"), UserFactory()
    result = purchases.buy(fan=fan, track=published_track(artist, price=2, title="Neon"))

    assert purchases.send_receipt(purchase_id=result.purchase.pk) is True
    [mail] = mailoutbox
    html = html_of(mail)
    assert "&ldquo;Neon&rdquo;" in html and "Card fee" in html and "Nova earns" in html
    assert "Card fee" in mail.body


# --- Credits that expire -----------------------------------------------------------


def test_the_expiry_job_run_twice_sends_one_email_per_lot(user, mailoutbox):
    first = expiring_lot(user, amount=7, days=2)
    second = expiring_lot(user, amount=3, days=1)
    expiring_lot(user, amount=9, days=10)  # not yet: outside the 3 days

    assert notices.claim_expiring_lots() == 2
    assert notices.claim_expiring_lots() == 0
    assert send_all() == 2
    assert send_all() == 0

    assert sorted(m.subject.split(" expire")[0] for m in mailoutbox) == ["3 credits", "7 credits"]
    assert set(Notice.objects.values_list("lot_id", flat=True)) == {first.pk, second.pk}
    mail = next(m for m in mailoutbox if m.subject.startswith("7 credits"))
    assert "expire in 2 days" in mail.body and "expire <strong>in 2 days</strong>" in html_of(mail)
    assert notices.unsubscribe_url(user) in mail.body
    assert mail.extra_headers["List-Unsubscribe"] == f"<{notices.unsubscribe_url(user)}>"
    assert mail.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_a_lot_already_expired_or_spent_sends_nothing(user, mailoutbox):
    spent = expiring_lot(user, amount=7, days=2)
    credits.grant(
        user=user,
        amount=4,
        source="admin",
        idempotency_key="gone",
        expires_at=timezone.now() - dt.timedelta(hours=1),
    )
    credits.spend(user=user, amount=7, reason="test", idempotency_key="use-it")  # the 7
    spent.refresh_from_db()
    assert spent.remaining == 0

    assert notices.claim_expiring_lots() == 0
    assert send_all() == 0 and mailoutbox == []


def test_a_lot_spent_between_claim_and_send_is_skipped(user, mailoutbox):
    expiring_lot(user, amount=2, days=1)
    assert notices.claim_expiring_lots() == 1
    credits.spend(user=user, amount=2, reason="test", idempotency_key="just-in-time")

    assert send_all() == 0
    assert mailoutbox == []
    assert Notice.objects.get().skipped == "nothing left to tell"


@pytest.mark.django_db(transaction=True)
def test_the_expiry_job_run_concurrently_sends_one_email_per_lot(mailoutbox, monkeypatch):
    queued = []
    monkeypatch.setattr(tasks.send_notice, "delay", queued.append)
    users = [UserFactory() for _ in range(3)]
    lots = [expiring_lot(u, amount=n + 1, days=2) for n, u in enumerate(users)]
    lots.append(expiring_lot(users[0], amount=5, days=1, key="second"))

    claimed = run_threads([notices.claim_expiring_lots] * 4)

    assert [exc for _, exc in claimed] == [None] * 4
    assert sum(n for n, _ in claimed) == len(lots)
    assert sorted(queued) == sorted(Notice.objects.values_list("pk", flat=True))
    # The worker may get a task twice (acks late): each copy runs, one e-mail goes out.
    sent = run_threads([lambda pk=pk: tasks.send_notice(pk) for pk in queued * 2])
    assert [exc for _, exc in sent] == [None] * len(queued) * 2
    assert sum(bool(ok) for ok, _ in sent) == len(lots)
    assert sorted((m.to[0], m.subject) for m in mailoutbox) == sorted(
        (
            lot.user.email,
            f"{lot.amount} credit{'s' if lot.amount > 1 else ''} expire on {lot.expires_at:%-d %B}",
        )
        for lot in lots
    )


def test_credits_that_expired_are_one_notice_per_user_and_run(user, mailoutbox):
    expiring_lot(user, amount=7, days=1, key="a")
    expiring_lot(user, amount=3, days=2, key="b")
    later = timezone.now() + dt.timedelta(days=5)
    assert credits.expire_due(now=later) == 2

    assert notices.claim_expired(now=later) == 1
    assert notices.claim_expired(now=later) == 0
    assert send_all() == 1
    [mail] = mailoutbox
    assert mail.subject == "10 credits expired"
    assert "your balance is 5" in mail.body  # the welcome gift is untouched


def test_the_hourly_expiry_task_notices_what_it_expired(user, mailoutbox, settings):
    from credits.tasks import expire_credits

    credits.grant(
        user=user,
        amount=6,
        source="admin",
        idempotency_key="past",
        expires_at=timezone.now() - dt.timedelta(minutes=5),
    )

    assert expire_credits() == 1
    assert expire_credits() == 0
    assert send_all() == 1
    assert [m.subject for m in mailoutbox] == ["6 credits expired"]
    schedule = settings.CELERY_BEAT_SCHEDULE["expiring-credits"]
    assert schedule["task"] == "notices.expiring_credits"


# --- Opting out ---------------------------------------------------------------------


def test_an_opted_out_user_gets_no_more_notices_but_still_gets_receipts(client, user, mailoutbox):
    expiring_lot(user, amount=7, days=2)
    assert notices.claim_expiring_lots() == 1
    unsubscribe(user)
    expiring_lot(user, amount=3, days=1)

    assert notices.claim_expiring_lots() == 0  # nothing new claimed for them
    pay_starter(client, user)
    assert send_all() == 1  # the receipt; the notice claimed before is skipped

    [mail] = mailoutbox
    assert mail.subject.startswith("Your receipt")
    skipped = Notice.objects.get(kind=NoticeKind.CREDITS_EXPIRING)
    assert (skipped.sent_at, skipped.skipped) == (None, "unsubscribed from notices")


def test_the_signed_link_unsubscribes_with_one_post_and_a_get_only_asks(client, user):
    url = notices.unsubscribe_url(user).removeprefix("http://127.0.0.1:8000")

    page = client.get(url)
    user.refresh_from_db()
    assert page.status_code == 200 and "Stop e-mail notices?" in page.content.decode()
    assert user.email_notices is True

    done = client.post(url, {"List-Unsubscribe": "One-Click"})  # no session, no CSRF token
    user.refresh_from_db()
    assert done.status_code == 200 and "You are unsubscribed" in done.content.decode()
    assert user.email_notices is False

    forged = url.replace(f"/{user.pk}:", f"/{user.pk + 1}:")
    assert client.post(forged).status_code == 404


def test_the_profile_page_turns_notices_off_and_on(client, user):
    client.force_login(user)
    page = client.get("/accounts/profile/").content.decode()
    assert re.search(r'<input type="checkbox" name="email_notices"[^>]* checked', page)

    client.post("/accounts/profile/notices/", {})
    user.refresh_from_db()
    assert user.email_notices is False
    client.post("/accounts/profile/notices/", {"email_notices": "on"})
    user.refresh_from_db()
    assert user.email_notices is True


def test_email_url_picks_the_backend(monkeypatch):
    from soundstudio.settings.base import email_settings

    monkeypatch.setenv("EMAIL_URL", "smtp+tls://mailer:s3cret@smtp.example.com:587")
    monkeypatch.delenv("EMAIL_BACKEND", raising=False)
    smtp = email_settings("consolemail://")
    assert smtp["EMAIL_BACKEND"] == "django.core.mail.backends.smtp.EmailBackend"
    assert (smtp["EMAIL_HOST"], smtp["EMAIL_PORT"], smtp["EMAIL_USE_TLS"]) == (
        "smtp.example.com",
        587,
        True,
    )
    monkeypatch.delenv("EMAIL_URL")
    assert email_settings("consolemail://")["EMAIL_BACKEND"].endswith("console.EmailBackend")


def test_signed_webhook_events_still_answer_200_with_notices_on(client, user):
    # A notice claim is part of the webhook's transaction: it must never fail it.
    sub = subscribe(user, client)
    response = stripe_events.deliver(
        client, invoice_event("invoice.paid", sub, created=int(time.time()) + 1)
    )
    assert response.status_code == 200
