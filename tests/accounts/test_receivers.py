"""accounts/receivers.py: every receiver connected once, in one way."""

import secrets
import weakref

import pytest
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.core.cache import cache

from accounts import signals as accounts_signals
from accounts import user_list
from twofactor import signals as twofactor_signals
from twofactor.models import WebAuthnCredential, encode_credential_id

SIGNALS = {
    "two_factor_enabled": twofactor_signals.two_factor_enabled,
    "two_factor_disabled": twofactor_signals.two_factor_disabled,
    "two_factor_reset": twofactor_signals.two_factor_reset,
    "backup_codes_generated": twofactor_signals.backup_codes_generated,
    "backup_code_used": twofactor_signals.backup_code_used,
    "code_verification_failed": twofactor_signals.code_verification_failed,
    "account_locked": twofactor_signals.account_locked,
    "webauthn_credential_added": twofactor_signals.webauthn_credential_added,
    "webauthn_credential_removed": twofactor_signals.webauthn_credential_removed,
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


# --- Keys change what All users counts ("passkey or security key") ------------------------
def make_key(user) -> WebAuthnCredential:
    return WebAuthnCredential.objects.create(
        user=user,
        credential_id=encode_credential_id(secrets.token_bytes(16)),
        public_key=b"\xa5\x01\x02\x03\x26",
        name="YubiKey 5 NFC",
    )


@pytest.mark.parametrize(
    "signal_name", ["webauthn_credential_added", "webauthn_credential_removed"]
)
def test_adding_or_removing_a_key_forgets_the_all_users_counts(
    user, signal_name, django_capture_on_commit_callbacks
):
    credential = make_key(user)
    if signal_name == "webauthn_credential_removed":
        credential.delete()
    cache.set(user_list.COUNT_GENERATION_KEY, 1, None)
    with django_capture_on_commit_callbacks(execute=True):
        SIGNALS[signal_name].send(sender=type(user), user=user, credential=credential)
    assert cache.get(user_list.COUNT_GENERATION_KEY) != 1
