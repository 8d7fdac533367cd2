"""A request asks for the user's app once (the policy middleware reads it onto request.user);
the services that turn the app on or off forget what was read (issue 20)."""

from django.db import connection
from django.test.utils import CaptureQueriesContext

from twofactor import services

LIST_URL = "/accounts/users/"
PROFILE_URL = "/accounts/profile/"


def app_queries(queries) -> list[str]:
    """The queries asking for one user's app (not All users' for the rows of a page)."""
    return [
        q["sql"]
        for q in queries.captured_queries
        if q["sql"].partition(" FROM ")[2].startswith('"twofactor_totpdevice"')
        and " IN (" not in q["sql"]
    ]


def test_a_staff_page_asks_for_the_staff_members_app_once(client, staff_user, log_in_verified):
    # The middleware, the page's guard and the menu all ask whether 2FA is on.
    log_in_verified(client, staff_user)
    client.get(LIST_URL)  # the counts are cached from here on
    with CaptureQueriesContext(connection) as queries:
        response = client.get(LIST_URL)
    assert response.status_code == 200
    assert len(app_queries(queries)) == 1, app_queries(queries)


def test_my_profile_asks_for_the_app_twice_at_most(client, staff_user, log_in_verified):
    # Once for the request, once for the section's status (the app's date and keys); not
    # again for the menu's staff pages or for this browser's trust.
    log_in_verified(client, staff_user)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(PROFILE_URL)
    assert response.status_code == 200
    assert len(app_queries(queries)) <= 2, app_queries(queries)


def test_disabling_forgets_the_app_the_request_read(user, enrolled):
    enrolled(user)
    services.remember_app(user=user)
    services.disable_two_factor(user=user)
    assert not services.is_two_factor_enabled(user=user)


def test_confirming_an_app_forgets_that_the_request_found_none(user, enrolled):
    services.remember_app(user=user)
    enrolled(user)
    assert services.is_two_factor_enabled(user=user)


def test_a_reset_forgets_the_app_the_request_read(user, enrolled, staff_user):
    enrolled(user)
    services.remember_app(user=user)
    services.reset_two_factor(user=user, actor=staff_user, reason="Lost phone, ID checked")
    assert not services.is_two_factor_enabled(user=user)


def test_an_instance_no_request_read_for_asks_the_database(user, enrolled, django_user_model):
    # A task or a command holding a user across changes made elsewhere sees them.
    assert not services.is_two_factor_enabled(user=user)
    enrolled(django_user_model.objects.get(pk=user.pk))
    assert services.is_two_factor_enabled(user=user)
