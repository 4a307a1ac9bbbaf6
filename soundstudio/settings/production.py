"""Production: every secret from the environment, no defaults; HTTPS everywhere."""

from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F403
from .base import STRIPE_TEST_MODE, STRIPE_TEST_MODE_REQUESTED, email_settings, env

DEBUG = False

if STRIPE_TEST_MODE and not STRIPE_TEST_MODE_REQUESTED:
    # No Stripe key would run the built-in test gateway: free credits and free
    # Essential for anyone. Refuse, unless test mode is wanted and said so.
    raise ImproperlyConfigured(
        "STRIPE_SECRET_KEY is not set. Set it, or set STRIPE_TEST_MODE=true to run "
        "the built-in test gateway (no real payments) on purpose."
    )
SECRET_KEY = env("SECRET_KEY")  # no default: refuse to start without one
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS")
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=60 * 60 * 24 * 365)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SECURE_CONTENT_TYPE_NOSNIFF = True
# E-mail through EMAIL_URL's server (an SMTP relay by default, never the console).
globals().update(email_settings("smtp://localhost:25"))
