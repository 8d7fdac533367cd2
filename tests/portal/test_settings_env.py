"""portal/settings.py and the environment: what it reads, and what stops start-up.

Settings are read once, at import, so each case imports them in a subprocess with
only PATH and the variables under test: no DJANGO_SETTINGS_MODULE, no test overrides.
"""

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

from accounts.rate_windows import Rate
from portal.settings import StrictEnv

ROOT = Path(__file__).resolve().parents[2]
# The embedded mode: no SECRET_KEY needed, so each case fails only on its own variable.
EMBEDDED = {"DEBUG": "1"}
READ_SETTING = "import sys, portal.settings as s; print(repr(getattr(s, sys.argv[1])))"


def import_settings(environment: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    code = READ_SETTING if args else "import portal.settings"
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=ROOT,
        env={"PATH": os.environ.get("PATH", ""), **environment},
        capture_output=True,
        text=True,
        timeout=60,
    )


def start_up_error(environment: dict[str, str]) -> str:
    """The error that stopped the import (the last line of the traceback)."""
    result = import_settings(environment)
    assert result.returncode != 0, "the settings imported without complaint"
    return result.stderr.strip().splitlines()[-1]


def read_setting(name: str, environment: dict[str, str]):
    result = import_settings(environment, name)
    assert result.returncode == 0, result.stderr
    return ast.literal_eval(result.stdout.strip())


def refusal(variable: str) -> str:
    return f"django.core.exceptions.ImproperlyConfigured: {variable}: "


@pytest.mark.parametrize(
    ("variable", "value"), [("DEBUG", "maybe"), ("SECURE_COOKIES", "2"), ("EMAIL_USE_TLS", "y")]
)
def test_a_malformed_boolean_stops_start_up_naming_the_variable(variable, value):
    error = start_up_error({**EMBEDDED, "SECRET_KEY": "k", variable: value})
    assert error.startswith(refusal(variable) + "expected a boolean")
    assert repr(value) in error


@pytest.mark.parametrize(
    ("variable", "value"),
    [("SESSION_COOKIE_AGE", "2w"), ("DB_CONN_MAX_AGE", "abc"), ("EMAIL_PORT", "25.0")],
)
def test_a_malformed_integer_stops_start_up_naming_the_variable(variable, value):
    error = start_up_error({**EMBEDDED, variable: value})
    assert error.startswith(refusal(variable) + "expected an integer")
    assert repr(value) in error


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("LOGIN_FAILURE_RATE_PER_DEVICE", "10/week"),
        ("RESET_MAIL_SPACING", "1/0m"),  # a zero period would switch the limit off
        ("EMAIL_CHANGE_RATE_PER_ACCOUNT", ""),
    ],
)
def test_a_malformed_rate_stops_start_up_naming_the_variable(variable, value):
    error = start_up_error({**EMBEDDED, variable: value})
    assert error.startswith(refusal(variable) + "expected a rate")


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("DATABASE_URL", "postgress://portal:hunter2hunter2@db/portal"),
        ("DATABASE_URL", "postgres://portal:hunter2hunter2@db:5432x/portal"),
        ("REDIS_URL", "http://:hunter2hunter2@cache:6379/0"),
        ("REDIS_URL", "redis://cache:6379/0,redis://:hunter2hunter2@replica:63x9/0"),
    ],
)
def test_a_malformed_url_stops_start_up_naming_the_variable_but_not_the_password(variable, value):
    result = import_settings({**EMBEDDED, variable: value})
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1].startswith(refusal(variable))
    assert "hunter2hunter2" not in result.stderr


def test_an_unknown_log_level_stops_start_up_naming_the_variable():
    # logging would refuse it too, at django.setup(), without saying which variable.
    error = start_up_error({**EMBEDDED, "LOG_LEVEL": "verbose"})
    assert error.startswith(refusal("LOG_LEVEL") + "expected one of")


