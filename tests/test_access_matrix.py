"""Who may see or change what: every personal URL against the wrong visitors.

For each URL that shows or changes something of one person's (found from every app's
urls.py and the admin's own actions), three visitors who must not get it: an
anonymous visitor, another signed-in user, and a staff user without the permission.
Each gets the answer it should (the log-in page, 401, 403 or 404) and nothing in the
database changes: ledger, lots, purchases, payments, the books, staff actions,
tracks, subscriptions, the test gateway's intents and checkouts.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from accounts.models import User
from books.models import JournalLine, JournalTransaction
from credits.models import CreditLot, CreditPackage, LedgerEntry, Wallet
from payments import services as payment_services
from payments import testmode
from payments.models import (
    Payment,
    Refund,
    StaffAction,
    TestModeCheckout,
    TestModeIntent,
    TestModeSubscription,
)
from purchases.models import Purchase
from subscriptions import services as subscription_services
from subscriptions.models import Subscription
from tests import stripe_events
from tests.factories import UserFactory
from tests.purchases_helpers import published_track
from tracks import services as track_services
from tracks.models import Track
from webhooks.models import WebhookEvent

pytestmark = pytest.mark.django_db

SUCCESS_CARD = "4242424242424242"
LOGIN = "login"  # 302 to /accounts/login/?next=<the url>
ADMIN_LOGIN = "admin login"  # 302 to /admin/login/?next=<the url>
BACK = "back to the list"  # an admin action the visitor may not run: the list, not run


@pytest.fixture(autouse=True)
def _test_mode(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.STRIPE_SECRET_KEY = ""
    settings.CREDITS_REQUIRE_SUBSCRIPTION = False


def staff_with(*codenames: str) -> User:
    staff = UserFactory()
    User.objects.filter(pk=staff.pk).update(is_staff=True)
    for codename in codenames:
        staff.user_permissions.add(Permission.objects.get(codename=codename))
    return User.objects.get(pk=staff.pk)


def subscribe(user) -> TestModeSubscription:
    """An active Essential subscription, as Stripe's webhook would record it."""
    now = int(time.time())
    sub = TestModeSubscription.objects.create(
        id=f"sub_matrix_{user.pk}",
        customer=f"cus_matrix_{user.pk}",
        status="active",
        metadata={"user_id": str(user.pk)},
        current_period_start=dt.datetime.fromtimestamp(now, tz=dt.UTC),
        current_period_end=dt.datetime.fromtimestamp(now + 30 * 86400, tz=dt.UTC),
    )
    payload = stripe_events.event(
        "customer.subscription.created", testmode.subscription_object(sub)
    )
    assert stripe_events.deliver(Client(), payload).status_code == 200
    assert Subscription.objects.get(user=user).gives_benefits
    return sub


@pytest.fixture
def world() -> dict:
    """An artist's tracks and a fan's money, in every state the URLs below reach."""
    artist = UserFactory(display_name="Nova Lights")
    fan = UserFactory(display_name="Frankie Fan")
    cheap = published_track(artist, price=2, title="Cheap Thrill")
    dear = published_track(artist, price=9, title="Dear Diary")
    draft = published_track(artist, price=3, title="Secret Draft")
    track_services.publish(track=draft, published=False)

    fan_client = Client()
    fan_client.force_login(fan)
    bought = fan_client.post(f"/api/tracks/{cheap.pk}/purchase").json()
    assert bought["status"] == "completed", bought
    by_card = fan_client.post(f"/api/tracks/{dear.pk}/purchase").json()
    assert by_card["status"] == "requires_payment", by_card

    starter = CreditPackage.objects.get(slug="starter")
    pending_package, package_intent = payment_services.start_package_purchase(
        user=fan, package=starter
    )
    # Paid at Stripe, its webhook lost: what the desk's actions work on.
    lost, lost_intent = payment_services.start_package_purchase(user=fan, package=starter)
    testmode.confirm(lost_intent["id"], SUCCESS_CARD)
    # Paid and fulfilled: what a refund would undo.
    paid, paid_intent = payment_services.start_package_purchase(user=fan, package=starter)
    testmode.confirm(paid_intent["id"], SUCCESS_CARD)
    payment_services.complete_from_intent(
        testmode.intent_object(TestModeIntent.objects.get(pk=paid_intent["id"])),
        cause_ref="matrix",
    )
    subscribe(fan)
    # A second fan's unfinished subscription checkout.
    subscriber = UserFactory()
    session = subscription_services.start_checkout(
        user=subscriber, success_url="http://testserver/ok", cancel_url="http://testserver/no"
    )
    event = WebhookEvent.objects.order_by("-id").first()
    assert event is not None

    return {
        "artist": artist,
        "fan": fan,
        "cheap": cheap,
        "dear": dear,
        "draft": draft,
        "purchase": Purchase.objects.get(pk=bought["purchase_id"]),
        "card_purchase": Purchase.objects.get(pk=by_card["purchase_id"]),
        "card_intent": by_card["payment_intent_id"],
        "package_intent": package_intent["id"],
        "pending_package": pending_package,
        "lost": lost,
        "paid": Payment.objects.get(pk=paid.pk),
        "session": session["id"],
        "event": event,
    }


