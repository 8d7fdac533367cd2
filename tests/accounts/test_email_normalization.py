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


def test_an_address_is_kept_as_given_for_mail_and_folded_for_lookups(db):
    # Folding "ß" to "ss" could send mail to another domain (IDNA 2008): mail goes to the
    # address as given (domain lower-cased); logins and uniqueness use the folded key.
    user = get_user_model().objects.create_user("Hans@Fußball.Example", PASSWORD)
    assert user.email == "Hans@fußball.example"
    assert user.email_key == "hans@fussball.example"
    response = Client().post(
        "/accounts/login/", {"username": "HANS@FUSSBALL.example", "password": PASSWORD}
    )
    assert response.status_code == 302


def test_a_reset_mail_goes_to_the_address_as_given(
    db, mailoutbox, django_capture_on_commit_callbacks
):
    get_user_model().objects.create_user("hans@fußball.example", PASSWORD)
    with django_capture_on_commit_callbacks(execute=True):
        Client().post("/accounts/password-reset/", {"email": "HANS@FUSSBALL.EXAMPLE"})
    assert [m.to for m in mailoutbox] == [["hans@fußball.example"]]


@pytest.mark.parametrize("variant", ["ＡＮＮ@example.com", "Ann@Example.COM"])
def test_the_password_reset_finds_the_account_by_any_spelling(
    user, variant, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        Client().post("/accounts/password-reset/", {"email": variant})
    assert [message.to for message in mailoutbox] == [[user.email]]


def test_the_migration_gives_existing_addresses_their_key(user, make_user):
    migration = importlib.import_module("accounts.migrations.0011_user_email_key")
    other = make_user("bob@example.com")
    User = get_user_model()
    User.objects.filter(pk=user.pk).update(email="ＡＮＮ@Example.com", email_key="")
    User.objects.filter(pk=other.pk).update(email=" Bob@EXAMPLE.com", email_key="x")
    migration.fill_email_keys(apps, None)
    assert set(User.objects.values_list("email_key", flat=True)) == {
        "ann@example.com",
        "bob@example.com",
    }
    assert User.objects.get(pk=user.pk).email == "ＡＮＮ@Example.com"  # mail still goes there


def test_the_migration_stops_on_two_accounts_that_fold_together(user, make_user):
    migration = importlib.import_module("accounts.migrations.0011_user_email_key")
    other = make_user("bob@example.com")
    get_user_model().objects.filter(pk=other.pk).update(email="ＡＮＮ@example.com")
    with pytest.raises(RuntimeError, match="same address"):
        migration.fill_email_keys(apps, None)
