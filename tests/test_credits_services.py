"""Unit tests of the credit ledger (DESIGN.md section 1, "Credits")."""

import datetime as dt
import re
import uuid

import pytest
import time_machine
from django.contrib.messages import get_messages
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import IntegrityError, connection, transaction
from django.urls import reverse
from django.utils import timezone

from credits import selectors, services
from credits.exceptions import AlreadyRefunded, InsufficientCredits
from credits.models import (
    Cause,
    CreditLot,
    EntryKind,
    LedgerEntry,
    LedgerEntryLot,
    LotSource,
    Wallet,
)
from tests.factories import UserFactory

T0 = dt.datetime(2030, 1, 15, 12, 0, tzinfo=dt.UTC)


# --- helpers ------------------------------------------------------------------------


def grant(user, amount, *, expires_at=None, key=None, source=LotSource.ADMIN):
    return services.grant(
        user=user,
        amount=amount,
        source=source,
        idempotency_key=key or f"test-grant:{uuid.uuid4()}",
        expires_at=expires_at,
    )


def spend(user, amount, *, key=None):
    return services.spend(
        user=user, amount=amount, reason="test", idempotency_key=key or f"spend:{uuid.uuid4()}"
    )


def links_of(entry):
    """{lot id: signed amount} of the lots an entry touched."""
    return dict(LedgerEntryLot.objects.filter(entry=entry).values_list("lot_id", "amount"))


def remaining(*lots):
    return [CreditLot.objects.get(pk=lot.pk).remaining for lot in lots]


def entries_of(user):
    return LedgerEntry.objects.filter(user_id=user.pk)


def entries_sum(user):
    return sum(entries_of(user).values_list("amount", flat=True))


def wallet_balance(user):
    return Wallet.objects.get(user_id=user.pk).balance


def snapshot(user):
    """Everything a failed operation must leave unchanged."""
    return (
        wallet_balance(user),
        sorted(entries_of(user).values_list("id", "amount")),
        sorted(CreditLot.objects.filter(user_id=user.pk).values_list("id", "remaining")),
    )


@pytest.fixture
def staff(db):
    return _make_staff()


def _make_staff(superuser=False):
    user = UserFactory()
    user.is_staff = True
    user.is_superuser = superuser
    user.save(update_fields=["is_staff", "is_superuser"])
    return user


@pytest.fixture
def superuser(db):
    return _make_staff(superuser=True)


# --- signup gift --------------------------------------------------------------------


@pytest.mark.django_db
def test_signup_gives_five_never_expiring_credits(user):
    lot = CreditLot.objects.get(user_id=user.pk)
    assert (lot.amount, lot.remaining, lot.source, lot.expires_at) == (5, 5, "signup", None)
    entry = entries_of(user).get()
    assert (entry.kind, entry.amount, entry.balance_after) == (EntryKind.GRANT, 5, 5)
    assert entry.idempotency_key == f"signup:{user.pk}"
    assert links_of(entry) == {lot.pk: 5}
    assert selectors.balance(user) == 5


@pytest.mark.django_db
def test_signup_gift_is_given_only_once(user):
    first = CreditLot.objects.get(user_id=user.pk)

    again = services.grant_signup_gift(user=user)

    assert again.pk == first.pk
    assert CreditLot.objects.filter(user_id=user.pk).count() == 1
    assert entries_of(user).count() == 1
    assert selectors.balance(user) == 5 == wallet_balance(user)


# --- spending -----------------------------------------------------------------------


@pytest.mark.django_db
def test_spend_burns_soonest_expiring_first_then_later_then_never_expiring(user):
    signup_lot = CreditLot.objects.get(user_id=user.pk)
    now = timezone.now()
    in_3_days = grant(user, 4, expires_at=now + dt.timedelta(days=3))
    tomorrow = now + dt.timedelta(days=1)
    in_1_day = grant(user, 2, expires_at=tomorrow)
    in_1_day_later = grant(user, 3, expires_at=tomorrow)

    first = spend(user, 1)
    second = spend(user, 9)

    assert links_of(first) == {in_1_day.pk: -1}
    assert links_of(second) == {
        in_1_day.pk: -1,
        in_1_day_later.pk: -3,
        in_3_days.pk: -4,
        signup_lot.pk: -1,
    }
    assert remaining(in_1_day, in_1_day_later, in_3_days, signup_lot) == [0, 0, 0, 4]
    assert (second.amount, second.balance_after) == (-9, 4)
    assert selectors.balance(user) == 4


