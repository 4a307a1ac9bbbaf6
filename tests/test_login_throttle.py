"""Log-in and password-reset throttling (issue 12, "Hardening").

After 10 failed log-ins for one e-mail, or 50 from one IP address, within 15 minutes,
further attempts are refused for 15 minutes with HTTP 429 and a clear message, even
with the right password; the lock-out is logged without the password. Password reset
answers the same whether or not the e-mail has an account, and is throttled too.
"""

import itertools
import logging
from datetime import timedelta

import pytest
import time_machine
from django.core import mail
from django.core.cache import cache
from django.test import Client
from django.utils import timezone

from accounts import throttle
from accounts.services import register_user
from accounts.throttle import client_ip

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"  # noqa: S105
WRONG = "not the password"  # noqa: S105
LOGIN = "/accounts/login/"
ADMIN_LOGIN = "/admin/login/"
RESET = "/accounts/password-reset/"
LOCKED_MESSAGE = "Too many failed log-in attempts"
_addresses = (f"203.0.113.{n}" for n in itertools.count(1))  # TEST-NET-3: one per test


@pytest.fixture(autouse=True)
def _fresh_counts():
    """The counts live in Redis, not in the test database: start and end with none."""

    def forget():
        client = throttle._redis()
        for key in client.scan_iter(match=cache.make_key("throttle:*")):
            client.delete(key)

    forget()
    yield
    forget()


@pytest.fixture
def ip():
    """A client address of this test's own, so tests never share an IP's count."""
    return next(_addresses)


@pytest.fixture
def browser(ip):
    return Client(REMOTE_ADDR=ip)


@pytest.fixture
def ana(db):
    return register_user(email="ana@example.com", password=PASSWORD, display_name="Ana")


def log_in(client, email, password, url=LOGIN):
    return client.post(url, {"username": email, "password": password})


def fail(client, email, times, url=LOGIN):
    for _ in range(times):
        response = log_in(client, email, WRONG, url)
        assert response.status_code == 200, response.status_code  # the form, with its error


def logged_in(response) -> bool:
    return response.status_code == 302 and "_auth_user_id" in response.wsgi_request.session


def test_ten_failures_lock_the_email_even_against_the_right_password(browser, ana):
    fail(browser, "ana@example.com", 10)

    response = log_in(browser, "ana@example.com", PASSWORD)

    assert response.status_code == 429
    assert LOCKED_MESSAGE in response.content.decode()
    assert "15 minutes" in response.content.decode()
    assert "_auth_user_id" not in browser.session


def test_nine_failures_still_let_the_right_password_in(browser, ana):
    fail(browser, "ana@example.com", 9)

    assert logged_in(log_in(browser, "ana@example.com", PASSWORD))


def test_the_lock_is_per_email_case_insensitively_and_follows_the_email_across_ips(ana, ip):
    register_user(email="bo@example.com", password=PASSWORD, display_name="Bo")
    fail(Client(REMOTE_ADDR=ip), "Ana@Example.com", 10)

    # Another e-mail from the same address is unaffected...
    assert logged_in(log_in(Client(REMOTE_ADDR=ip), "bo@example.com", PASSWORD))
    # ...and the locked e-mail stays locked from another address.
    elsewhere = Client(REMOTE_ADDR=next(_addresses))
    assert log_in(elsewhere, "ana@example.com", PASSWORD).status_code == 429


def test_fifty_failures_from_one_ip_lock_that_ip_for_every_email(browser, ana):
    for n in range(50):
        fail(browser, f"nobody{n % 7}@example.com", 1)  # no e-mail reaches its own limit

    response = log_in(browser, "ana@example.com", PASSWORD)

    assert response.status_code == 429
    assert "Too many failed log-in attempts from your network" in response.content.decode()
    assert logged_in(log_in(Client(REMOTE_ADDR=next(_addresses)), "ana@example.com", PASSWORD))


def test_after_fifteen_minutes_the_right_password_works_again(browser, ana):
    start = timezone.now()
    with time_machine.travel(start, tick=False) as clock:
        fail(browser, "ana@example.com", 10)
        clock.move_to(start + timedelta(minutes=14, seconds=59))
        assert log_in(browser, "ana@example.com", PASSWORD).status_code == 429

        clock.move_to(start + timedelta(minutes=15, seconds=1))
        assert logged_in(log_in(browser, "ana@example.com", PASSWORD))


def test_failures_older_than_fifteen_minutes_do_not_count(browser, ana):
    start = timezone.now()
    with time_machine.travel(start, tick=False) as clock:
        fail(browser, "ana@example.com", 9)
        clock.move_to(start + timedelta(minutes=16))
        fail(browser, "ana@example.com", 9)

        assert logged_in(log_in(browser, "ana@example.com", PASSWORD))


def test_a_successful_log_in_clears_the_emails_failures(browser, ana):
    fail(browser, "ana@example.com", 9)
    assert logged_in(log_in(browser, "ana@example.com", PASSWORD))
    browser.logout()

    fail(browser, "ana@example.com", 9)
    assert logged_in(log_in(browser, "ana@example.com", PASSWORD))


