"""Settings for the customer portal, read from the environment.

The embedded default (no environment at all, DEBUG=1) runs on SQLite with a
local-memory cache and console e-mail. Production sets DATABASE_URL, REDIS_URL,
SECRET_KEY and the e-mail variables; see the README's deployment section.
A value that does not parse (DEBUG=maybe, SESSION_COOKIE_AGE=2w, a rate such as
10/week, a database or Redis URL with an unknown scheme) stops start-up with an
error that names the variable.
"""

import logging
import re
from pathlib import Path
from typing import Any

import dj_database_url
import environ  # type: ignore[import-untyped]
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


class StrictEnv(environ.Env):
    # django-environ with three decisions of our own:
    # - a value that does not parse stops start-up with an ImproperlyConfigured that
    #   names the variable. django-environ reads DEBUG=maybe as False and lets int()'s
    #   ValueError out without the name, so a typo would pass or leave people guessing.
    # - blank numbers and switches (DEBUG= in a compose file) mean "the default", as
    #   they always have here; a blank string stays blank.
    # - a value is taken literally. django-environ reads "$NAME" as "the value of
    #   NAME", and a SECRET_KEY (Django's generator uses "$") or a password may start
    #   with "$": it would silently become another variable's value, or the default.

    # What DEBUG=1 has always accepted, and the matching opposites. Anything else
    # ("maybe", "2", django-environ's "ok" and "y") is refused: before, any other word
    # read as False, so SECURE_COOKIES=2 quietly turned the protection off.
    TRUE_WORDS = ("1", "true", "yes", "on")
    FALSE_WORDS = ("0", "false", "no", "off")
    # The grammar of accounts.rate_windows.Rate.parse, which settings cannot import
    # (it needs the app registry); tests/portal/test_settings_env.py keeps the two in step.
    RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*([smhd])\s*$")

    def get_value(
        self,
        var: str,
        cast: Any = None,
        default: Any = environ.Env.NOTSET,
        parse_default: bool = False,
    ) -> Any:
        if cast is None and default is not None and default is not self.NOTSET:
            cast = type(default)  # django-environ's smart cast: env("X", default=5) is an int
        value = self.ENVIRON.get(var)
        if value is None or (cast in (bool, int) and not value.strip()):
            if default is self.NOTSET:
                raise ImproperlyConfigured(f"Set the {var} environment variable")
            if not (parse_default and isinstance(default, str)):
                return default
            value = default  # env.url() wants even its default parsed
        try:
            return self.parse_value(value, cast)
        except ValueError as exc:
            raise ImproperlyConfigured(f"{var}: {exc}") from None

    @classmethod
    def parse_value(cls, value: Any, cast: Any) -> Any:
        if cast is bool:
            word = value.strip().lower()
            if word not in cls.TRUE_WORDS + cls.FALSE_WORDS:
                raise ValueError(
                    f"expected a boolean ({', '.join(cls.TRUE_WORDS)} "
                    f"or {', '.join(cls.FALSE_WORDS)}), got {value!r}"
                )
            return word in cls.TRUE_WORDS
        if cast is int:
            try:
                return int(value)
            except ValueError:
                raise ValueError(f"expected an integer, got {value!r}") from None
        if cast is list:
            # Items trimmed, empty ones dropped: "a.com, b.com," is ["a.com", "b.com"]
            # (django-environ would keep " b.com", which no Host header matches).
            return [item.strip() for item in value.split(",") if item.strip()]
        return super().parse_value(value, cast)

    def choice(self, var: str, *, default: str, choices: list[str]) -> str:
        value: str = self.str(var, default=default)
        if value not in choices:
            raise ImproperlyConfigured(
                f"{var}: expected one of {', '.join(choices)}, got {value!r}"
            )
        return value

    def rate(self, var: str, *, default: str) -> str:
        # Checked here so a typo stops start-up instead of failing the first login
        # with a 500. The setting stays text: the throttle parses it when it runs,
        # so tests can override it.
        value: str = self.str(var, default=default)
        match = self.RATE.match(value)
        # A zero count or a zero period ("1/0m", which Rate.parse takes) would switch
        # the limit off.
        if not match or int(match[1]) < 1 or (match[2] and int(match[2]) < 1):
            raise ImproperlyConfigured(
                f"{var}: expected a rate <count>/<s|m|h|d> or <count>/<n><unit>, "
                f"e.g. '20/h' or '1/5m', got {value!r}"
            )
        return value

    def database(self, var: str, *, default: str, **options: Any) -> dict[str, Any]:
        # dj-database-url, not django-environ's db_url, which parses differently: it
        # leaves a %2F-quoted socket directory quoted in HOST, reads "+" in a path as a
        # space, keeps ?pool=false as the (true) string "false", and takes an unknown
        # scheme ("postgress://") as an ENGINE that fails only on the first query.
        url: str = self.str(var, default=default)
        try:
            return dict(dj_database_url.parse(url, **options))
        except ValueError as exc:
            # Its messages name the scheme at most, never the URL (it holds the password).
            raise ImproperlyConfigured(f"{var}: {exc}") from None

    def redis_url(self, var: str) -> str:
        # django-redis splits a comma-separated LOCATION (primary first) and hands each
        # URL to redis-py. A wrong one would fail the first cache call with a 500 (the
        # ignored exceptions are outages, not configuration), so redis-py's own parser
        # checks them here. Its messages quote a scheme or a port, never the password.
        value: str = self.str(var, default="")
        if not value:
            return value
        # Imported only when needed: redis-py is slow to load and the embedded mode has no Redis.
        from redis.connection import parse_url

        for location in filter(None, value.split(",")):
            try:
                parse_url(location)
            except ValueError as exc:
                raise ImproperlyConfigured(f"{var}: {exc}") from None
        return value