@pytest.mark.django_db
def test_spend_ties_on_expiry_go_to_the_lot_created_first_not_the_lowest_id(user):
    expires = T0 + dt.timedelta(days=2)
    with time_machine.travel(T0 + dt.timedelta(hours=1), tick=False):
        newer = grant(user, 3, expires_at=expires)
    with time_machine.travel(T0, tick=False):
        older = grant(user, 3, expires_at=expires)
        assert older.pk > newer.pk

        entry = spend(user, 4)

    assert links_of(entry) == {older.pk: -3, newer.pk: -1}


@pytest.mark.django_db
def test_spend_that_balance_cannot_cover_raises_and_changes_nothing(user):
    grant(user, 3, expires_at=timezone.now() + dt.timedelta(days=1))
    before = snapshot(user)

    with pytest.raises(InsufficientCredits) as excinfo:
        spend(user, 9, key="spend:too-much")

    assert (excinfo.value.requested, excinfo.value.available) == (9, 8)
    assert snapshot(user) == before
    assert not LedgerEntry.objects.filter(idempotency_key="spend:too-much").exists()


@pytest.mark.django_db
def test_failed_spend_does_not_write_off_past_date_lots_either(user):
    with time_machine.travel(T0, tick=False):
        grant(user, 10, expires_at=T0 + dt.timedelta(hours=1))
    with time_machine.travel(T0 + dt.timedelta(hours=2), tick=False):
        before = snapshot(user)
        with pytest.raises(InsufficientCredits) as excinfo:
            spend(user, 6)
        assert excinfo.value.available == 5
        assert snapshot(user) == before
        assert not entries_of(user).filter(kind=EntryKind.EXPIRE).exists()


@pytest.mark.django_db
def test_spend_never_uses_a_lot_past_its_date_and_writes_it_off(user):
    signup_lot = CreditLot.objects.get(user_id=user.pk)
    with time_machine.travel(T0, tick=False):
        stale = grant(user, 10, expires_at=T0 + dt.timedelta(hours=1))
    with time_machine.travel(T0 + dt.timedelta(hours=1), tick=False):
        entry = spend(user, 2)

    assert links_of(entry) == {signup_lot.pk: -2}
    expired = LedgerEntry.objects.get(idempotency_key=f"expire:lot:{stale.pk}")
    assert (expired.kind, expired.amount, links_of(expired)) == ("expire", -10, {stale.pk: -10})
    assert entry.balance_after == 3 == wallet_balance(user) == entries_sum(user)


@pytest.mark.django_db
def test_spend_with_a_used_key_returns_the_earlier_entry_and_changes_nothing(user):
    first = spend(user, 2, key="spend:once")
    before = snapshot(user)

    again = spend(user, 2, key="spend:once")

    assert again.pk == first.pk
    assert snapshot(user) == before
    assert selectors.balance(user) == 3


@pytest.mark.django_db
def test_spends_of_one_user_leave_another_users_credits_alone(user, other_user):
    spend(user, 5)
    assert selectors.balance(user) == 0
    assert selectors.balance(other_user) == 5
    assert CreditLot.objects.get(user_id=other_user.pk).remaining == 5


@pytest.mark.django_db
@pytest.mark.parametrize("amount", [0, -1])
def test_spend_and_grant_refuse_non_positive_amounts(user, amount):
    with pytest.raises(ValueError):
        spend(user, amount)
    with pytest.raises(ValueError):
        grant(user, amount)
    assert entries_of(user).count() == 1


# --- expiry -------------------------------------------------------------------------


@pytest.mark.django_db
def test_expire_due_expires_a_lot_due_exactly_now_but_not_one_due_a_microsecond_later(user):
    now = T0
    due = grant(user, 4, expires_at=now)
    not_yet = grant(user, 6, expires_at=now + dt.timedelta(microseconds=1))

    assert services.expire_due(now=now) == 1

    assert remaining(due, not_yet) == [0, 6]
    entry = LedgerEntry.objects.get(idempotency_key=f"expire:lot:{due.pk}")
    assert (entry.kind, entry.amount, entry.cause) == (EntryKind.EXPIRE, -4, Cause.TASK)
    assert entry.balance_after == 11 == wallet_balance(user)
    assert links_of(entry) == {due.pk: -4}
    assert not LedgerEntry.objects.filter(idempotency_key=f"expire:lot:{not_yet.pk}").exists()


