"""Production settings: `check --deploy` is clean (and refuses e-mail that goes
nowhere), the server refuses to start without SECRET_KEY, HTTPS and cookies are
locked down, and every page sends the CSP.

Settings are read once at import, so the production values are checked in a
subprocess with a production environment (DEBUG off, no test overrides).
"""

import json
import os
import re
import secrets
import subprocess
import sys

import pytest
from cryptography.fernet import Fernet

from tests.conftest import PASSWORD
from tests.integration.servers import ROOT, SMTP_ENV, collected_static, free_port

PRODUCTION_ONLY = {
    "DEBUG",
    "SECURE_COOKIES",
    "SECURE_SSL_REDIRECT",
    "SECURE_PROXY_SSL_HEADER",
    "DJANGO_ALLOW_ASYNC_UNSAFE",  # a test-only switch; check --deploy rightly refuses it
}


def production(**overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in PRODUCTION_ONLY}
    env.update(
        DJANGO_SETTINGS_MODULE="portal.settings",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="portal.example.com",
        TWOFACTOR_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
        TWOFACTOR_BACKUP_CODE_KEYS=secrets.token_urlsafe(32),
        TWOFACTOR_WEBAUTHN_RP_ID="portal.example.com",
        STATIC_ROOT=collected_static(),  # the manifest storage needs collected files
        **SMTP_ENV,
    )
    env.update(overrides)
    return env


def run(args: list[str], env: dict[str, str], timeout: float = 60):
    return subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


# Fetches the login page through the full middleware stack with production settings.
FETCH_LOGIN = """
import json, django
django.setup()
from django.test import Client
response = Client().get("/accounts/login/", HTTP_HOST="portal.example.com", **EXTRA)
print(json.dumps({
    "status": response.status_code,
    "location": response.get("Location", ""),
    "headers": dict(response.items()),
    "cookies": {name: dict(morsel) for name, morsel in response.cookies.items()},
}))
"""


