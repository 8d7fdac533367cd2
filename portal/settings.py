"""Settings for the customer portal, read from the environment.

The embedded default (no environment at all, DEBUG=1) runs on SQLite with a
local-memory cache and console e-mail. Production sets DATABASE_URL, REDIS_URL,
SECRET_KEY and the e-mail variables; see the README's deployment section.
"""

import os
from pathlib import Path

import dj_database_url
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    return int(value) if value.strip() else default


DEBUG = env_bool("DEBUG", default=False)

SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        # Refuse to start rather than run production on a guessable key.
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set the SECRET_KEY environment variable "
            "(or DEBUG=1 for local development)."
        )
    SECRET_KEY = "django-insecure-development-only-key-do-not-use-in-production"  # noqa: S105

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost" if DEBUG else "")

INSTALLED_APPS = [
    "accounts",
    "twofactor",
    "twofactor.apps.TwoFactorAdminConfig",  # django.contrib.admin, behind the second factor
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",  # naturaltime ("2 minutes ago") in the security log
    "django_htmx",
    "django_tasks",
    "django_tasks_db",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Static files get the policy too; a 503 from the outage middleware keeps it.
    "csp.middleware.CSPMiddleware",
    # A Content-Length that is not a number: 400 before anything reads the body.
    "portal.middleware.ContentLengthMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Before sessions and auth: a database outage anywhere below becomes a plain 503.
    "portal.middleware.DatabaseOutageMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # IP and browser of the request, for the security log's signal receivers.
    "accounts.middleware.ActionOriginMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # After HtmxMiddleware (it reads request.htmx): a lapsed session is a page change.
    "portal.htmx.HtmxLoginRedirectMiddleware",
    # Gives a browser that completed a login its device cookie (accounts.device_cookies).
    "accounts.device_cookies.DeviceCookieMiddleware",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"

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
                "portal.context_processors.product",
            ],
        },
    },
]

# --- Data ----------------------------------------------------------------
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
        conn_max_age=env_int("DB_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
if os.environ.get("TEST_DATABASE_NAME"):
    # Lets two test runs share one PostgreSQL server without clobbering each other.
    DATABASES["default"]["TEST"] = {"NAME": os.environ["TEST_DATABASE_NAME"]}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "OPTIONS": {
                "CLIENT_CLASS": "django_redis.client.DefaultClient",
                # A Redis outage degrades to cache misses instead of 500s:
                # sessions and throttles live in the database.
                "IGNORE_EXCEPTIONS": True,
                "SOCKET_CONNECT_TIMEOUT": 0.5,
                "SOCKET_TIMEOUT": 0.5,
            },
        }
    }
    DJANGO_REDIS_IGNORE_EXCEPTIONS = True
    DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS = True
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Sessions live in the database only, shared by every app server. Not
# cached_db: with cache errors ignored, a logout or key rotation during a Redis
# blip would delete the row but leave the cached copy, reviving the session.
SESSION_ENGINE = "django.contrib.sessions.backends.db"

# --- Authentication ---------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    # The password check, with the limits around it (per device cookie, or per
    # account and network for unknown browsers; accounts/login_throttle.py). It
    # ends authenticate() on every refusal, so the one below never checks a
    # password: it is listed only for sessions logged in before it was added.
    "accounts.login_throttle.ThrottleBackend",
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "accounts:profile"
LOGOUT_REDIRECT_URL = "accounts:login"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE", 60 * 60 * 24 * 14)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = True

# --- Production security (manage.py check --deploy passes with DEBUG off) ---------
# Secure cookies are on whenever DEBUG is off. Only a server reached over plain
# http (the loopback tests and benchmarks) sets SECURE_COOKIES=0, and such a
# server cannot redirect to https either, so the redirect follows the same switch.
SECURE_COOKIES = env_bool("SECURE_COOKIES", default=not DEBUG)
SESSION_COOKIE_SECURE = SECURE_COOKIES
CSRF_COOKIE_SECURE = SECURE_COOKIES
if SECURE_COOKIES:
    # Browsers accept a __Host- cookie only with Secure, Path=/ and no Domain, so a
    # sibling subdomain (or a man in the middle on http) cannot plant or overwrite it.
    SESSION_COOKIE_NAME = "__Host-sessionid"
    CSRF_COOKIE_NAME = "__Host-csrftoken"
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", default=SECURE_COOKIES)
# Behind a TLS-terminating proxy the app sees http; trust the proxy's header
# only when told its name (e.g. SECURE_PROXY_SSL_HEADER=X-Forwarded-Proto),
# because a client could send the same header straight to an exposed app server.
if os.environ.get("SECURE_PROXY_SSL_HEADER"):
    _proxy_header = os.environ["SECURE_PROXY_SSL_HEADER"].strip().upper().replace("-", "_")
    SECURE_PROXY_SSL_HEADER = (f"HTTP_{_proxy_header}", "https")
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 60 * 60 * 24 * 365)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", default=True)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")
CSRF_FAILURE_VIEW = "portal.htmx.csrf_failure"