@pytest.mark.django_db
def test_expiry_removes_only_the_unused_remainder_and_never_touches_other_lots(user, other_user):
    signup_lot = CreditLot.objects.get(user_id=user.pk)
    later = grant(user, 7, expires_at=T0 + dt.timedelta(days=30))
    soon = grant(user, 10, expires_at=T0)
    spend(user, 4)  # from `soon`
    other_soon = grant(other_user, 2, expires_at=T0 - dt.timedelta(days=1))

    assert services.expire_due(now=T0) == 2

    assert remaining(soon, later, signup_lot, other_soon) == [0, 7, 5, 0]
    assert LedgerEntry.objects.get(idempotency_key=f"expire:lot:{soon.pk}").amount == -6
    assert LedgerEntry.objects.get(idempotency_key=f"expire:lot:{other_soon.pk}").amount == -2
    assert wallet_balance(user) == 12 == entries_sum(user)
    assert wallet_balance(other_user) == 5 == entries_sum(other_user)


@pytest.mark.django_db
def test_expire_due_twice_expires_nothing_the_second_time(user):
    lots = [grant(user, n, expires_at=T0 - dt.timedelta(hours=n)) for n in (1, 2, 3)]

    assert services.expire_due(now=T0) == 3
    assert services.expire_due(now=T0) == 0
    assert services.expire_due(now=T0 + dt.timedelta(days=365)) == 0

    for lot in lots:
        assert entries_of(user).filter(kind=EntryKind.EXPIRE, lots=lot).count() == 1
    assert entries_of(user).filter(kind=EntryKind.EXPIRE).count() == 3
    assert wallet_balance(user) == 5 == entries_sum(user)


@pytest.mark.django_db
def test_expire_entries_carry_a_running_balance_after(user):
    grant(user, 10)
    lots = [grant(user, n, expires_at=T0) for n in (1, 2, 3)]

    services.expire_due(now=T0)

    balances = [
        LedgerEntry.objects.get(idempotency_key=f"expire:lot:{lot.pk}").balance_after
        for lot in lots
    ]
    assert balances == [20, 18, 15]
    latest = selectors.history(user).first()
    assert latest.balance_after == 15 == wallet_balance(user)


@pytest.mark.django_db
def test_balance_excludes_a_lot_past_its_date_before_the_expiry_job_runs(user, client):
    with time_machine.travel(T0, tick=False):
        lot = grant(user, 10, expires_at=T0 + dt.timedelta(hours=1))
        assert selectors.balance(user) == 15
    with time_machine.travel(T0 + dt.timedelta(hours=1), tick=False):
        assert selectors.balance(user) == 5
        assert wallet_balance(user) == 15  # the job has not written it off yet
        assert lot.pk not in selectors.live_lots(user).values_list("pk", flat=True)
        client.force_login(user)
        data = client.get(reverse("api_credits_balance")).json()
        assert data["balance"] == 5
        assert [item["id"] for item in data["lots"]] == [
            CreditLot.objects.get(user_id=user.pk, source="signup").pk
        ]

        services.expire_due()

        assert selectors.balance(user) == 5 == wallet_balance(user) == entries_sum(user)


# --- refunds ------------------------------------------------------------------------


@pytest.mark.django_db
def test_refund_gives_a_spend_back_once_as_lots_with_the_original_expiry(user):
    signup_lot = CreditLot.objects.get(user_id=user.pk)
    expires = timezone.now() + dt.timedelta(days=3)
    dated = grant(user, 2, expires_at=expires)
    spent = spend(user, 4)  # 2 from `dated`, 2 from the signup lot

    refund = services.refund(entry=spent, idempotency_key="refund:1")

    assert (refund.kind, refund.amount, refund.reverses_id) == (EntryKind.REFUND, 4, spent.pk)
    assert refund.balance_after == 7 == selectors.balance(user) == wallet_balance(user)
    new_lots = CreditLot.objects.filter(pk__in=links_of(refund)).order_by("pk")
    assert [(lot.amount, lot.remaining, lot.source, lot.expires_at) for lot in new_lots] == [
        (2, 2, LotSource.REFUND, expires),
        (2, 2, LotSource.REFUND, None),
    ]
    assert remaining(dated, signup_lot) == [0, 3]

    assert services.refund(entry=spent, idempotency_key="refund:1").pk == refund.pk
    with pytest.raises(AlreadyRefunded):
        services.refund(entry=spent, idempotency_key="refund:2")
    assert entries_of(user).filter(kind=EntryKind.REFUND).count() == 1
    assert selectors.balance(user) == 7


