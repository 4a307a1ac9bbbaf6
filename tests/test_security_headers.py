"""Security headers: a Content-Security-Policy on every page, inline scripts by nonce only.

The policy allows our own origin and what Stripe.js and the Payment Element need, and
nothing else external. Inline event handlers and style attributes are refused by such a
policy, so no page (nor template) may carry one.
"""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from accounts.models import User
from tests.factories import UserFactory
from tests.purchases_helpers import published_track

pytestmark = pytest.mark.django_db

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
STRIPE_HOSTS = {
    "https://js.stripe.com",
    "https://*.js.stripe.com",
    "https://api.stripe.com",
    "https://hooks.stripe.com",
    "https://checkout.stripe.com",
}
SCRIPT_TAG = re.compile(r"<script\b([^>]*)>", re.IGNORECASE)
# An attribute named on...= inside a tag (onclick, onsubmit, onload, ...).
EVENT_HANDLER = re.compile(r"<[a-zA-Z][^>]*\son[a-z]+\s*=", re.IGNORECASE)
STYLE_ATTRIBUTE = re.compile(r"<[a-zA-Z][^>]*\sstyle\s*=", re.IGNORECASE)
STYLE_ELEMENT = re.compile(r"<style\b", re.IGNORECASE)  # styles come from static files