@pytest.mark.parametrize(
    ("environment", "name", "expected"),
    [
        pytest.param({"DEBUG": "1"}, "DEBUG", True, id="DEBUG=1"),
        pytest.param({"DEBUG": " Yes "}, "DEBUG", True, id="DEBUG=Yes"),
        pytest.param({"SECRET_KEY": "k", "DEBUG": "off"}, "DEBUG", False, id="DEBUG=off"),
        pytest.param(
            {**EMBEDDED, "SECURE_COOKIES": "1"},
            "SESSION_COOKIE_NAME",
            "__Host-sessionid",
            id="SECURE_COOKIES=1",
        ),
        pytest.param(
            {**EMBEDDED, "SECURE_COOKIES": "1"},
            "TWOFACTOR_TRUSTED_BROWSER_COOKIE_NAME",
            "__Host-twofactor_trusted",
            id="SECURE_COOKIES=1 trusted browser cookie",
        ),
        pytest.param(
            {**EMBEDDED, "SECURE_COOKIES": "1"},
            "TWOFACTOR_TRUSTED_BROWSER_COOKIE_SECURE",
            True,
            id="SECURE_COOKIES=1 trusted browser cookie Secure",
        ),
        pytest.param(
            EMBEDDED,
            "TWOFACTOR_TRUSTED_BROWSER_COOKIE_NAME",
            "twofactor_trusted",
            id="DEBUG=1 trusted browser cookie",
        ),
        pytest.param(
            {**EMBEDDED, "SESSION_COOKIE_AGE": " 3600 "},
            "SESSION_COOKIE_AGE",
            3600,
            id="SESSION_COOKIE_AGE",
        ),
        pytest.param(
            {**EMBEDDED, "ALLOWED_HOSTS": " a.example , b.example,,"},
            "ALLOWED_HOSTS",
            ["a.example", "b.example"],
            id="ALLOWED_HOSTS",
        ),
        pytest.param(
            {**EMBEDDED, "RESET_MAIL_SPACING": "2/10m"},
            "RESET_MAIL_SPACING",
            "2/10m",
            id="RESET_MAIL_SPACING",
        ),
        pytest.param(EMBEDDED, "TWOFACTOR_WEBAUTHN_ORIGINS", ["http://localhost:8000"], id="RP"),
        pytest.param(
            {**EMBEDDED, "TWOFACTOR_WEBAUTHN_RP_ID": "portal.example.com"},
            "TWOFACTOR_WEBAUTHN_ORIGINS",
            ["https://portal.example.com"],
            id="RP_ID-gives-its-https-origin",
        ),
        pytest.param(
            {
                **EMBEDDED,
                "TWOFACTOR_WEBAUTHN_RP_ID": "example.com",
                "TWOFACTOR_WEBAUTHN_ORIGINS": "https://a.example.com, https://b.example.com",
            },
            "TWOFACTOR_WEBAUTHN_ORIGINS",
            ["https://a.example.com", "https://b.example.com"],
            id="WEBAUTHN_ORIGINS",
        ),
    ],
)
def test_valid_values_are_read(environment, name, expected):
    assert read_setting(name, environment) == expected


def test_log_level_sets_the_root_logger_level():
    logging = read_setting("LOGGING", {**EMBEDDED, "LOG_LEVEL": "WARNING"})
    assert logging["root"]["level"] == "WARNING"


def test_a_database_url_is_read_with_the_connection_options():
    environment = {
        **EMBEDDED,
        "DATABASE_URL": "postgres://portal:p%40ss@%2Fvar%2Frun%2Fpostgresql/portal?pool=false",
        "DB_CONN_MAX_AGE": "0",
        "TEST_DATABASE_NAME": "test_portal_2",
    }
    database = read_setting("DATABASES", environment)["default"]
    assert database["ENGINE"] == "django.db.backends.postgresql"
    assert (database["HOST"], database["NAME"]) == ("/var/run/postgresql", "portal")
    assert database["PASSWORD"] == "p@ss"
    assert database["OPTIONS"] == {"pool": False}
    assert (database["CONN_MAX_AGE"], database["CONN_HEALTH_CHECKS"]) == (0, True)
    assert database["TEST"] == {"NAME": "test_portal_2"}