@pytest.mark.django_db
def test_only_a_spend_can_be_refunded(user):
    grant_entry = entries_of(user).get()
    with pytest.raises(ValueError):
        services.refund(entry=grant_entry, idempotency_key="refund:grant")
    assert entries_of(user).count() == 1


# --- voiding ------------------------------------------------------------------------


@pytest.mark.django_db
def test_void_lot_removes_only_the_remainder_and_does_not_claw_back_spent_credits(user):
    signup_lot = CreditLot.objects.get(user_id=user.pk)
    package_lot = grant(user, 30, expires_at=timezone.now() + dt.timedelta(days=30))
    spend(user, 12)  # all from the package lot

    entry = services.void_lot(lot=package_lot, idempotency_key="void:pi_1", reason="refunded")

    assert (entry.kind, entry.amount, links_of(entry)) == ("void", -18, {package_lot.pk: -18})
    assert remaining(package_lot, signup_lot) == [0, 5]
    assert selectors.balance(user) == 5 == wallet_balance(user) == entry.balance_after
    again = services.void_lot(lot=package_lot, idempotency_key="void:pi_1", reason="refunded")
    assert again.pk == entry.pk
    assert entries_of(user).filter(kind=EntryKind.VOID).count() == 1


@pytest.mark.django_db
def test_voiding_an_empty_lot_returns_none_and_writes_nothing(user):
    lot = grant(user, 3, expires_at=timezone.now() + dt.timedelta(days=1))
    spend(user, 3)
    before = snapshot(user)

    assert services.void_lot(lot=lot, idempotency_key="void:empty", reason="refunded") is None
    assert snapshot(user) == before


# --- staff adjustments ---------------------------------------------------------------


@pytest.mark.django_db
def test_positive_adjust_adds_a_never_expiring_lot_recording_staff_and_reason(user, staff):
    entry = services.adjust(
        user=user, amount=7, staff_user=staff, reason="  goodwill  ", idempotency_key="adj:1"
    )

    assert (entry.kind, entry.amount, entry.cause) == (EntryKind.ADJUST, 7, Cause.STAFF)
    assert (entry.staff_user_id, entry.reason, entry.balance_after) == (staff.pk, "goodwill", 12)
    (lot_id,) = links_of(entry)
    lot = CreditLot.objects.get(pk=lot_id)
    assert (lot.amount, lot.source, lot.expires_at) == (7, LotSource.ADMIN, None)
    again = services.adjust(
        user=user, amount=7, staff_user=staff, reason="goodwill", idempotency_key="adj:1"
    )
    assert again.pk == entry.pk
    assert selectors.balance(user) == 12


@pytest.mark.django_db
def test_negative_adjust_takes_credits_in_spend_order(user, staff):
    signup_lot = CreditLot.objects.get(user_id=user.pk)
    soon = grant(user, 2, expires_at=timezone.now() + dt.timedelta(days=1))

    entry = services.adjust(
        user=user, amount=-3, staff_user=staff, reason="abuse", idempotency_key="adj:neg"
    )

    assert (entry.kind, entry.amount, entry.staff_user_id) == (EntryKind.ADJUST, -3, staff.pk)
    assert links_of(entry) == {soon.pk: -2, signup_lot.pk: -1}
    assert selectors.balance(user) == 4


@pytest.mark.django_db
def test_negative_adjust_cannot_go_below_zero(user, staff):
    before = snapshot(user)
    with pytest.raises(InsufficientCredits):
        services.adjust(
            user=user, amount=-6, staff_user=staff, reason="abuse", idempotency_key="adj:neg"
        )
    assert snapshot(user) == before


@pytest.mark.django_db
@pytest.mark.parametrize("reason", ["", "   "])
def test_adjust_requires_a_reason(user, staff, reason):
    with pytest.raises(ValueError):
        services.adjust(
            user=user, amount=5, staff_user=staff, reason=reason, idempotency_key="adj:x"
        )
    assert entries_of(user).count() == 1