env = StrictEnv()

DEBUG = env.bool("DEBUG", default=False)

SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY.strip():  # blank or spaces only: as good as none
    if not DEBUG:
        # Refuse to start rather than run production on a guessable key.
        raise ImproperlyConfigured(
            "SECRET_KEY is not set (or blank). Set the SECRET_KEY environment variable "
            "(or DEBUG=1 for local development)."
        )
    SECRET_KEY = "django-insecure-development-only-key-do-not-use-in-production"  # noqa: S105

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"] if DEBUG else [])

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
    # The language before login: the picker's cookie, else Accept-Language.
    "django.middleware.locale.LocaleMiddleware",
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
    # A session ended from another browser (or by staff) is logged out here, on any server.
    "accounts.session_records.SessionRecordMiddleware",
    # After the record check (it must read the session before request.user does): the
    # user's own language and time zone for the rest of the request.
    "accounts.preferences.UserPreferencesMiddleware",
    # The security policy: past their deadline, a user without 2FA reaches only setup.
    "twofactor.middleware.TwoFactorPolicyMiddleware",
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
                "twofactor.context_processors.two_factor_policy",
                "accounts.context_processors.staff_rights",
            ],
        },
    },
]

# --- Data ----------------------------------------------------------------
DATABASES = {
    "default": env.database(
        "DATABASE_URL",
        default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
        conn_max_age=env.int("DB_CONN_MAX_AGE", default=60),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The embedded mode has the web server and the task worker writing to one file.
    # IMMEDIATE: a transaction takes the write lock when it begins and waits for it
    # (up to `timeout` seconds), instead of failing at once with "database is locked"
    # when its first write meets the other process's lock; WAL lets reads go on
    # beside a write.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
if _test_database_name := env.str("TEST_DATABASE_NAME", default=""):
    # Lets two test runs share one PostgreSQL server without clobbering each other.
    DATABASES["default"]["TEST"] = {"NAME": _test_database_name}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env.redis_url("REDIS_URL")
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
# portal.sessions is Django's database backend with login()'s key rotation done in one
# UPDATE at the end of the request (issue 20: the code step's queries).
SESSION_ENGINE = "portal.sessions"

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

SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", default=60 * 60 * 24 * 14)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = True

# --- Production security (manage.py check --deploy passes with DEBUG off) ---------
# Secure cookies are on whenever DEBUG is off. Only a server reached over plain
# http (the loopback tests and benchmarks) sets SECURE_COOKIES=0, and such a
# server cannot redirect to https either, so the redirect follows the same switch.
SECURE_COOKIES = env.bool("SECURE_COOKIES", default=not DEBUG)
SESSION_COOKIE_SECURE = SECURE_COOKIES
CSRF_COOKIE_SECURE = SECURE_COOKIES
if SECURE_COOKIES:
    # Browsers accept a __Host- cookie only with Secure, Path=/ and no Domain, so a
    # sibling subdomain (or a man in the middle on http) cannot plant or overwrite it.
    SESSION_COOKIE_NAME = "__Host-sessionid"
    CSRF_COOKIE_NAME = "__Host-csrftoken"
    LANGUAGE_COOKIE_NAME = "__Host-language"
# The language picked before login (accounts.preferences): like the others, not readable
# by scripts, not sent cross-site, Secure in production; kept for a year.
LANGUAGE_COOKIE_SECURE = SECURE_COOKIES
LANGUAGE_COOKIE_HTTPONLY = True
LANGUAGE_COOKIE_SAMESITE = "Lax"
LANGUAGE_COOKIE_AGE = 60 * 60 * 24 * 365
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=SECURE_COOKIES)
# Behind a TLS-terminating proxy the app sees http; trust the proxy's header
# only when told its name (e.g. SECURE_PROXY_SSL_HEADER=X-Forwarded-Proto),
# because a client could send the same header straight to an exposed app server.
if _proxy_header := env.str("SECURE_PROXY_SSL_HEADER", default=""):
    _proxy_header = _proxy_header.strip().upper().replace("-", "_")
    SECURE_PROXY_SSL_HEADER = (f"HTTP_{_proxy_header}", "https")
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 60 * 60 * 24 * 365)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=True)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
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
LOGIN_FAILURE_RATE_PER_DEVICE = env.rate("LOGIN_FAILURE_RATE_PER_DEVICE", default="10/h")
LOGIN_FAILURE_RATE_PER_ACCOUNT = env.rate("LOGIN_FAILURE_RATE_PER_ACCOUNT", default="20/h")
LOGIN_FAILURE_RATE_PER_NETWORK = env.rate("LOGIN_FAILURE_RATE_PER_NETWORK", default="100/h")
# Password-reset e-mails: one per address every few minutes, a daily cap per
# address and an hourly one per network (beyond them the page looks the same
# but nothing is sent; the owner's own browsers skip the two caps).
RESET_MAIL_SPACING = env.rate("RESET_MAIL_SPACING", default="1/5m")
RESET_MAIL_RATE_PER_ADDRESS = env.rate("RESET_MAIL_RATE_PER_ADDRESS", default="24/d")
RESET_MAIL_RATE_PER_NETWORK = env.rate("RESET_MAIL_RATE_PER_NETWORK", default="20/h")
# E-mail change confirmation links: spaced per target address like reset mails,
# and a few per account an hour (they go to addresses nobody has confirmed).
EMAIL_CHANGE_RATE_PER_ACCOUNT = env.rate("EMAIL_CHANGE_RATE_PER_ACCOUNT", default="5/h")
# The device cookie (see accounts.device_cookies); __Host- like the session's.
DEVICE_COOKIE_NAME = "__Host-device" if SECURE_COOKIES else "device"