def test_the_embedded_default_is_sqlite_and_local_memory():
    database = read_setting("DATABASES", EMBEDDED)["default"]
    assert database["ENGINE"] == "django.db.backends.sqlite3"
    assert database["NAME"] == str(ROOT / "db.sqlite3")
    assert (database["CONN_MAX_AGE"], database["CONN_HEALTH_CHECKS"]) == (60, True)
    assert "TEST" not in database
    caches = read_setting("CACHES", EMBEDDED)
    assert caches["default"]["BACKEND"] == "django.core.cache.backends.locmem.LocMemCache"


def test_blank_switches_and_numbers_mean_the_default():
    # As before django-environ: VAR= in a compose file is "not set".
    environment = {"SECRET_KEY": "k", "DEBUG": "", "SECURE_HSTS_SECONDS": " "}
    assert read_setting("DEBUG", environment) is False
    assert read_setting("SECURE_HSTS_SECONDS", environment) == 60 * 60 * 24 * 365


def test_a_value_starting_with_a_dollar_is_taken_literally():
    # django-environ alone would read "$OTHER" as the value of OTHER.
    secret = read_setting("SECRET_KEY", {"SECRET_KEY": "$OTHER", "OTHER": "not-the-key"})
    assert secret == "$OTHER"


@pytest.mark.parametrize(
    "environment", [{}, {"SECRET_KEY": ""}, {"DEBUG": "0"}, {"SECRET_KEY": "   "}]
)
def test_production_refuses_to_start_without_a_secret_key(environment):
    error = start_up_error(environment)
    assert error.startswith("django.core.exceptions.ImproperlyConfigured: SECRET_KEY is not set")


# The settings check rates with their own copy of Rate.parse's grammar (they cannot
# import it before the app registry exists); these keep the two in step.
@pytest.mark.parametrize(
    "text", ["", "20", "h", "/h", "20/", "20/w", "-1/h", "0/h", "1.5/h", "2/1.5m"]
)
def test_settings_refuse_every_rate_the_throttle_cannot_parse(monkeypatch, text):
    with pytest.raises(ValueError, match="Not a rate"):
        Rate.parse(text)
    monkeypatch.setenv("SOME_RATE", text)
    with pytest.raises(Exception, match="^SOME_RATE: expected a rate"):
        StrictEnv().rate("SOME_RATE", default="1/h")


@pytest.mark.parametrize("text", ["20/h", "1/5m", "24/d", "3/s", " 7 / 2m ", "100/1h"])
def test_settings_accept_the_rates_the_throttle_parses(monkeypatch, text):
    Rate.parse(text)
    monkeypatch.setenv("SOME_RATE", text)
    assert StrictEnv().rate("SOME_RATE", default="1/h") == text


# The embedded mode: the web server and the task worker write to one SQLite file.
WRITER = """
import sys, time, django
django.setup()
from django.db import connection, transaction
from django.contrib.sessions.models import Session
from django.utils import timezone
with transaction.atomic():
    if sys.argv[1] == "holds":
        Session.objects.create(session_key="a" * 32, session_data="", expire_date=timezone.now())
        print("locked", flush=True)
        time.sleep(1.5)
    else:
        Session.objects.count()  # a read first, then a write: the case SQLite refuses at once
        Session.objects.create(session_key="b" * 32, session_data="", expire_date=timezone.now())
print("ok", flush=True)
"""


def test_two_processes_writing_one_sqlite_file_wait_for_each_other(tmp_path):
    environment = {
        "PATH": os.environ.get("PATH", ""),
        "DEBUG": "1",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "DJANGO_SETTINGS_MODULE": "portal.settings",
    }
    migrate = [sys.executable, "manage.py", "migrate", "sessions", "-v0"]
    subprocess.run(migrate, cwd=ROOT, env=environment, check=True, timeout=120)
    run = [sys.executable, "-c", WRITER]
    holder = subprocess.Popen(
        [*run, "holds"], cwd=ROOT, env=environment, stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    second = subprocess.run(
        [*run, "waits"], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=60
    )
    assert holder.wait(timeout=60) == 0
    assert second.returncode == 0, second.stderr[-1500:]
    assert second.stdout.strip() == "ok"
