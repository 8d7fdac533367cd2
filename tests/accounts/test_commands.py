"""Support's command-line tools: twofactor_status, twofactor_reset, prune_security_events;
and seed_demo (its demo users and the Support group)."""

from datetime import timedelta
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import CommandError, call_command
from django.utils import timezone

from accounts import security_log
from accounts.models import SecurityEvent
from twofactor import services
from twofactor.models import BackupCode, TOTPDevice

Kind = SecurityEvent.Kind


def run(*args, **options) -> str:
    out = StringIO()
    call_command(*args, stdout=out, **options)
    return out.getvalue()


# --- twofactor_status -----------------------------------------------------------------------
@pytest.fixture
def population(make_user, enrolled):
    """Six users: two with 2FA and codes (one of them locked), one with 2FA and every code
    used, one half-way through enrollment, two without 2FA."""
    now = timezone.now()
    with_codes = make_user("codes@example.com")
    enrolled(with_codes)
    services.regenerate_backup_codes(user=with_codes)
    locked = make_user("locked@example.com")
    enrolled(locked)
    services.regenerate_backup_codes(user=locked)
    TOTPDevice.objects.filter(user=locked).update(locked_until=now + timedelta(minutes=5))
    spent = make_user("spent@example.com")
    enrolled(spent)
    services.regenerate_backup_codes(user=spent)
    BackupCode.objects.filter(user=spent).update(used_at=now)
    services.begin_enrollment(user=make_user("pending@example.com"), session={})
    make_user("plain@example.com")
    make_user("other@example.com")


def test_status_prints_the_summary_counts(population):
    out = run("twofactor_status")
    lines = dict(line.split(":", 1) for line in out.strip().splitlines())
    counts = {label: int(value) for label, value in lines.items()}
    assert counts == {
        "Users": 6,
        "With 2FA": 3,
        "Pending enrollments": 1,
        "Locked now": 1,
        "With 2FA and no unused backup code": 1,
    }


def test_status_for_one_user_shows_state_and_recent_events(user_with_totp):
    user, _ = user_with_totp
    services.regenerate_backup_codes(user=user)
    out = run("twofactor_status", "--user", "ANN@example.com")
    assert "User: ann@example.com" in out
    assert "2FA: Activated since" in out
    assert "Unused backup codes: 5" in out
    assert "Two-factor authentication enabled" in out
    assert "New backup codes generated" in out


def test_status_for_an_unknown_user_is_a_clear_error(db):
    with pytest.raises(CommandError, match="No user with the e-mail nobody@example.com"):
        run("twofactor_status", "--user", "nobody@example.com")


def test_looking_at_a_user_records_nothing(user_with_totp):
    user, _ = user_with_totp
    before = SecurityEvent.objects.count()
    run("twofactor_status", "--user", user.email)
    assert SecurityEvent.objects.count() == before


# --- twofactor_reset ---------------------------------------------------------------------------
def test_reset_turns_2fa_off_and_records_it_as_a_command_line_reset(
    user_with_totp, mailoutbox, django_capture_on_commit_callbacks
):
    user, _ = user_with_totp
    SecurityEvent.objects.all().delete()
    mailoutbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        out = run("twofactor_reset", user.email, "--reason", "Lost phone, called back")
    assert "reset for ann@example.com" in out
    assert not services.is_two_factor_enabled(user=user)
    event = SecurityEvent.objects.get()
    assert (event.kind, event.actor, event.ip) == (Kind.TWO_FACTOR_RESET, None, None)
    assert event.detail == "Lost phone, called back"
    assert event.user_agent == "command line (manage.py twofactor_reset)"
    assert len(mailoutbox) == 1 and "Lost phone, called back" in mailoutbox[0].body


def test_reset_with_an_actor_records_the_staff_member(user_with_totp, staff_user):
    user, _ = user_with_totp
    run("twofactor_reset", user.email, "--reason", "Lost phone", "--actor", staff_user.email)
    event = SecurityEvent.objects.get(kind=Kind.TWO_FACTOR_RESET)
    assert event.actor == staff_user


def test_reset_refuses_an_actor_who_is_not_staff(user_with_totp, make_user):
    user, _ = user_with_totp
    make_user("bob@example.com")
    with pytest.raises(CommandError, match="not an active staff user"):
        run("twofactor_reset", user.email, "--reason", "Lost phone", "--actor", "bob@example.com")
    assert services.is_two_factor_enabled(user=user)


def test_reset_refuses_a_staff_actor_without_the_reset_permission(
    user_with_totp, staff_without_permissions
):
    user, _ = user_with_totp
    with pytest.raises(CommandError, match="right to reset 2FA"):
        run(
            "twofactor_reset", user.email, "--reason", "Lost phone",
            "--actor", staff_without_permissions.email,
        )  # fmt: skip
    assert services.is_two_factor_enabled(user=user)


def test_staff_cannot_reset_their_own_2fa_from_the_command_line(staff_user, enrolled):
    enrolled(staff_user)
    with pytest.raises(CommandError, match="cannot reset their own"):
        run("twofactor_reset", staff_user.email, "--reason", "Mine", "--actor", staff_user.email)
    assert services.is_two_factor_enabled(user=staff_user)


def test_reset_needs_a_reason(user_with_totp):
    user, _ = user_with_totp
    with pytest.raises(CommandError, match="--reason"):
        run("twofactor_reset", user.email, "--reason", "   ")
    assert services.is_two_factor_enabled(user=user)