# How many reverse proxies in front of the app append to X-Forwarded-For.
# 0 (the default) means the header is ignored: it is trivially forged.
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)

# --- Two-factor -----------------------------------------------------------
TWOFACTOR_ISSUER = env.str("TWOFACTOR_ISSUER", default="Customer Portal")
# Comma-separated Fernet keys, newest first. Empty: a key derived from SECRET_KEY.
TWOFACTOR_ENCRYPTION_KEYS = env.list("TWOFACTOR_ENCRYPTION_KEYS", default=[])
# Comma-separated keys of the backup-code hashes (random, 32+ characters), newest first.
# Empty: keys derived from SECRET_KEY and SECRET_KEY_FALLBACKS.
TWOFACTOR_BACKUP_CODE_KEYS = env.list("TWOFACTOR_BACKUP_CODE_KEYS", default=[])
# Passkeys and security keys: the host name they are bound to (no scheme, no port; an IP
# address will not do) and the exact origins the portal is served from, comma-separated.
# The defaults fit `make run` opened at http://localhost:8000. Changing the RP id later
# makes every registered key useless, so set it to the production host name from the start.
TWOFACTOR_WEBAUTHN_RP_ID = env.str("TWOFACTOR_WEBAUTHN_RP_ID", default="localhost")
TWOFACTOR_WEBAUTHN_ORIGINS = env.list(
    "TWOFACTOR_WEBAUTHN_ORIGINS",
    default=(
        ["http://localhost:8000"]
        if TWOFACTOR_WEBAUTHN_RP_ID == "localhost"
        else [f"https://{TWOFACTOR_WEBAUTHN_RP_ID}"]
    ),
)
# "Don't ask for a code on this browser": days (the security policy can switch it off).
TWOFACTOR_TRUSTED_BROWSER_DAYS = env.int("TWOFACTOR_TRUSTED_BROWSER_DAYS", default=30)
# Its cookie is __Host- and Secure like the session's; over plain http neither, or the
# browser would drop it and every login would ask for a code again.
TWOFACTOR_TRUSTED_BROWSER_COOKIE_NAME = (
    "__Host-twofactor_trusted" if SECURE_COOKIES else "twofactor_trusted"
)
TWOFACTOR_TRUSTED_BROWSER_COOKIE_SECURE = SECURE_COOKIES
# The address a trusted browser is recorded with: the portal's own reading of the proxies.
TWOFACTOR_CLIENT_IP = "portal.client_ip.client_ip"
# Past the 2FA deadline of the security policy, these stay open besides setup: logging
# out, and closing the account (someone may rather leave than set up 2FA).
TWOFACTOR_POLICY_EXEMPT_URLS = [
    "accounts:logout",
    "accounts:close_account",
    "accounts:account_closed",
]

