"""accounts/receivers.py: every receiver connected once, in one way."""

import weakref

from django.contrib.auth.signals import user_logged_in, user_login_failed

from accounts import signals as accounts_signals
from twofactor import signals as twofactor_signals

SIGNALS = {
    "two_factor_enabled": twofactor_signals.two_factor_enabled,
    "two_factor_disabled": twofactor_signals.two_factor_disabled,
    "two_factor_reset": twofactor_signals.two_factor_reset,
    "backup_codes_generated": twofactor_signals.backup_codes_generated,
    "backup_code_used": twofactor_signals.backup_code_used,
    "code_verification_failed": twofactor_signals.code_verification_failed,
    "account_locked": twofactor_signals.account_locked,
    "user_logged_in": user_logged_in,
    "user_login_failed": user_login_failed,
    "password_reset": accounts_signals.password_reset,
}


def receiver_modules(signal) -> list[str]:
    """The module of each function connected to `signal` (weak references resolved)."""
    modules = []
    for entry in signal.receivers:
        ref = entry[1]
        receiver = ref() if isinstance(ref, weakref.ReferenceType) else ref
        modules.append(getattr(receiver, "__module__", "?"))
    return modules


def test_each_signal_has_exactly_one_receiver_and_it_is_in_accounts_receivers():
    for name, signal in SIGNALS.items():
        project = [m for m in receiver_modules(signal) if m.split(".")[0] in {"accounts", "portal"}]
        assert project == ["accounts.receivers"], name


def test_no_receiver_outside_accounts_receivers_listens_to_twofactor():
    for signal in vars(twofactor_signals).values():
        if hasattr(signal, "receivers"):
            outside = [
                m
                for m in receiver_modules(signal)
                if m.startswith(("accounts", "portal")) and m != "accounts.receivers"
            ]
            assert outside == []