@pytest.mark.django_db
def test_adjust_requires_a_staff_user(user, other_user):
    for not_staff in (None, other_user):
        with pytest.raises(PermissionError):
            services.adjust(
                user=user, amount=5, staff_user=not_staff, reason="why", idempotency_key="adj:x"
            )
    assert entries_of(user).count() == 1


# --- append-only and database constraints --------------------------------------------


def raw_sql(sql, params):
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE credits_ledger_entry SET amount = 500 WHERE user_id = %s",
        "DELETE FROM credits_ledger_entry WHERE user_id = %s",
        "UPDATE credits_ledger_entry_lot SET amount = 500"
        " WHERE entry_id IN (SELECT id FROM credits_ledger_entry WHERE user_id = %s)",
        "DELETE FROM credits_ledger_entry_lot"
        " WHERE entry_id IN (SELECT id FROM credits_ledger_entry WHERE user_id = %s)",
    ],
)
def test_ledger_rows_cannot_be_updated_or_deleted(user, sql):
    with pytest.raises(IntegrityError, match="append-only"):
        raw_sql(sql, [user.pk])
    entry = entries_of(user).get()
    assert entry.amount == 5
    assert links_of(entry) == {CreditLot.objects.get(user_id=user.pk).pk: 5}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("sql", "constraint"),
    [
        ("UPDATE credits_lot SET remaining = -1 WHERE user_id = %s", "remaining_gte_0"),
        ("UPDATE credits_lot SET remaining = amount + 1 WHERE user_id = %s", "remaining_lte"),
        ("UPDATE credits_wallet SET balance = -1 WHERE user_id = %s", "balance_gte_0"),
    ],
)
def test_database_refuses_negative_or_overfull_lots_and_negative_wallets(user, sql, constraint):
    with pytest.raises(IntegrityError, match=constraint):
        raw_sql(sql, [user.pk])
    assert snapshot(user)[0] == 5
    assert CreditLot.objects.get(user_id=user.pk).remaining == 5


@pytest.mark.django_db
def test_an_adjust_entry_without_staff_and_reason_is_refused_by_the_database(user):
    with pytest.raises(IntegrityError, match="adjust_has_staff"), transaction.atomic():
        LedgerEntry.objects.create(
            user=user,
            kind=EntryKind.ADJUST,
            amount=1,
            balance_after=6,
            idempotency_key="adj:raw",
            cause=Cause.STAFF,
            created_at=timezone.now(),
        )


# --- audit and rebuild ---------------------------------------------------------------


@pytest.mark.django_db
def test_corrupted_balance_is_reported_and_rebuilt_from_the_entries(user, other_user):
    spend(user, 2)
    raw_sql("UPDATE credits_wallet SET balance = 40 WHERE user_id = %s", [user.pk])
    assert selectors.balance(user) == 40  # the cache is what the corruption broke

    problems = selectors.ledger_discrepancies()
    assert [(p.user_id, p.email) for p in problems] == [(user.pk, user.email)]
    assert "balance says 40" in problems[0].problem
    with pytest.raises(CommandError) as excinfo:
        call_command("check_ledger", stdout=(out := _Sink()), stderr=(err := _Sink()))
    assert "1 user(s)" in str(excinfo.value)
    assert user.email in err.text and other_user.email not in err.text
    assert "OK" not in out.text

    assert services.rebuild_balance(user=user) == 3

    assert selectors.balance(user) == 3 == wallet_balance(user)
    assert selectors.ledger_discrepancies() == []
    call_command("check_ledger", stdout=(out := _Sink()), stderr=_Sink())
    assert "Ledger OK" in out.text


class _Sink:
    def __init__(self):
        self.text = ""

    def write(self, text):
        self.text += text

    def flush(self):
        pass


# --- pages and API -------------------------------------------------------------------


@pytest.mark.django_db
def test_credits_page_shows_balance_expiring_lots_and_history(client, user):
    expires = timezone.now() + dt.timedelta(days=10)
    grant(user, 30, expires_at=expires)
    spend(user, 2)
    client.force_login(user)

    response = client.get(reverse("credits"))

    assert response.status_code == 200
    html = response.content.decode()
    assert re.search(r'id="balance">\s*33\s*<', html)
    assert f"expire on {expires:%-d %b %Y}" in html
    assert "never expire" in html
    assert [e.amount for e in response.context["history"]] == [-2, 30, 5]