def database_state() -> dict:
    """Everything a wrong visitor could change, as plain values."""

    def rows(model, *fields):
        return list(model.objects.order_by("pk").values_list("pk", *fields))

    return {
        "ledger entries": LedgerEntry.objects.count(),
        "lots": rows(CreditLot, "remaining", "amount"),
        "wallets": rows(Wallet, "balance"),
        "purchases": rows(Purchase, "status", "flag"),
        "payments": rows(Payment, "status", "refunded_cents", "lot_id", "flag"),
        "refunds": Refund.objects.count(),
        "journal transactions": JournalTransaction.objects.count(),
        "journal lines": JournalLine.objects.count(),
        "staff actions": StaffAction.objects.count(),
        "tracks": rows(Track, "title", "is_published", "price_credits", "for_sale", "status"),
        "subscriptions": rows(Subscription, "status", "cancel_at_period_end"),
        "intents": rows(TestModeIntent, "status"),
        "checkouts": rows(TestModeCheckout, "status"),
        "stripe subscriptions": rows(TestModeSubscription, "status", "cancel_at_period_end"),
        "webhook events": rows(WebhookEvent, "status", "attempts"),
    }


@dataclass(frozen=True)
class Case:
    name: str
    method: str
    url: Callable[[dict], str]
    anonymous: object
    other: object
    staff: object
    data: Callable[[dict], dict] = field(default=lambda w: {})


def page(name, url, *, other=404, staff=404, anonymous=LOGIN, method="GET", data=None):
    return Case(name, method, url, anonymous, other, staff, data or (lambda w: {}))


def api(name, url, *, other=404, staff=404, anonymous=401, method="GET", data=None):
    return Case(name, method, url, anonymous, other, staff, data or (lambda w: {}))


def desk(name, url, *, method="GET", data=None):
    """Behind admin: non-staff get the admin's log-in page, staff without the
    permission 403."""
    return Case(name, method, url, ADMIN_LOGIN, ADMIN_LOGIN, 403, data or (lambda w: {}))


def admin_action(action: str, selected: Callable[[dict], int]):
    return lambda w: {
        "action": action,
        "_selected_action": [selected(w)],
        "post": "yes",
        "confirm": "yes",
        "reason": "let me in",
    }


REASON = {"reason": "let me in"}
CARD = {"card_number": SUCCESS_CARD}

