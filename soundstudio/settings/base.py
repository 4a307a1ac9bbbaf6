"""Settings shared by every environment. Values come from the environment only."""

from pathlib import Path

import environ
from celery.schedules import crontab
from csp.constants import NONCE, NONE, SELF

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env")  # a missing .env is fine

SECRET_KEY = env("SECRET_KEY", default="")
DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "core",
    "accounts",
    "credits",
    "books",
    "subscriptions",
    "tracks",
    "purchases",
    "webhooks",
    "payments",
    "notices",
    "csp",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "accounts.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
]

ROOT_URLCONF = "soundstudio.urls"
WSGI_APPLICATION = "soundstudio.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "core.context_processors.site",
                "credits.context_processors.header_balance",
            ],
        },
    },
]

DATABASES = {"default": env.db("DATABASE_URL")}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# The session query every signed-in request makes runs as a prepared statement
# (core.db). Behind PgBouncer in transaction mode that needs PgBouncer >= 1.21 with
# max_prepared_statements set; else turn it off.
DATABASE_PREPARED_STATEMENTS = env.bool("DATABASE_PREPARED_STATEMENTS", default=True)
# Plan prepared statements and PL/pgSQL queries once per connection: left to choose,
# PostgreSQL sometimes planned the artist page's query afresh on every view, which
# cost a quarter of the page. Only our own prepared statements (core.db) and PL/pgSQL
# functions are affected; Django binds on the client. PgBouncer refuses this startup
# option: there, set it false and `ALTER ROLE <app> SET plan_cache_mode =
# force_generic_plan` instead.
if env.bool("DATABASE_GENERIC_PLANS", default=True):
    _options = DATABASES["default"].setdefault("OPTIONS", {})
    _options["options"] = f"{_options.get('options', '')} -c plan_cache_mode=force_generic_plan"
# Behind PgBouncer in transaction mode: server-side cursors (.iterator()) do not survive.
DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = env.bool(
    "DISABLE_SERVER_SIDE_CURSORS", default=False
)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env("REDIS_URL")
CACHES = {
    "default": {
        "BACKEND": "core.cache.FastRedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "soundstudio",
        "TIMEOUT": 3600,
    }
}

CSRF_FAILURE_VIEW = "core.views.csrf_failure"

# --- Browser security headers -------------------------------------------------------
# Content-Security-Policy (django-csp): our own origin, plus what Stripe.js and the
# Payment Element need (Stripe's integration security guide), and nothing else
# external. Inline scripts run only with the request's nonce
# (`<script nonce="{{ request.csp_nonce }}">`); inline event handlers and style
# attributes are refused, so templates use static JS and CSS classes instead.
# Not allowed: maps.googleapis.com (only Stripe's Address Element autocomplete needs it).
STRIPE_JS = ["https://js.stripe.com", "https://*.js.stripe.com"]
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE, *STRIPE_JS],
        "style-src": [SELF],
        "img-src": [SELF],
        "font-src": [SELF],
        "media-src": [SELF],  # audio is served by our views, whatever the storage
        "connect-src": [SELF, "https://api.stripe.com"],
        "frame-src": [*STRIPE_JS, "https://hooks.stripe.com"],
        # Subscribing posts to us, then redirects to Stripe Checkout.
        "form-action": [SELF, "https://checkout.stripe.com"],
        "object-src": [NONE],
        "base-uri": [NONE],
        "frame-ancestors": [NONE],
    }
}
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
# Sessions live in PostgreSQL with their user's id beside them: accounts.sessions reads
# a request's session, its user and what the page asked for in one query.
SESSION_ENGINE = env("SESSION_ENGINE", default="accounts.sessions")
# The pages' scripts read the CSRF cookie for their fetch() calls: it stays readable.
CSRF_COOKIE_HTTPONLY = False

# The client's address for the log-in throttle (accounts.throttle) is REMOTE_ADDR,
# unless the app runs behind proxies of ours: then name the header they set (e.g.
# X-Forwarded-For) and how many of them append to it. Never trust it otherwise.
TRUSTED_PROXY_HEADER = env("TRUSTED_PROXY_HEADER", default="")
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=1)

