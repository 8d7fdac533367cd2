"""Test settings: the one place tests override the environment-driven settings."""

import os

os.environ.setdefault("SECRET_KEY", "test-only-secret-key-not-for-production")
# The test client and the browser tests' live server speak plain http: no https
# redirect, no Secure-only cookies (tests/integration/test_deploy.py checks the
# production values in a subprocess).
os.environ.setdefault("SECURE_COOKIES", "0")

from portal.settings import *  # noqa: E402,F403

# Fast hashing keeps the suite quick; one test counts hasher calls instead of timing them.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
# Tasks run in the test process when enqueued (after the commit, as with the
# worker); tests/integration runs the real database queue and db_worker.
TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}
STORAGES["staticfiles"]["BACKEND"] = "django.contrib.staticfiles.storage.StaticFilesStorage"  # noqa: F405
ALLOWED_HOSTS = ["*"]
SUPPORT_EMAIL = "support@portal.example"
TWOFACTOR_SUPPORT_URL = f"mailto:{SUPPORT_EMAIL}"  # follows SUPPORT_EMAIL, as in settings.py