CASES = [
    # --- tracks: a draft is its artist's alone ------------------------------------
    page("draft track page", lambda w: f"/tracks/{w['draft'].pk}/", anonymous=404),
    api("draft track api", lambda w: f"/api/tracks/{w['draft'].pk}", anonymous=404),
    page("draft preview", lambda w: f"/tracks/{w['draft'].pk}/preview", anonymous=404),
    page("draft waveform", lambda w: f"/tracks/{w['draft'].pk}/waveform.svg", anonymous=404),
    page("draft download", lambda w: f"/tracks/{w['draft'].pk}/download", anonymous=404),
    page(
        "full download of an unbought track",
        lambda w: f"/tracks/{w['dear'].pk}/download",
        anonymous=403,
        other=403,
        staff=403,
    ),
    api(
        "buy a draft",
        lambda w: f"/api/tracks/{w['draft'].pk}/purchase",
        method="POST",
    ),
    api(
        "generate a track",
        lambda w: "/api/tracks/generate",
        method="POST",
        other=None,
        staff=None,
    ),
    page("studio", lambda w: "/studio/", other=None, staff=None),
    page(
        "publish",
        lambda w: f"/studio/tracks/{w['draft'].pk}/publish",
        method="POST",
        data=lambda w: {"published": "1"},
    ),
    page(
        "unpublish",
        lambda w: f"/studio/tracks/{w['cheap'].pk}/publish",
        method="POST",
        data=lambda w: {"published": "0"},
    ),
    page(
        "set the price",
        lambda w: f"/studio/tracks/{w['cheap'].pk}/price",
        method="POST",
        data=lambda w: {"price_credits": "1"},
    ),
    page("delete", lambda w: f"/studio/tracks/{w['draft'].pk}/delete", method="POST"),
    # --- purchases ------------------------------------------------------------------
    page("receipt", lambda w: f"/purchases/{w['purchase'].pk}/receipt/"),
    api("purchase api", lambda w: f"/api/purchases/{w['purchase'].pk}"),
    api("pending purchase api", lambda w: f"/api/purchases/{w['card_purchase'].pk}"),
    api("purchases list", lambda w: "/api/purchases", other=None, staff=None),
    page("collection", lambda w: "/collection/", other=None, staff=None),
    page("sales", lambda w: "/studio/sales/", other=None, staff=None),
    # --- credits and payments -------------------------------------------------------
    page("credits page", lambda w: "/credits/", other=None, staff=None),
    api("balance api", lambda w: "/api/credits/balance", other=None, staff=None),
    api("history api", lambda w: "/api/credits/history", other=None, staff=None),
    api("stats api", lambda w: "/api/credits/stats", other=None, staff=None),
    *(
        page(
            f"{kind} export",
            lambda w, kind=kind: f"/accounts/profile/export/{kind}.csv",
            other=None,
            staff=None,
        )
        for kind in ("ledger", "purchases", "payments")
    ),
    page(
        "notices setting",
        lambda w: "/accounts/profile/notices/",
        method="POST",
        data=lambda w: {},
        other=None,
        staff=None,
    ),
    api(
        "buy a package",
        lambda w: "/api/credits/packages/starter/purchase",
        method="POST",
        other=None,
        staff=None,
    ),
    api("payment status", lambda w: f"/api/payments/{w['package_intent']}"),
    api("card purchase's payment status", lambda w: f"/api/payments/{w['card_intent']}"),
    page("test checkout page", lambda w: f"/payments/test-checkout/{w['card_intent']}/"),
    page(
        "pay someone's test checkout",
        lambda w: f"/payments/test-checkout/{w['card_intent']}/",
        method="POST",
        data=lambda w: CARD,
    ),
    page(
        "pay someone's package",
        lambda w: f"/payments/test-checkout/{w['package_intent']}/",
        method="POST",
        data=lambda w: CARD,
    ),
    # --- subscriptions --------------------------------------------------------------
    page("subscription page", lambda w: "/account/subscription/", other=None, staff=None),
    page(
        "cancel",
        lambda w: "/account/subscription/cancel",
        method="POST",
        other="/account/subscription/",
        staff="/account/subscription/",
    ),
    page(
        "resume",
        lambda w: "/account/subscription/resume",
        method="POST",
        other="/account/subscription/",
        staff="/account/subscription/",
    ),
    page("subscription test checkout", lambda w: f"/subscribe/test-checkout/{w['session']}/"),
    page(
        "pay someone's subscription checkout",
        lambda w: f"/subscribe/test-checkout/{w['session']}/",
        method="POST",
        data=lambda w: CARD,
    ),
    page("profile", lambda w: "/accounts/profile/", other=None, staff=None),
    # --- the admin desk ---------------------------------------------------------------
    desk("reconciliation", lambda w: "/admin/reconciliation/"),
    desk("reconciliation csv", lambda w: "/admin/reconciliation/export.csv"),
    *(
        desk(
            f"desk {action} page",
            lambda w, action=action: f"/admin/reconciliation/payments/{w['lost'].pk}/{action}/",
        )
        for action in ("settle", "replay", "refund", "cancel")
    ),
    *(
        desk(
            f"desk {action}",
            lambda w, action=action: f"/admin/reconciliation/payments/{w['lost'].pk}/{action}/",
            method="POST",
            data=lambda w: REASON,
        )
        for action in ("settle", "replay", "cancel")
    ),
    desk(
        "desk refund",
        lambda w: f"/admin/reconciliation/payments/{w['paid'].pk}/refund/",
        method="POST",
        data=lambda w: REASON,
    ),
    desk("revenue", lambda w: "/admin/revenue/"),
    desk("a user's money page", lambda w: f"/admin/accounts/user/{w['fan'].pk}/change/"),
    desk("adjust credits page", lambda w: "/admin/credits/wallet/adjust/"),
    desk(
        "adjust credits",
        lambda w: "/admin/credits/wallet/adjust/",
        method="POST",
        data=lambda w: {
            "user": w["fan"].pk,
            "amount": "100",
            "reason": "let me in",
            "request_id": "matrix",
        },
    ),
    desk("payments list", lambda w: "/admin/payments/payment/"),
    desk("a payment", lambda w: f"/admin/payments/payment/{w['paid'].pk}/change/"),
    desk("purchases list", lambda w: "/admin/purchases/purchase/"),
    desk(
        "refund a purchase",
        lambda w: "/admin/purchases/purchase/",
        method="POST",
        data=admin_action("refund", lambda w: w["purchase"].pk),
    ),
    desk(
        "refund a payment through Stripe",
        lambda w: "/admin/payments/payment/",
        method="POST",
        data=admin_action("refund_through_stripe", lambda w: w["paid"].pk),
    ),
    desk(
        "replay a webhook event",
        lambda w: "/admin/webhooks/webhookevent/",
        method="POST",
        data=admin_action("replay", lambda w: w["event"].pk),
    ),
    desk("ledger entries", lambda w: "/admin/credits/ledgerentry/"),
    desk("journal", lambda w: "/admin/books/journaltransaction/"),
]