@pytest.mark.django_db
def test_credits_history_is_paginated_25_per_page(client, user):
    grant(user, 30)
    for _ in range(26):
        spend(user, 1)
    assert entries_of(user).count() == 28
    client.force_login(user)

    first = client.get(reverse("credits"))
    second = client.get(reverse("credits"), {"page": 2})

    newest_first = list(selectors.history(user).values_list("pk", flat=True))
    assert [e.pk for e in first.context["history"]] == newest_first[:25]
    assert [e.pk for e in second.context["history"]] == newest_first[25:]
    assert "Page 2 of 2" in second.content.decode()


@pytest.mark.django_db
def test_balance_api_returns_balance_allowance_and_live_lots(client, user):
    signup_lot = CreditLot.objects.get(user_id=user.pk)
    expires = timezone.now() + dt.timedelta(days=2)
    dated = grant(user, 8, expires_at=expires)
    spend(user, 3)
    client.force_login(user)

    response = client.get(reverse("api_credits_balance"))

    assert response.status_code == 200
    data = response.json()
    assert data["balance"] == 10
    assert data["allowance_remaining"] == 0
    assert [(lot["id"], lot["remaining"], lot["expires_at"]) for lot in data["lots"]] == [
        (dated.pk, 5, expires.isoformat()),
        (signup_lot.pk, 5, None),
    ]
    assert {lot["source"] for lot in data["lots"]} == {"admin", "signup"}


@pytest.mark.django_db
def test_balance_api_answers_401_json_when_logged_out(client):
    response = client.get(reverse("api_credits_balance"))

    assert response.status_code == 401
    assert response.json()["error"] == "not_authenticated"
    assert response.json()["message"]


@pytest.mark.django_db
def test_page_header_shows_the_balance_of_the_logged_in_user(client, user):
    grant(user, 7)
    client.force_login(user)

    html = client.get(reverse("home")).content.decode()

    assert re.search(r'class="balance-pill"[^>]*>\s*12 credit', html)


@pytest.mark.django_db
def test_page_header_pluralizes_the_balance(client, user):
    grant(user, 7)
    client.force_login(user)
    pill = r'class="balance-pill"[^>]*>\s*{}\s*<'

    assert re.search(pill.format("12 credits"), client.get(reverse("home")).content.decode())
    spend(user, 11)
    assert re.search(pill.format("1 credit"), client.get(reverse("home")).content.decode())


# --- admin ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_admin_shows_ledger_entries_and_lots_read_only(client, superuser, user):
    entry = entries_of(user).get()
    lot = CreditLot.objects.get(user_id=user.pk)
    client.force_login(superuser)

    for model, obj in (("ledgerentry", entry), ("creditlot", lot)):
        change_url = reverse(f"admin:credits_{model}_change", args=[obj.pk])
        page = client.get(change_url)
        assert page.status_code == 200
        assert 'name="_save"' not in page.content.decode()
        assert client.post(change_url, {"amount": 500}).status_code == 403
        delete_url = reverse(f"admin:credits_{model}_delete", args=[obj.pk])
        assert client.get(delete_url).status_code == 403
        assert client.post(delete_url, {"post": "yes"}).status_code == 403
        assert client.get(reverse(f"admin:credits_{model}_add")).status_code == 403

    assert entries_of(user).get().amount == 5
    assert CreditLot.objects.get(pk=lot.pk).remaining == 5


def adjust_form(user, amount, reason="goodwill", request_id=None):
    return {
        "user": user.pk,
        "amount": amount,
        "reason": reason,
        "request_id": str(request_id or uuid.uuid4()),
    }


@pytest.mark.django_db
def test_admin_adjust_view_records_the_staff_user_and_reason(client, superuser, user):
    client.force_login(superuser)
    url = reverse("admin:credits_wallet_adjust")
    assert client.get(url).status_code == 200

    response = client.post(url, adjust_form(user, 4, reason="support ticket 12"))

    assert response.status_code == 302
    entry = entries_of(user).get(kind=EntryKind.ADJUST)
    assert (entry.amount, entry.staff_user_id) == (4, superuser.pk)
    assert entry.reason == "support ticket 12"
    assert selectors.balance(user) == 9
    assert any("balance now 9" in str(m) for m in get_messages(response.wsgi_request))