def test_reset_of_a_user_without_2fa_changes_and_records_nothing(user):
    with pytest.raises(CommandError, match="does not have two-factor authentication on"):
        run("twofactor_reset", user.email, "--reason", "Lost phone")
    assert not SecurityEvent.objects.filter(kind=Kind.TWO_FACTOR_RESET).exists()


def test_reset_of_an_unknown_user_is_a_clear_error(db):
    with pytest.raises(CommandError, match="No user with the e-mail"):
        run("twofactor_reset", "nobody@example.com", "--reason", "Lost phone")


def test_a_command_line_reset_reads_as_the_command_line_in_the_history(
    client, user_with_totp, staff_user, log_in_verified
):
    user, _ = user_with_totp
    run("twofactor_reset", user.email, "--reason", "Lost phone", "--actor", staff_user.email)
    event = SecurityEvent.objects.get(kind=Kind.TWO_FACTOR_RESET)
    assert event.browser == "Command line (support)"
    # The same words sent as a header by a visitor (with an IP) are not believed.
    event.ip = "203.0.113.9"
    assert event.browser == "Unknown browser"


# --- prune_security_events -----------------------------------------------------------------------
def event_aged(user, days: float) -> SecurityEvent:
    return security_log.record_event(
        user=user, kind=Kind.LOGIN, now=timezone.now() - timedelta(days=days)
    )


def test_prune_deletes_events_older_than_the_setting_and_keeps_the_rest(user, settings):
    settings.SECURITY_EVENT_RETENTION_DAYS = 30
    old = event_aged(user, 31)
    recent = event_aged(user, 29)
    out = run("prune_security_events")
    assert "Deleted 1 security event(s) older than 30 days." in out
    remaining = set(SecurityEvent.objects.values_list("pk", flat=True))
    assert old.pk not in remaining and recent.pk in remaining


def test_prune_days_option_overrides_the_setting(user):
    event_aged(user, 8)
    event_aged(user, 400)
    run("prune_security_events", "--days", "7")
    assert SecurityEvent.objects.count() == 0


def test_default_retention_is_one_year(user, settings):
    assert settings.SECURITY_EVENT_RETENTION_DAYS == 365
    kept = event_aged(user, 364)
    event_aged(user, 366)
    run("prune_security_events")
    assert list(SecurityEvent.objects.values_list("pk", flat=True)) == [kept.pk]


def test_prune_refuses_a_retention_of_zero_days(user):
    event_aged(user, 1)
    with pytest.raises(CommandError, match="at least one day"):
        run("prune_security_events", "--days", "0")
    assert SecurityEvent.objects.count() == 1


def test_prune_also_deletes_rate_limit_windows_that_ended_long_ago(db):
    from accounts import rate_windows
    from accounts.models import RateWindow

    hourly = rate_windows.Rate.parse("5/h")
    rate_windows.reserve(
        [rate_windows.Window("network:203.0.113.1", hourly)], now=timezone.now() - timedelta(days=3)
    )
    rate_windows.reserve([rate_windows.Window("network:203.0.113.2", hourly)])
    out = run("prune_security_events")
    assert "Deleted 1 expired rate-limit window(s)." in out
    assert list(RateWindow.objects.values_list("key", flat=True)) == ["network:203.0.113.2"]


# --- seed_demo: demo users, and the Support group ------------------------------------------------
def test_seed_demo_gives_the_demo_staff_a_support_group_once(db):
    first = run("seed_demo")
    run("seed_demo")
    support = Group.objects.get(name="Support")  # one group, however often it runs
    codenames = set(support.permissions.values_list("codename", flat=True))
    assert codenames == {"view_user", "reset_two_factor"}
    assert list(support.user_set.values_list("email", flat=True)) == ["admin@example.com"]
    assert "Group Support (All users and histories, Reset 2FA): admin@example.com." in first


def test_seed_demo_puts_a_demo_staff_member_from_an_older_seed_in_the_group(make_user):
    make_user("admin@example.com", is_staff=True, is_superuser=True)
    run("seed_demo")
    assert Group.objects.get(name="Support").user_set.filter(email="admin@example.com").exists()


def test_the_support_group_opens_all_users_and_reset_2fa(client, make_user, log_in_verified):
    run("seed_demo")
    # Not a superuser: the group alone must carry the rights the staff pages ask for.
    helper = make_user("helper@example.com", is_staff=True)
    helper.groups.add(Group.objects.get(name="Support"))
    alice = get_user_model().objects.get(email="alice@example.com")
    log_in_verified(client, helper)
    assert client.get("/accounts/users/").status_code == 200
    assert client.get(f"/accounts/users/{alice.pk}/security/").status_code == 200
    reset = client.get(f"/accounts/users/{alice.pk}/reset-2fa/")
    assert "Confirm it's you first." in reset.content.decode()


def test_seed_demo_twice_creates_no_duplicates(db):
    call_command("seed_demo")
    count = get_user_model().objects.count()
    call_command("seed_demo")
    assert get_user_model().objects.count() == count
    assert get_user_model().objects.filter(is_staff=True).exists()


def test_seed_demo_bulk_users(db):
    call_command("seed_demo", users=250)
    assert get_user_model().objects.filter(email__startswith="user").count() == 250


def test_seed_demo_users_start_with_a_clean_security_log(db):
    call_command("seed_demo")
    assert not SecurityEvent.objects.exists()