def visitor(kind: str) -> Client:
    client = Client()
    if kind == "other":
        client.force_login(UserFactory())
    elif kind == "staff":
        client.force_login(staff_with())  # staff, and no permission at all
    return client


def check_answer(response, expected, url: str) -> None:
    where = response.get("Location", "")
    if expected == LOGIN:
        assert response.status_code == 302, response.status_code
        assert where.startswith("/accounts/login/?next="), where
    elif expected == ADMIN_LOGIN:
        assert response.status_code == 302, response.status_code
        assert where.startswith(f"/admin/login/?next={url}"), where
    elif expected == BACK:  # the list again (a redirect to it, or the list itself)
        assert response.status_code in (200, 302), response.status_code
        assert response.status_code == 200 or where == url, where
    elif isinstance(expected, str):  # a redirect to their own page
        assert response.status_code == 302, response.status_code
        assert where == expected, where
    else:
        assert response.status_code == expected, (response.status_code, response.content[:300])


# Visitors with None see their own there (checked by the last test), not a refusal.
MATRIX = [
    pytest.param(case, who, id=f"{case.name}-{who}")
    for case in CASES
    for who in ("anonymous", "other", "staff")
    if getattr(case, who) is not None
]


@pytest.mark.parametrize("case, who", MATRIX)
def test_the_wrong_visitor_gets_the_right_answer_and_changes_nothing(world, case, who):
    expected = getattr(case, who)
    url = case.url(world)
    client = visitor(who)
    before = database_state()

    send = client.post if case.method == "POST" else client.get
    response = send(url, case.data(world))

    check_answer(response, expected, url)
    assert database_state() == before


# --- Staff with some permissions, not the one an action needs ------------------------

ACTIONS_NEEDING_A_PERMISSION = [
    # (name, changelist, action, selected, the view permission they do have)
    ("refund a purchase", "/admin/purchases/purchase/", "refund", "purchase", "view_purchase"),
    (
        "refund a payment through Stripe",
        "/admin/payments/payment/",
        "refund_through_stripe",
        "paid",
        "view_payment",
    ),
    (
        "replay a webhook event",
        "/admin/webhooks/webhookevent/",
        "replay",
        "event",
        "view_webhookevent",
    ),
]