# --- I18N / time -----------------------------------------------------------
# English is the source; German and French ship complete (locale/ and twofactor/locale/,
# compiled by `make`). Each language is named in itself, as a picker should.
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("de", "Deutsch"), ("fr", "Français")]
LOCALE_PATHS = [BASE_DIR / "locale"]
# Our date and time formats (portal/formats/<lang>/): every time carries its zone's
# abbreviation ("06:09 CET"), English keeps "2 Dec 2026".
FORMAT_MODULE_PATH = ["portal.formats"]
# Times are stored in UTC and shown in the user's own zone (accounts.preferences).
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Static files ------------------------------------------------------------
STATIC_URL = "static/"
# Env-configurable so a test run can collect into its own folder.
STATIC_ROOT = Path(env.str("STATIC_ROOT", default="") or BASE_DIR / "staticfiles")
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
EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
# No default host: empty means "never configured", which accounts/checks.py
# tells apart from a real server so `check --deploy` can refuse it.
EMAIL_HOST = env.str("EMAIL_HOST", default="")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)
if _email_file_path := env.str("EMAIL_FILE_PATH", default=""):
    # For the file backend only (the integration tests read what the worker sent).
    EMAIL_FILE_PATH = _email_file_path
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Customer Portal <no-reply@localhost>")

# --- Tasks: e-mail leaves the request ---------------------------------------------
# Every e-mail (reset links, security notices) is queued in the database after
# the commit and sent by a worker: `manage.py db_worker` (`make run` starts one).
TASKS = {
    "default": {
        "BACKEND": env.str("TASKS_BACKEND", default="django_tasks_db.DatabaseBackend"),
        "QUEUES": ["default"],
    }
}

# --- Logging: never a secret or a code in a log line (see twofactor tests) ---
# Checked here: logging refuses an unknown level too, but without saying which variable.
_log_level = env.choice("LOG_LEVEL", default="INFO", choices=list(logging.getLevelNamesMapping()))
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": _log_level},
}

PRODUCT_NAME = "Customer Portal"
# "Contact support" on the pages (a help page, else a mailto:) and in security e-mails.
# check --deploy warns when neither is set (accounts.W004).
SUPPORT_URL = env.str("SUPPORT_URL", default="")
# The portal's public address for links in e-mails, e.g. https://portal.example.com
# (portal/site.py). check --deploy warns without it (accounts.W005).
SITE_URL = env.str("SITE_URL", default="")
SUPPORT_EMAIL = env.str("SUPPORT_EMAIL", default="support@localhost" if DEBUG else "")
# twofactor's code step offers the same link, for a lost phone (twofactor/conf.py).
TWOFACTOR_SUPPORT_URL = SUPPORT_URL or (f"mailto:{SUPPORT_EMAIL}" if SUPPORT_EMAIL else "")

# Security log: events older than this are deleted by `manage.py prune_security_events`.
SECURITY_EVENT_RETENTION_DAYS = env.int("SECURITY_EVENT_RETENTION_DAYS", default=365)
