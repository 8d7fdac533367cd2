"""One normalisation for every address (NFKC + case folding), on SQLite and PostgreSQL alike.

Each spelling below is the same account at login, at the password reset, for
uniqueness and for the password limits (tests/accounts/test_password_lock.py).
"""

import importlib

import pytest
from django.apps import apps
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.test import Client

from accounts.models import normalize_email_address
from tests.conftest import PASSWORD

VARIANTS = [
    "ann@example.com",
    "ANN@EXAMPLE.COM",
    "  Ann@Example.com\t",
    "ａｎｎ@ｅｘａｍｐｌｅ.ｃｏｍ",  # full-width letters
    "ＡＮＮ@example.com",
]


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_spelling_normalises_to_one_address(variant):
    assert normalize_email_address(variant) == "ann@example.com"


def test_case_folding_goes_beyond_lower_case():
    assert normalize_email_address("STRASSE@x.example") == normalize_email_address(
        "straße@x.example"
    )
    assert normalize_email_address("\u212aim@x.example") == "kim@x.example"  # KELVIN SIGN


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_spelling_logs_in_to_the_one_account(user, variant):
    response = Client().post("/accounts/login/", {"username": variant, "password": PASSWORD})
    assert response.status_code == 302
    assert response["Location"] == "/accounts/profile/"


@pytest.mark.parametrize("variant", VARIANTS[1:] + ["ann@EXAMPLE.com"])
def test_no_spelling_gets_an_account_of_its_own(user, variant):
    with pytest.raises(IntegrityError), transaction.atomic():
        get_user_model().objects.create_user(variant, "another password 1")
    assert get_user_model().objects.count() == 1


def test_a_folded_address_is_stored_folded(db):
    user = get_user_model().objects.create_user("Straße@Example.com", PASSWORD)
    assert user.email == "strasse@example.com"
    response = Client().post(
        "/accounts/login/", {"username": "STRASSE@example.com", "password": PASSWORD}
    )
    assert response.status_code == 302


@pytest.mark.parametrize("variant", ["ＡＮＮ@example.com", "Ann@Example.COM"])
def test_the_password_reset_finds_the_account_by_any_spelling(
    user, variant, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        Client().post("/accounts/password-reset/", {"email": variant})
    assert [message.to for message in mailoutbox] == [[user.email]]


def test_the_migration_normalises_existing_addresses(user, make_user):
    migration = importlib.import_module("accounts.migrations.0006_rate_windows")
    other = make_user("bob@example.com")
    User = get_user_model()
    User.objects.filter(pk=user.pk).update(email="ＡＮＮ@Example.com")  # bypasses save()
    User.objects.filter(pk=other.pk).update(email=" Bob@EXAMPLE.com")
    migration.normalize_addresses(apps, None)
    assert set(User.objects.values_list("email", flat=True)) == {
        "ann@example.com",
        "bob@example.com",
    }


def test_the_migration_stops_on_two_accounts_that_fold_together(user, make_user):
    migration = importlib.import_module("accounts.migrations.0006_rate_windows")
    other = make_user("bob@example.com")
    get_user_model().objects.filter(pk=other.pk).update(email="ＡＮＮ@example.com")
    with pytest.raises(RuntimeError, match="same address"):
        migration.normalize_addresses(apps, None)
