import re

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from tests.conftest import OPEN_REDIRECTS, PASSWORD

LOGIN_URL = "/accounts/login/"
PROFILE_URL = "/accounts/profile/"


def test_login_with_email_and_password_lands_on_profile(client, user):
    response = client.post(LOGIN_URL, {"username": user.email, "password": PASSWORD})
    assert response.status_code == 302
    assert response["Location"] == PROFILE_URL
    assert client.get(PROFILE_URL).status_code == 200


def test_email_is_case_insensitive_at_login(client, user):
    response = client.post(LOGIN_URL, {"username": "ANN@Example.COM", "password": PASSWORD})
    assert response.status_code == 302


def test_email_is_unique_whatever_the_case(user):
    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError), transaction.atomic():
        get_user_model().objects.create_user("Ann@EXAMPLE.com", "x")


def test_unknown_email_and_wrong_password_look_identical(client, user):
    unknown = client.post(LOGIN_URL, {"username": "nobody@example.com", "password": PASSWORD})
    wrong = client.post(LOGIN_URL, {"username": user.email, "password": "wrong password"})
    assert unknown.status_code == wrong.status_code == 200

    def body(response) -> str:
        # The only difference allowed is the e-mail echoed back into the field and the CSRF token.
        text = response.content.decode()
        text = text.replace("nobody@example.com", "EMAIL").replace(user.email, "EMAIL")
        import re

        return re.sub(r"[A-Za-z0-9]{64}", "CSRF", text)

    assert body(unknown) == body(wrong)
    assert "do not match an account" in unknown.content.decode()


@pytest.mark.parametrize("target", OPEN_REDIRECTS)
def test_next_to_another_site_lands_on_profile(client, user, target):
    response = client.post(
        LOGIN_URL, {"username": user.email, "password": PASSWORD, "next": target}
    )
    assert response.status_code == 302
    assert response["Location"] == PROFILE_URL


def test_next_to_a_local_page_is_honoured(client, user):
    response = client.post(
        LOGIN_URL, {"username": user.email, "password": PASSWORD, "next": "/accounts/profile/?x=1"}
    )
    assert response["Location"] == "/accounts/profile/?x=1"


def test_logout_by_get_does_not_log_out(client, user):
    client.force_login(user)
    assert client.get("/accounts/logout/").status_code == 405
    assert client.get(PROFILE_URL).status_code == 200


def test_logout_by_post_logs_out(client, user):
    client.force_login(user)
    client.post("/accounts/logout/")
    assert client.get(PROFILE_URL).status_code == 302


def test_profile_requires_login(client, db):
    response = client.get(PROFILE_URL)
    assert response.status_code == 302
    assert response["Location"].startswith(LOGIN_URL + "?next=")


def test_profile_shows_name_email_and_two_factor_status(client, user):
    client.force_login(user)
    page = client.get(PROFILE_URL).content.decode()
    assert "Ann Example" in page and user.email in page
    assert "Two-Factor authentication" in page and "Not activated" in page
    assert 'aria-label="Account menu"' in page


def test_admin_login_form_is_not_a_way_around_the_portal_login(client, db):
    response = client.get("/admin/login/?next=/admin/")
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))