@pytest.fixture(autouse=True)
def _test_mode(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.STRIPE_SECRET_KEY = ""
    settings.CREDITS_REQUIRE_SUBSCRIPTION = False


def policy(response) -> dict[str, list[str]]:
    header = response.get("Content-Security-Policy")
    assert header, f"no Content-Security-Policy on {response.request['PATH_INFO']}"
    directives = {}
    for part in header.split(";"):
        name, *values = part.split()
        directives[name] = values
    return directives


def staff_with(*codenames) -> User:
    staff = UserFactory()
    User.objects.filter(pk=staff.pk).update(is_staff=True)
    for codename in codenames:
        staff.user_permissions.add(Permission.objects.get(codename=codename))
    return User.objects.get(pk=staff.pk)


@pytest.fixture
def world():
    """An artist with a track for sale, a fan who started a card payment for it."""
    artist = UserFactory(display_name="Nova Lights")
    track = published_track(artist, price=9, title="Night Drive")
    fan = UserFactory()
    fan_client = Client()
    fan_client.force_login(fan)
    started = fan_client.post(f"/api/tracks/{track.pk}/purchase").json()
    assert started["status"] == "requires_payment", started
    return {
        "artist": artist,
        "track": track,
        "fan": fan,
        "checkout_url": started["checkout_url"],
    }


def pages(world) -> list[tuple[str, User | None, str]]:
    artist, fan, track = world["artist"], world["fan"], world["track"]
    admin = staff_with("use_reconciliation_desk", "view_revenue", "view_user")
    return [
        ("home", None, "/"),
        ("home signed in", fan, "/"),
        ("artist page with Buy buttons", fan, f"/artists/{artist.slug}/"),
        ("artist page anonymous", None, f"/artists/{artist.slug}/"),
        ("track page", fan, f"/tracks/{track.pk}/"),
        ("studio", artist, "/studio/"),
        ("studio sales", artist, "/studio/sales/"),
        ("credits", fan, "/credits/"),
        ("collection", fan, "/collection/"),
        ("subscribe", fan, "/subscribe/"),
        ("log in", None, "/accounts/login/"),
        ("sign up", None, "/accounts/signup/"),
        ("password reset", None, "/accounts/password-reset/"),
        ("test checkout", fan, world["checkout_url"]),
        ("not found", None, "/no-such-page/"),
        ("admin log in", None, "/admin/login/"),
        ("admin index", admin, "/admin/"),
        ("admin reconciliation", admin, "/admin/reconciliation/"),
        ("admin revenue", admin, "/admin/revenue/"),
        ("admin user page", admin, f"/admin/accounts/user/{fan.pk}/change/"),
    ]


def test_every_page_sends_the_policy_and_each_inline_script_carries_its_nonce(world):
    seen = []
    for name, who, url in pages(world):
        client = Client()
        if who is not None:
            client.force_login(who)
        response = client.get(url)
        assert response.status_code in (200, 404), (name, response.status_code)
        directives = policy(response)
        html = response.content.decode()
        nonces = {
            value.removeprefix("'nonce-").removesuffix("'")
            for value in directives["script-src"]
            if value.startswith("'nonce-")
        }
        for attributes in SCRIPT_TAG.findall(html):
            if "src=" in attributes:
                continue
            match = re.search(r'nonce="([^"]+)"', attributes)
            assert match and match.group(1) in nonces, (name, attributes)
        assert not EVENT_HANDLER.search(html), (name, EVENT_HANDLER.search(html).group())
        assert not STYLE_ATTRIBUTE.search(html), (name, STYLE_ATTRIBUTE.search(html).group())
        assert not STYLE_ELEMENT.search(html), name
        assert response["X-Content-Type-Options"] == "nosniff", name
        assert response["Referrer-Policy"] == "same-origin", name
        seen.append(name)
    assert len(seen) == len(pages(world))


def test_the_policy_allows_self_and_stripe_and_nothing_else_external(client):
    directives = policy(client.get("/"))

    assert directives["default-src"] == ["'self'"]
    assert directives["object-src"] == ["'none'"]
    assert directives["base-uri"] == ["'none'"]
    assert directives["frame-ancestors"] == ["'none'"]
    assert set(directives["script-src"]) >= {
        "'self'",
        "https://js.stripe.com",
        "https://*.js.stripe.com",
    }
    assert set(directives["frame-src"]) >= {
        "https://js.stripe.com",
        "https://*.js.stripe.com",
        "https://hooks.stripe.com",
    }
    assert "https://api.stripe.com" in directives["connect-src"]
    # Subscribing posts to us and is redirected to Stripe Checkout.
    assert "https://checkout.stripe.com" in directives["form-action"]
    for name, values in directives.items():
        assert "'unsafe-inline'" not in values, name
        assert "'unsafe-eval'" not in values, name
        assert "*" not in values and "https:" not in values, name
        external = {v for v in values if "://" in v or v.endswith(":")} - {"data:"}
        assert external <= STRIPE_HOSTS, (name, external - STRIPE_HOSTS)


def test_json_endpoints_and_redirects_carry_the_policy_too(client, user):
    assert policy(client.get("/studio/"))  # the log-in redirect
    client.force_login(user)
    assert policy(client.get("/api/credits/balance"))


def test_no_template_has_an_inline_handler_a_style_attribute_or_an_unnonced_script():
    for template in sorted(TEMPLATES.rglob("*.html")):
        where = template.relative_to(TEMPLATES)
        if where.parts[0] == "emails" or template.stem.endswith("_email"):
            continue  # e-mail bodies: mail clients need inline styles, and no CSP applies
        text = template.read_text()
        assert not EVENT_HANDLER.search(text), (where, EVENT_HANDLER.search(text).group())
        assert not STYLE_ATTRIBUTE.search(text), (where, STYLE_ATTRIBUTE.search(text).group())
        assert not STYLE_ELEMENT.search(text), where
        for attributes in SCRIPT_TAG.findall(text):
            if "src=" not in attributes:
                assert 'nonce="{{ request.csp_nonce }}"' in attributes, (where, attributes)


def production_settings(**env) -> dict:
    """Import the production settings in a fresh interpreter and return a few values."""
    names = [
        "DEBUG",
        "SESSION_COOKIE_SECURE",
        "CSRF_COOKIE_SECURE",
        "SESSION_COOKIE_HTTPONLY",
        "SECURE_SSL_REDIRECT",
        "SECURE_HSTS_SECONDS",
        "SECURE_PROXY_SSL_HEADER",
        "SECURE_CONTENT_TYPE_NOSNIFF",
        "SECURE_REFERRER_POLICY",
    ]
    code = (
        "import json, django; from django.conf import settings; django.setup(); "
        f"print(json.dumps({{n: getattr(settings, n) for n in {names!r}}}))"
    )
    environment = {
        "DJANGO_SETTINGS_MODULE": "soundstudio.settings.production",
        "SECRET_KEY": "x" * 60,
        "ALLOWED_HOSTS": "soundstudio.example.com",
        "STRIPE_TEST_MODE": "true",
        **env,
    }
    import os

    result = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, **environment},
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_production_settings_want_https_and_secure_cookies():
    values = production_settings()

    assert values["DEBUG"] is False
    assert values["SESSION_COOKIE_SECURE"] and values["CSRF_COOKIE_SECURE"]
    assert values["SESSION_COOKIE_HTTPONLY"]
    assert values["SECURE_SSL_REDIRECT"]
    assert values["SECURE_HSTS_SECONDS"] >= 60 * 60 * 24 * 365
    assert values["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert values["SECURE_CONTENT_TYPE_NOSNIFF"]
    assert values["SECURE_REFERRER_POLICY"] == "same-origin"


def test_dev_and_test_keep_working_over_http(settings, client):
    assert not settings.SESSION_COOKIE_SECURE and not settings.SECURE_SSL_REDIRECT
    assert client.get("/").status_code == 200
