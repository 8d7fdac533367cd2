"""Support's reset: its rules live in the service, whichever entry point calls it."""

import pytest

from twofactor import services, signals
from twofactor.models import BackupCode, TOTPDevice
from twofactor.services import ResetRefused, ResetRule


@pytest.fixture
def customer_with_totp(make_user, enrolled):
    customer = make_user("cara@example.com", name="Cara Customer")
    enrolled(customer)
    services.regenerate_backup_codes(user=customer)
    return customer


def refused_rule(**kwargs) -> ResetRule:
    with pytest.raises(ResetRefused) as refused:
        services.reset_two_factor(**kwargs)
    return refused.value.rule


def test_a_reset_removes_the_device_and_every_backup_code(customer_with_totp, staff_user):
    services.reset_two_factor(user=customer_with_totp, actor=staff_user, reason="Lost phone")
    assert not TOTPDevice.objects.filter(user=customer_with_totp).exists()
    assert not BackupCode.objects.filter(user=customer_with_totp).exists()


def test_a_reset_needs_a_reason(customer_with_totp, staff_user):
    rule = refused_rule(user=customer_with_totp, actor=staff_user, reason="   ")
    assert rule == ResetRule.NO_REASON
    assert TOTPDevice.objects.filter(user=customer_with_totp).exists()


def test_nobody_resets_their_own_2fa(staff_user, enrolled):
    enrolled(staff_user)
    assert refused_rule(user=staff_user, actor=staff_user, reason="x") == ResetRule.OWN_ACCOUNT
    assert TOTPDevice.objects.filter(user=staff_user).exists()


def test_only_a_superuser_resets_a_staff_member(make_user, enrolled, staff_user):
    colleague = make_user("colleague@example.com", is_staff=True)
    enrolled(colleague)
    rule = refused_rule(user=colleague, actor=staff_user, reason="Lost phone")
    assert rule == ResetRule.STAFF_TARGET
    root = make_user("root@example.com", is_staff=True, is_superuser=True)
    services.reset_two_factor(user=colleague, actor=root, reason="Lost phone")
    assert not TOTPDevice.objects.filter(user=colleague).exists()


def test_the_command_line_may_reset_anyone_with_a_reason(make_user, enrolled):
    colleague = make_user("colleague@example.com", is_staff=True)
    enrolled(colleague)
    services.reset_two_factor(user=colleague, actor=None, reason="Ticket 42")
    assert not TOTPDevice.objects.filter(user=colleague).exists()


def test_a_reset_is_announced_as_a_reset_and_not_as_disabled(customer_with_totp, staff_user):
    heard = []

    def on_disabled(sender, **kwargs):
        heard.append(("disabled", kwargs))

    def on_reset(sender, **kwargs):
        heard.append(("reset", kwargs))

    signals.two_factor_disabled.connect(on_disabled)
    signals.two_factor_reset.connect(on_reset)
    try:
        services.reset_two_factor(user=customer_with_totp, actor=staff_user, reason="Lost phone")
    finally:
        signals.two_factor_disabled.disconnect(on_disabled)
        signals.two_factor_reset.disconnect(on_reset)
    assert [name for name, _ in heard] == ["reset"]
    facts = heard[0][1]
    assert (facts["user"], facts["actor"], facts["reason"]) == (
        customer_with_totp,
        staff_user,
        "Lost phone",
    )


def test_the_page_says_why_before_showing_the_form(staff_user, make_user, enrolled):
    colleague = make_user("colleague@example.com", is_staff=True)
    refusal = services.reset_refusal(user=colleague, actor=staff_user)
    assert refusal is not None and "Only a superuser" in refusal.message
    assert services.reset_refusal(user=make_user("c@example.com"), actor=staff_user) is None


def test_a_reason_of_invisible_characters_is_no_reason(customer_with_totp, staff_user):
    for reason in ["\u200b", "\u180e", " \u2060 ", "--", "..."]:
        rule = refused_rule(user=customer_with_totp, actor=staff_user, reason=reason)
        assert rule == ResetRule.NO_REASON, repr(reason)
    assert TOTPDevice.objects.filter(user=customer_with_totp).exists()


def test_only_the_reset_that_removed_something_is_announced(customer_with_totp, staff_user):
    heard = []

    def on_reset(sender, **kwargs):
        heard.append(kwargs["actor"])

    signals.two_factor_reset.connect(on_reset)
    try:
        services.reset_two_factor(user=customer_with_totp, actor=staff_user, reason="Lost phone")
        services.reset_two_factor(user=customer_with_totp, actor=staff_user, reason="Again")
    finally:
        signals.two_factor_reset.disconnect(on_reset)
    assert heard == [staff_user]