def test_repeated_wrong_passwords_lock_the_email_and_ip_pair(client, user, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post(LOGIN_URL, {"username": user.email, "password": "wrong"})
    response = client.post(LOGIN_URL, {"username": user.email, "password": PASSWORD})
    assert response.status_code == 429
    assert "Too many wrong passwords" in response.content.decode()
    assert client.get(PROFILE_URL).status_code == 302


def test_lock_is_per_ip_so_another_network_can_still_log_in(client, user, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post(LOGIN_URL, {"username": user.email, "password": "wrong"})
    response = client.post(
        LOGIN_URL, {"username": user.email, "password": PASSWORD}, REMOTE_ADDR="198.51.100.7"
    )
    assert response.status_code == 302


def test_password_reset_sends_a_link_by_email(client, user, mailoutbox):
    response = client.post("/accounts/password-reset/", {"email": user.email})
    assert response.status_code == 302
    assert len(mailoutbox) == 1
    assert "/accounts/password-reset/" in mailoutbox[0].body


def test_seed_demo_twice_creates_no_duplicates(db):
    call_command("seed_demo")
    count = get_user_model().objects.count()
    call_command("seed_demo")
    assert get_user_model().objects.count() == count
    assert get_user_model().objects.filter(is_staff=True).exists()


def test_seed_demo_bulk_users(db):
    call_command("seed_demo", users=250)
    assert get_user_model().objects.filter(email__startswith="user").count() == 250


# --- Limits per account and per network (beyond axes' email + IP pair) ------------------
@pytest.fixture
def low_limits(settings):
    settings.LOGIN_FAILURE_RATE_PER_ACCOUNT = "6/h"
    settings.LOGIN_FAILURE_RATE_PER_NETWORK = "8/h"


def without_csrf(response) -> str:
    return re.sub(r"[A-Za-z0-9]{64}", "CSRF", response.content.decode())


def fail_login(client, email: str, ip: str):
    return client.post(LOGIN_URL, {"username": email, "password": "wrong"}, REMOTE_ADDR=ip)


def test_guessing_one_account_from_many_addresses_is_stopped(client, user, low_limits):
    for n in range(7):  # 7 addresses, one guess each: axes' pair lock never trips
        fail_login(client, user.email, f"203.0.113.{n}")
    response = client.post(
        LOGIN_URL, {"username": user.email, "password": PASSWORD}, REMOTE_ADDR="198.51.100.1"
    )
    assert response.status_code == 429
    assert "Too many failed log-in attempts" in response.content.decode()
    assert client.get(PROFILE_URL).status_code == 302


def test_spraying_many_accounts_from_one_network_is_stopped(client, make_user, low_limits):
    victim = make_user("victim@example.com")
    for n in range(9):  # one guess each at 9 accounts (most unknown), from one IPv6 /64
        fail_login(client, f"someone{n}@example.com", f"2001:db8:1:2::{n + 1}")
    response = client.post(
        LOGIN_URL,
        {"username": victim.email, "password": PASSWORD},
        REMOTE_ADDR="2001:db8:1:2:ffff::9",
    )
    assert response.status_code == 429


def test_ipv4_clients_seen_as_ipv4_mapped_ipv6_keep_their_own_buckets(
    client, make_user, low_limits
):
    victim = make_user("victim@example.com")
    for n in range(9):  # a sprayer at one IPv4 address, seen through a dual-stack socket
        fail_login(client, f"someone{n}@example.com", "::ffff:203.0.113.7")
    response = client.post(
        LOGIN_URL,
        {"username": victim.email, "password": PASSWORD},
        REMOTE_ADDR="::ffff:198.51.100.20",  # another IPv4 client: not in the sprayer's bucket
    )
    assert response.status_code == 302
    client.logout()
    assert fail_login(client, "next@example.com", "203.0.113.7").status_code == 429


def test_wrong_passwords_at_confirm_its_you_count_towards_the_account_limit(
    client, user, low_limits
):
    # A stolen session guessing the password that 2FA changes ask for, from many
    # addresses (one guess each: axes' pair lock never trips).
    client.force_login(user)
    for n in range(7):
        client.post(
            "/2fa/enable/", {"sudo": "1", "password": "wrong"}, REMOTE_ADDR=f"203.0.113.{n}"
        )
    right = client.post(
        "/2fa/enable/", {"sudo": "1", "password": PASSWORD}, REMOTE_ADDR="192.0.2.9"
    )
    assert right.status_code == 200  # refused before the password is even checked
    assert "Too many wrong passwords for this account lately." in right.content.decode()
    login = Client().post(
        LOGIN_URL, {"username": user.email, "password": PASSWORD}, REMOTE_ADDR="192.0.2.10"
    )
    assert login.status_code == 429


def test_a_throttled_unknown_account_looks_like_a_throttled_real_one(client, user, low_limits):
    for n in range(7):
        fail_login(client, user.email, f"203.0.113.{n}")
        fail_login(client, "nobody@example.com", f"192.0.2.{n}")
    real = fail_login(client, user.email, "198.51.100.2")
    unknown = fail_login(client, "nobody@example.com", "198.51.100.3")
    assert real.status_code == unknown.status_code == 429
    # Byte for byte, but for the per-response CSRF token.
    assert without_csrf(real) == without_csrf(unknown)


def test_successful_logins_do_not_count_towards_the_limits(client, user, low_limits):
    for _ in range(10):
        response = client.post(LOGIN_URL, {"username": user.email, "password": PASSWORD})
        assert response.status_code == 302
        client.post("/accounts/logout/")


def test_seed_demo_users_start_with_a_clean_security_log(db):
    from accounts.models import SecurityEvent

    call_command("seed_demo")
    assert not SecurityEvent.objects.exists()


def test_password_reset_mails_are_limited_per_address_without_telling(client, user, mailoutbox):
    pages = [client.post("/accounts/password-reset/", {"email": user.email}) for _ in range(5)]
    assert [page.status_code for page in pages] == [302] * 5
    assert {page["Location"] for page in pages} == {"/accounts/password-reset/sent/"}
    assert len(mailoutbox) == 3  # RESET_MAIL_RATE_PER_ADDRESS: 3/h


def test_password_reset_mails_are_limited_per_network(client, make_user, mailoutbox, settings):
    settings.RESET_MAIL_RATE_PER_NETWORK = "4/h"
    for n in range(6):
        make_user(f"user{n}@example.com")
        client.post("/accounts/password-reset/", {"email": f"user{n}@example.com"})
    assert len(mailoutbox) == 4