@pytest.mark.django_db
def test_admin_negative_adjust_beyond_the_balance_shows_an_error_and_changes_nothing(
    client, superuser, user
):
    client.force_login(superuser)
    before = snapshot(user)

    response = client.post(reverse("admin:credits_wallet_adjust"), adjust_form(user, -6))

    assert response.status_code == 200
    assert "Cannot take that many" in str(response.context["form"].errors["amount"])
    assert snapshot(user) == before


@pytest.mark.django_db
def test_admin_adjust_submitted_twice_adjusts_once(client, superuser, user):
    client.force_login(superuser)
    data = adjust_form(user, -2)

    first = client.post(reverse("admin:credits_wallet_adjust"), data)
    second = client.post(reverse("admin:credits_wallet_adjust"), data)

    assert first.status_code == second.status_code == 302
    assert entries_of(user).filter(kind=EntryKind.ADJUST).count() == 1
    assert selectors.balance(user) == 3


@pytest.mark.django_db
@pytest.mark.parametrize(("amount", "reason"), [(0, "why"), (3, "  ")])
def test_admin_adjust_refuses_zero_amount_or_blank_reason(client, superuser, user, amount, reason):
    client.force_login(superuser)

    response = client.post(
        reverse("admin:credits_wallet_adjust"), adjust_form(user, amount, reason=reason)
    )

    assert response.status_code == 200
    assert response.context["form"].errors
    assert entries_of(user).count() == 1


@pytest.mark.django_db
def test_admin_adjust_view_is_closed_to_non_staff(client, user):
    client.force_login(user)

    response = client.post(reverse("admin:credits_wallet_adjust"), adjust_form(user, 100))

    assert response.status_code == 302
    assert "login" in response["Location"]
    assert selectors.balance(user) == 5


@pytest.mark.django_db
def test_expire_due_in_small_batches_still_expires_every_users_due_lots(user, other_user):
    third = UserFactory()
    due = [
        grant(u, 2, expires_at=T0 - dt.timedelta(hours=h))
        for u in (user, other_user, third)
        for h in (1, 2)
    ]

    assert services.expire_due(now=T0, batch_size=1) == 6

    assert remaining(*due) == [0] * 6
    for u in (user, other_user, third):
        assert wallet_balance(u) == 5 == entries_sum(u)


@pytest.mark.django_db
@pytest.mark.parametrize("change", ["grant", "refund", "void"])
def test_balance_after_of_any_change_is_the_spendable_balance(user, change):
    with time_machine.travel(T0, tick=False):
        grant(user, 10, expires_at=T0 + dt.timedelta(hours=1))
        other = grant(user, 4)
        spent = spend(user, 1, key="spend:early")  # from the expiring lot
    with time_machine.travel(T0 + dt.timedelta(hours=2), tick=False):
        assert selectors.balance(user) == 9  # 5 signup + 4; the 9 left of 10 expired
        if change == "grant":
            lot = grant(user, 3, key="grant:late")
            entry = LedgerEntry.objects.get(idempotency_key=lot.grant_key)
        elif change == "refund":
            entry = services.refund(entry=spent, idempotency_key="refund:late")
        else:
            entry = services.void_lot(lot=other, idempotency_key="void:late", reason="refunded")

        assert entry.balance_after == selectors.balance(user)


@pytest.mark.django_db
def test_staff_without_credits_permissions_cannot_adjust_credits(client, staff, user):
    client.force_login(staff)
    assert client.get(reverse("admin:credits_wallet_changelist")).status_code == 403

    response = client.post(reverse("admin:credits_wallet_adjust"), adjust_form(user, 100))

    assert response.status_code == 403
    assert selectors.balance(user) == 5


@pytest.mark.django_db
@pytest.mark.parametrize("call", ["spend", "grant"])
def test_a_non_integer_amount_is_refused_and_changes_nothing(user, call):
    before = snapshot(user)
    with pytest.raises((TypeError, ValueError)):
        if call == "spend":
            spend(user, 1.5)
        else:
            grant(user, 2.5)
    assert snapshot(user) == before
    assert selectors.ledger_discrepancies() == []