def test_the_lock_out_is_logged_once_without_the_password(browser, ana, ip, caplog):
    with caplog.at_level(logging.WARNING, logger="accounts.throttle"):
        fail(browser, "ana@example.com", 10)
        log_in(browser, "ana@example.com", PASSWORD)
        log_in(browser, "ana@example.com", WRONG)

    lines = [r for r in caplog.records if r.name == "accounts.throttle"]
    assert len(lines) == 1, [r.getMessage() for r in lines]
    text = lines[0].getMessage()
    assert "ana@example.com" in text and ip in text and "15 minutes" in text
    assert WRONG not in text and PASSWORD not in text
    assert WRONG not in caplog.text and PASSWORD not in caplog.text


def test_admin_log_in_is_throttled_too(browser, ana):
    fail(browser, "ana@example.com", 10, url=ADMIN_LOGIN)

    response = log_in(browser, "ana@example.com", PASSWORD, url=ADMIN_LOGIN)

    assert response.status_code == 429
    assert LOCKED_MESSAGE in response.content.decode()


# --- The client's address -----------------------------------------------------------


def request_with(rf, **meta):
    return rf.get("/", REMOTE_ADDR="198.51.100.7", **meta)


def test_x_forwarded_for_is_ignored_unless_a_trusted_proxy_is_configured(rf, settings):
    settings.TRUSTED_PROXY_HEADER = ""
    assert client_ip(request_with(rf, HTTP_X_FORWARDED_FOR="1.2.3.4")) == "198.51.100.7"


def test_behind_a_trusted_proxy_the_address_it_saw_is_used_not_what_the_client_sent(rf, settings):
    settings.TRUSTED_PROXY_HEADER = "X-Forwarded-For"
    settings.TRUSTED_PROXY_COUNT = 1
    # The client sent "1.2.3.4"; our load balancer appended the address it saw.
    request = request_with(rf, HTTP_X_FORWARDED_FOR="1.2.3.4, 192.0.2.44")
    assert client_ip(request) == "192.0.2.44"

    settings.TRUSTED_PROXY_COUNT = 2  # a CDN in front of the load balancer
    assert client_ip(request) == "1.2.3.4"
    # Fewer entries than proxies, or garbage: the header is not to be trusted.
    assert client_ip(request_with(rf, HTTP_X_FORWARDED_FOR="192.0.2.44")) == "198.51.100.7"
    settings.TRUSTED_PROXY_COUNT = 1
    assert client_ip(request_with(rf, HTTP_X_FORWARDED_FOR="nonsense")) == "198.51.100.7"
    assert client_ip(request_with(rf)) == "198.51.100.7"


def test_a_spoofed_forwarded_for_does_not_escape_the_ip_limit(ana, ip):
    for n in range(50):
        client = Client(REMOTE_ADDR=ip, HTTP_X_FORWARDED_FOR=f"192.0.2.{n}")
        fail(client, f"nobody{n % 7}@example.com", 1)

    client = Client(REMOTE_ADDR=ip, HTTP_X_FORWARDED_FOR="192.0.2.250")
    assert log_in(client, "ana@example.com", PASSWORD).status_code == 429


# --- Password reset -----------------------------------------------------------------


def test_password_reset_answers_the_same_for_known_and_unknown_emails(ana, ip):
    known = Client(REMOTE_ADDR=ip).post(RESET, {"email": "ana@example.com"}, follow=True)
    unknown = Client(REMOTE_ADDR=ip).post(RESET, {"email": "nobody@example.com"}, follow=True)

    assert known.status_code == unknown.status_code == 200
    assert (
        known.redirect_chain == unknown.redirect_chain == [("/accounts/password-reset/sent/", 302)]
    )
    assert known.content == unknown.content
    assert [m.to for m in mail.outbox] == [["ana@example.com"]]


def test_password_reset_is_throttled_alike_for_known_and_unknown_emails(ana, ip):
    answers = {}
    for email in ("ana@example.com", "nobody@example.com"):
        client = Client(REMOTE_ADDR=ip)
        codes = [client.post(RESET, {"email": email}).status_code for _ in range(6)]
        answers[email] = codes
        refused = client.post(RESET, {"email": email})
        assert "Too many password reset requests" in refused.content.decode()
    assert answers["ana@example.com"] == answers["nobody@example.com"] == [302] * 5 + [429]
    assert len(mail.outbox) == 5


def test_password_reset_from_one_ip_is_throttled(ana, ip):
    client = Client(REMOTE_ADDR=ip)
    codes = [
        client.post(RESET, {"email": f"someone{n}@example.com"}).status_code for n in range(21)
    ]

    assert codes == [302] * 20 + [429]
    assert (
        Client(REMOTE_ADDR=next(_addresses)).post(RESET, {"email": "x@example.com"}).status_code
        == 302
    )