@pytest.mark.parametrize(
    "name, changelist, action, selected, view_permission",
    ACTIONS_NEEDING_A_PERMISSION,
    ids=[a[0] for a in ACTIONS_NEEDING_A_PERMISSION],
)
def test_staff_who_may_only_look_cannot_run_a_money_action(
    world, name, changelist, action, selected, view_permission
):
    client = Client()
    client.force_login(staff_with(view_permission))
    assert client.get(changelist).status_code == 200  # they may look
    before = database_state()

    data = admin_action(action, lambda w: w[selected].pk)(world)
    response = client.post(changelist, data)

    check_answer(response, BACK, changelist)
    assert database_state() == before
    page_html = client.get(changelist).content.decode()
    assert f'value="{action}"' not in page_html  # not even offered


def test_staff_with_a_desk_permission_only_get_that_desk(world):
    client = Client()
    client.force_login(staff_with("view_revenue"))

    assert client.get("/admin/revenue/").status_code == 200
    before = database_state()
    assert client.get("/admin/reconciliation/").status_code == 403
    response = client.post(f"/admin/reconciliation/payments/{world['lost'].pk}/settle/", REASON)
    assert response.status_code == 403
    assert database_state() == before


def test_a_receipt_is_for_its_fan_and_for_staff_who_may_view_purchases(world):
    url = f"/purchases/{world['purchase'].pk}/receipt/"
    fan = Client()
    fan.force_login(world["fan"])
    support = Client()
    support.force_login(staff_with("view_purchase"))

    assert fan.get(url).status_code == 200
    assert support.get(url).status_code == 200
    assert visitor("staff").get(url).status_code == 404


# --- Pages that show each visitor their own: nobody else's ------------------------------


def csv_export(client, kind: str) -> str:
    response = client.get(f"/accounts/profile/export/{kind}.csv")
    assert response.status_code == 200
    return b"".join(response.streaming_content).decode()


def test_own_pages_show_nothing_of_anyone_elses(world):
    fan, artist = world["fan"], world["artist"]
    own = Client()
    own.force_login(fan)  # what the checks below must not find elsewhere is there for the fan
    assert "Cheap Thrill" in csv_export(own, "purchases")
    assert "Starter" in csv_export(own, "ledger") and "Starter" in csv_export(own, "payments")
    for who in ("other", "staff"):
        client = visitor(who)
        me = client.get("/accounts/profile/").wsgi_request.user
        assert me.pk not in (fan.pk, artist.pk)
        before = database_state()

        assert client.get("/api/purchases").json() == {"purchases": []}
        collection = client.get(f"/collection/?purchase={world['card_purchase'].pk}")
        assert "Cheap Thrill" not in collection.content.decode()
        assert "Dear Diary" not in collection.content.decode()
        sales = client.get("/studio/sales/").content.decode()
        assert "Frankie Fan" not in sales and "Cheap Thrill" not in sales
        studio = client.get("/studio/").content.decode()
        assert "Secret Draft" not in studio and "Cheap Thrill" not in studio
        balance = client.get("/api/credits/balance").json()
        assert balance["balance"] == 5
        fan_lots = set(CreditLot.objects.filter(user=fan).values_list("pk", flat=True))
        assert not {lot["id"] for lot in balance["lots"]} & fan_lots
        credits = client.get("/credits/").content.decode()
        assert "Frankie Fan" not in credits
        history = client.get("/api/credits/history").json()
        assert history["total"] == 1  # their own welcome gift, nothing of the fan's
        fan_entries = set(LedgerEntry.objects.filter(user=fan).values_list("pk", flat=True))
        assert not {entry["id"] for entry in history["entries"]} & fan_entries
        assert client.get("/api/credits/stats").json()["total_spent"] == 0
        for kind in ("ledger", "purchases", "payments"):
            export = csv_export(client, kind)
            assert "Cheap Thrill" not in export and "Starter" not in export, kind
        subscription = client.get("/account/subscription/")
        assert subscription.context["subscription"] is None
        assert database_state() == before