AUTH_USER_MODEL = "accounts.User"
# accounts.backends.AccountBackend is Django's ModelBackend with a cheaper per-request
# user load. ModelBackend stays listed so that sessions opened before it keep working
# (a session remembers the backend that logged it in); drop it after SESSION_COOKIE_AGE.
AUTHENTICATION_BACKENDS = [
    "accounts.backends.AccountBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "home"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "var" / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_URL = "media/"
MEDIA_ROOT = env.path("MEDIA_ROOT", default=BASE_DIR / "var" / "media")
STORAGES = {
    # Track audio. Any Django storage works, e.g. S3-compatible with django-storages:
    # MEDIA_STORAGE_BACKEND=storages.backends.s3.S3Storage (plus its AWS_* settings).
    "default": {
        "BACKEND": env(
            "MEDIA_STORAGE_BACKEND", default="django.core.files.storage.FileSystemStorage"
        )
    },
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# E-mail (core/mail.py sends it, always from a Celery task): EMAIL_URL names the server,
# parsed by django-environ (smtp+tls://user:password@host:587, consolemail://, ...);
# EMAIL_BACKEND, if set, picks another backend class (an API backend such as Anymail's).
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="SoundStudio <no-reply@soundstudio.test>")


def email_settings(default_url: str) -> dict:
    """The EMAIL_* settings from EMAIL_URL (and EMAIL_BACKEND), without empty values."""
    parsed = env.email_url("EMAIL_URL", default=default_url)
    parsed["EMAIL_BACKEND"] = env("EMAIL_BACKEND", default=parsed["EMAIL_BACKEND"])
    return {key: value for key, value in parsed.items() if value not in (None, "")}


globals().update(email_settings("consolemail://"))  # development: mail in the console

# Celery: Redis is the broker and the result store.
CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = REDIS_URL
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_EXPIRES = 3600
CELERY_TIMEZONE = "UTC"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULE = {
    "expire-credits": {"task": "credits.expire_credits", "schedule": crontab(minute=7)},
    "ledger-audit": {"task": "books.audit", "schedule": crontab(hour=3, minute=17)},
    "retry-webhooks": {"task": "webhooks.retry_failed", "schedule": crontab(minute="*/5")},
    "monthly-allowance-reset": {
        "task": "subscriptions.open_month",
        "schedule": crontab(minute=0, hour=0, day_of_month=1),
    },
    "reconcile-payments": {"task": "payments.reconcile", "schedule": crontab(minute="*/15")},
    "stuck-generations": {
        "task": "tracks.fail_stuck_generations",
        "schedule": crontab(minute="*/10"),
    },
    "send-unsent-mail": {"task": "notices.send_unsent", "schedule": crontab(minute="*/10")},
    "expiring-credits": {"task": "notices.expiring_credits", "schedule": crontab(hour=9, minute=3)},
    "clear-sessions": {"task": "accounts.clear_sessions", "schedule": crontab(hour=4, minute=41)},
}
CELERY_BEAT_SCHEDULE_FILENAME = str(BASE_DIR / "var" / "celerybeat-schedule")

# Stripe (section 2 of DESIGN.md). No key means the built-in test gateway.
STRIPE_SECRET_KEY = env("STRIPE_SECRET_KEY", default="")
STRIPE_PUBLISHABLE_KEY = env("STRIPE_PUBLISHABLE_KEY", default="")
STRIPE_WEBHOOK_SECRET = env("STRIPE_WEBHOOK_SECRET", default="")
STRIPE_API_BASE = env("STRIPE_API_BASE", default="")
STRIPE_TEST_MODE = not STRIPE_SECRET_KEY
# Test mode must be asked for by name where money is real: production settings and the
# deploy check (core.checks) refuse it otherwise, so a forgotten key never means free
# credits.
STRIPE_TEST_MODE_REQUESTED = env.bool("STRIPE_TEST_MODE", default=False)

# SoundStudio's share of every fan purchase, in percent (rounded half up to the cent).
PLATFORM_FEE_PERCENT = env.int("PLATFORM_FEE_PERCENT", default=15)

CREDITS_REQUIRE_SUBSCRIPTION = env.bool("CREDITS_REQUIRE_SUBSCRIPTION", default=True)
# Database connections the hourly expiry job uses side by side (disjoint users).
CREDITS_EXPIRE_WORKERS = env.int("CREDITS_EXPIRE_WORKERS", default=2)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
    },
    "handlers": {"stdout": {"class": "logging.StreamHandler", "formatter": "json"}},
    "root": {"handlers": ["stdout"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
    },
}
SITE_URL = env("SITE_URL", default="http://127.0.0.1:8000")

# Essential subscription (DESIGN.md section 1).
STRIPE_ESSENTIAL_PRICE_ID = env("STRIPE_ESSENTIAL_PRICE_ID", default="")
ESSENTIAL_MONTHLY_GENERATIONS = 5
ESSENTIAL_TERMS_VERSION = env("ESSENTIAL_TERMS_VERSION", default="2026-11")
TRACKS_ENGINE = env("TRACKS_ENGINE", default="tracks.engine.procedural.ProceduralEngine")