def fetch_login(env: dict[str, str], **extra) -> dict:
    result = run([sys.executable, "-c", f"EXTRA = {extra!r}\n" + FETCH_LOGIN], env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_check_deploy_with_production_settings_reports_nothing():
    result = run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"], production()
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_check_deploy_warns_about_passkeys_bound_to_localhost():
    result = check_deploy(without(production(), "TWOFACTOR_WEBAUTHN_RP_ID"))
    assert result.returncode != 0
    assert "twofactor.W002" in result.stdout + result.stderr


def test_passkey_origins_off_the_rp_id_stop_start_up():
    env = production(TWOFACTOR_WEBAUTHN_ORIGINS="https://portal.example.com.evil.test")
    result = check_deploy(env)
    assert "twofactor.E003" in result.stdout + result.stderr


NON_DELIVERING = ["console", "locmem", "dummy", "filebased"]


def check_deploy(env: dict[str, str]):
    return run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"], env)


def without(env: dict[str, str], *names: str) -> dict[str, str]:
    return {key: value for key, value in env.items() if key not in names}


@pytest.mark.parametrize(
    "backend",
    [
        *(f"django.core.mail.backends.{name}.EmailBackend" for name in NON_DELIVERING),
        "no.such.EmailBackend",
    ],
)
def test_check_deploy_refuses_an_email_backend_that_delivers_nothing(backend):
    result = check_deploy(production(EMAIL_BACKEND=backend))
    assert result.returncode != 0
    assert "accounts.W001" in result.stderr
    assert "EMAIL_BACKEND=django.core.mail.backends.smtp.EmailBackend" in result.stderr


def test_check_deploy_refuses_no_email_configuration_at_all():
    # The embedded default: console e-mail. `make serve` must stop here.
    env = without(production(), "EMAIL_BACKEND", "EMAIL_HOST", "EMAIL_PORT", "DEFAULT_FROM_EMAIL")
    result = check_deploy(env)
    assert result.returncode != 0
    assert "accounts.W001" in result.stderr and "accounts.W003" in result.stderr


def test_check_deploy_refuses_smtp_without_a_host():
    result = check_deploy(without(production(), "EMAIL_HOST"))
    assert result.returncode != 0
    assert "accounts.W002" in result.stderr
    assert "EMAIL_HOST" in result.stderr


def test_check_deploy_refuses_a_sender_without_a_real_domain():
    result = check_deploy(without(production(), "DEFAULT_FROM_EMAIL"))  # no-reply@localhost
    assert result.returncode != 0
    assert "accounts.W003" in result.stderr and "DEFAULT_FROM_EMAIL" in result.stderr


def test_check_deploy_accepts_a_configured_smtp_server():
    env = production(
        EMAIL_HOST="smtp.example.com",
        EMAIL_PORT="587",
        EMAIL_USE_TLS="1",
        EMAIL_HOST_USER="portal",
        EMAIL_HOST_PASSWORD="not-a-real-password",  # noqa: S106
    )
    result = check_deploy(env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_manage_py_refuses_to_run_without_secret_key():
    env = production()
    del env["SECRET_KEY"]
    result = run([sys.executable, "manage.py", "check"], env)
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr


def test_gunicorn_refuses_to_start_without_secret_key():
    env = production()
    del env["SECRET_KEY"]
    command = [sys.executable, "-m", "gunicorn", "portal.wsgi:application"]
    command += ["--config", "portal/gunicorn.conf.py", "--bind", f"127.0.0.1:{free_port()}"]
    result = run(command, env, timeout=30)
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr


def test_production_redirects_plain_http_to_https():
    response = fetch_login(production())
    assert response["status"] == 301
    assert response["location"] == "https://portal.example.com/accounts/login/"


def test_forwarded_proto_is_ignored_unless_the_proxy_header_is_configured():
    forged = {"HTTP_X_FORWARDED_PROTO": "https"}
    assert fetch_login(production(), **forged)["status"] == 301
    behind_proxy = production(SECURE_PROXY_SSL_HEADER="X-Forwarded-Proto")
    assert fetch_login(behind_proxy, **forged)["status"] == 200


def test_production_cookies_are_secure_httponly_and_host_prefixed():
    response = fetch_login(production(), secure=True)
    assert response["status"] == 200
    csrf = response["cookies"]["__Host-csrftoken"]
    assert csrf["secure"] and csrf["httponly"] and csrf["path"] == "/" and not csrf["domain"]
    settings_check = run(
        [
            sys.executable,
            "-c",
            "import django; django.setup(); from django.conf import settings as s; "
            "print(s.SESSION_COOKIE_NAME, s.SESSION_COOKIE_SECURE, s.SESSION_COOKIE_HTTPONLY)",
        ],
        production(),
    )
    assert settings_check.stdout.split() == ["__Host-sessionid", "True", "True"]


def test_production_sends_hsts_referrer_policy_and_frame_denial():
    headers = fetch_login(production(), secure=True)["headers"]
    assert headers["Strict-Transport-Security"].startswith("max-age=31536000")
    assert "includeSubDomains" in headers["Strict-Transport-Security"]
    assert headers["Referrer-Policy"] == "same-origin"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["X-Content-Type-Options"] == "nosniff"


# --- Content-Security-Policy on every page (in-process, test settings) -----------------------
def _login_page(client, user_with_totp):
    return client.get("/accounts/login/")


def _profile_page(client, user_with_totp):
    client.force_login(user_with_totp[0])
    return client.get("/accounts/profile/")


def _code_step_page(client, user_with_totp):
    client.post("/accounts/login/", {"username": user_with_totp[0].email, "password": PASSWORD})
    return client.get("/2fa/login/")


def _enable_dialog_with_qr(client, make_user, log_in_with_sudo):
    log_in_with_sudo(client, make_user("qr@example.com"))
    return client.get("/2fa/enable/")


PAGES = {
    "login": _login_page,
    "profile": _profile_page,
    "code step": _code_step_page,
}


@pytest.mark.parametrize("page", PAGES)
def test_every_page_carries_the_content_security_policy(client, user_with_totp, page):
    response = PAGES[page](client, user_with_totp)
    assert response.status_code == 200
    policy = response["Content-Security-Policy"]
    assert "default-src 'self'" in policy
    assert "script-src 'self'" in policy


def test_policy_allows_no_inline_script_style_or_framing(client, db):
    policy = client.get("/accounts/login/")["Content-Security-Policy"]
    directives = dict(
        (part.split()[0], part.split()[1:]) for part in policy.split(";") if part.strip()
    )
    assert directives["script-src"] == ["'self'"]
    assert directives["style-src"] == ["'self'"]
    assert directives["img-src"] == ["'self'", "data:"]  # the QR code is a data: PNG
    assert directives["frame-ancestors"] == ["'none'"]
    assert directives["base-uri"] == ["'none'"]
    assert directives["form-action"] == ["'self'"]
    assert "'unsafe-inline'" not in policy and "'unsafe-eval'" not in policy


def test_enable_dialog_with_the_qr_code_carries_the_policy(client, make_user, log_in_with_sudo):
    response = _enable_dialog_with_qr(client, make_user, log_in_with_sudo)
    assert response.status_code == 200
    assert 'src="data:image/' in response.content.decode()
    assert "img-src 'self' data:" in response["Content-Security-Policy"]


def test_outage_page_carries_the_policy_too(client, user, monkeypatch):
    from portal import middleware

    monkeypatch.setattr(
        "accounts.views.twofactor_services.get_status",
        lambda **kwargs: (_ for _ in ()).throw(middleware.OperationalError("down")),
    )
    client.force_login(user)
    response = client.get("/accounts/profile/")
    assert response.status_code == 503
    assert "default-src 'self'" in response["Content-Security-Policy"]


def test_no_support_contact_fails_the_deploy_check():
    env = production(SUPPORT_EMAIL="", SUPPORT_URL="")
    result = run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"], env)
    assert result.returncode != 0
    assert "accounts.W004" in result.stderr + result.stdout


def test_no_site_url_fails_the_deploy_check():
    env = production(SITE_URL="")
    result = run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"], env)
    assert result.returncode != 0
    assert "accounts.W005" in result.stderr + result.stdout


@pytest.mark.parametrize("page", PAGES)
def test_every_page_names_its_icon_and_the_icon_is_a_static_file(client, user_with_totp, page):
    # Without one the browser asks for /favicon.ico on every page and gets a 404.
    from django.contrib.staticfiles import finders

    html = PAGES[page](client, user_with_totp).content.decode()
    link = re.search(r'<link rel="icon" href="/static/([^"]+)" type="image/svg\+xml">', html)
    assert link, "no icon"
    assert finders.find(link.group(1)), link.group(1)