# Content-Security-Policy (django-csp): no inline script or style anywhere. htmx
# comes from a static file and its inline indicator styles are switched off in
# base.html; the enrollment QR code is a data: image.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "img-src": [SELF, "data:"],
        "style-src": [SELF],
        "script-src": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
        "base-uri": [NONE],
        "object-src": [NONE],
    }
}

# Password guessing (login and "confirm it's you"), counted in the database
# (accounts/login_throttle.py). Format: "<count>/<s|m|h|d>", or "<count>/<n><unit>".
# A browser that completed a login for the account (its device cookie) has its
# own budget; all other browsers share the account's and their network's, so a
# stranger cannot lock the owner's own browsers out.
LOGIN_FAILURE_RATE_PER_DEVICE = os.environ.get("LOGIN_FAILURE_RATE_PER_DEVICE", "10/h")
LOGIN_FAILURE_RATE_PER_ACCOUNT = os.environ.get("LOGIN_FAILURE_RATE_PER_ACCOUNT", "20/h")
LOGIN_FAILURE_RATE_PER_NETWORK = os.environ.get("LOGIN_FAILURE_RATE_PER_NETWORK", "100/h")
# Password-reset e-mails: one per address every few minutes, a daily cap per
# address and an hourly one per network (beyond them the page looks the same
# but nothing is sent; the owner's own browsers skip the two caps).
RESET_MAIL_SPACING = os.environ.get("RESET_MAIL_SPACING", "1/5m")
RESET_MAIL_RATE_PER_ADDRESS = os.environ.get("RESET_MAIL_RATE_PER_ADDRESS", "24/d")
RESET_MAIL_RATE_PER_NETWORK = os.environ.get("RESET_MAIL_RATE_PER_NETWORK", "20/h")
# E-mail change confirmation links: spaced per target address like reset mails,
# and a few per account an hour (they go to addresses nobody has confirmed).
EMAIL_CHANGE_RATE_PER_ACCOUNT = os.environ.get("EMAIL_CHANGE_RATE_PER_ACCOUNT", "5/h")
# The device cookie (see accounts.device_cookies); __Host- like the session's.
DEVICE_COOKIE_NAME = "__Host-device" if SECURE_COOKIES else "device"

# How many reverse proxies in front of the app append to X-Forwarded-For.
# 0 (the default) means the header is ignored: it is trivially forged.
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0)

# --- Two-factor -----------------------------------------------------------
TWOFACTOR_ISSUER = os.environ.get("TWOFACTOR_ISSUER", "Customer Portal")
# Comma-separated Fernet keys, newest first. Empty: a key derived from SECRET_KEY.
TWOFACTOR_ENCRYPTION_KEYS = env_list("TWOFACTOR_ENCRYPTION_KEYS")

# --- I18N / time -----------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Static files ------------------------------------------------------------
STATIC_URL = "static/"
# Env-configurable so a test run can collect into its own folder.
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT") or BASE_DIR / "staticfiles")
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

# --- E-mail ------------------------------------------------------------------
EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
# No default host: empty means "never configured", which accounts/checks.py
# tells apart from a real server so `check --deploy` can refuse it.
EMAIL_HOST = os.environ.get("EMAIL_HOST", "")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS")
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10)
if os.environ.get("EMAIL_FILE_PATH"):
    # For the file backend only (the integration tests read what the worker sent).
    EMAIL_FILE_PATH = os.environ["EMAIL_FILE_PATH"]
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "Customer Portal <no-reply@localhost>")

# --- Tasks: e-mail leaves the request ---------------------------------------------
# Every e-mail (reset links, security notices) is queued in the database after
# the commit and sent by a worker: `manage.py db_worker` (`make run` starts one).
TASKS = {
    "default": {
        "BACKEND": os.environ.get("TASKS_BACKEND", "django_tasks_db.DatabaseBackend"),
        "QUEUES": ["default"],
    }
}

# --- Logging: never a secret or a code in a log line (see twofactor tests) ---
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
}

PRODUCT_NAME = "Customer Portal"
# "Contact support" on the pages (a help page, else a mailto:) and in security e-mails.
# check --deploy warns when neither is set (accounts.W004).
SUPPORT_URL = os.environ.get("SUPPORT_URL", "")
# The portal's public address for links in e-mails, e.g. https://portal.example.com
# (portal/site.py). check --deploy warns without it (accounts.W005).
SITE_URL = os.environ.get("SITE_URL", "")
SUPPORT_EMAIL = os.environ.get("SUPPORT_EMAIL", "support@localhost" if DEBUG else "")

# Security log: events older than this are deleted by `manage.py prune_security_events`.
SECURITY_EVENT_RETENTION_DAYS = env_int("SECURITY_EVENT_RETENTION_DAYS", 365)
