"""twofactor.queries with passkeys and security keys: the status, the count of keys and
the "Passkey or security key" filter, on any user queryset (no accounts code involved)."""

import pytest
from django.contrib.auth import get_user_model

from tests.keys import add_keys
from twofactor import queries


def annotated(email: str):
    users = get_user_model().objects.filter(email=email)
    return queries.with_two_factor_status(users).get()


@pytest.fixture
def people(make_user, enrolled):
    """ann: app and two keys; bob: app only; cid: nothing."""
    ann, bob, cid = (make_user(f"{name}@example.com") for name in ("ann", "bob", "cid"))
    enrolled(ann)
    enrolled(bob)
    add_keys(ann, 2)
    return {"ann": ann, "bob": bob, "cid": cid}


def test_status_counts_each_users_keys(people):
    assert annotated("ann@example.com").webauthn_credential_count == 2
    assert annotated("bob@example.com").webauthn_credential_count == 0
    assert annotated("cid@example.com").webauthn_credential_count == 0


def test_a_key_alone_makes_the_status_activated(make_user):
    # Not reachable through the services today (keys need the app), but the status
    # says what DESIGN.md says: any second factor, the app or a key.
    dee = make_user("dee@example.com")
    add_keys(dee, 1)
    row = annotated("dee@example.com")
    assert row.two_factor_active is True
    assert row.two_factor_enabled_at is None  # the app's date: there is no app


def test_keys_filter_returns_exactly_the_users_with_a_key(people):
    users = queries.filter_by_two_factor(get_user_model().objects.all(), queries.KEYS)
    assert list(users.values_list("email", flat=True)) == ["ann@example.com"]  # once, not twice


def test_count_with_keys_counts_users_not_keys(people, make_user):
    eve = make_user("eve@example.com")
    add_keys(eve, 1)
    assert queries.count_with_keys() == 2  # ann (two keys) and eve


def test_the_key_count_is_read_in_the_same_query(people, django_assert_num_queries):
    users = queries.with_two_factor_status(get_user_model().objects.order_by("email"))
    with django_assert_num_queries(1):
        counts = [user.webauthn_credential_count for user in users]
    assert counts == [2, 0, 0]
