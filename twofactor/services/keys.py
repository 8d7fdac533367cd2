"""A user's passkeys and security keys: listing, naming and removing them.

The rule that matters is the last one: a key is a second factor beside the authenticator
app, so removing keys never turns two-factor authentication off. Removing the last second
factor is what Disable 2FA does (with its own question and its own news), never a side
effect of "Remove" on a key.
"""

import unicodedata

from django.contrib.auth import get_user_model
from django.db import transaction

from twofactor import signals
from twofactor.models import CREDENTIAL_NAME_MAX_LENGTH, TOTPDevice, WebAuthnCredential
from twofactor.services.errors import LastSecondFactor, UnknownCredential
from twofactor.user_model import AuthUser


def list_credentials(*, user: AuthUser) -> list[WebAuthnCredential]:
    """The user's keys, oldest first (the order they were added in)."""
    return list(WebAuthnCredential.objects.filter(user=user))


def get_credential(*, user: AuthUser, pk: int) -> WebAuthnCredential:
    """One of the user's keys; another user's key is UnknownCredential, as a missing one."""
    credential = WebAuthnCredential.objects.filter(user=user, pk=pk).first()
    if credential is None:
        raise UnknownCredential("not a key of this account")
    return credential


def clean_credential_name(name: str) -> str:
    """What is stored of a name the user typed: without control and format characters
    (a bidi override could make the security log or an e-mail read backwards, a zero-width
    space make two names look alike), inner runs of spaces made one, trimmed, at most
    CREDENTIAL_NAME_MAX_LENGTH characters ("" if nothing is left)."""
    visible = "".join(
        " " if character.isspace() else character
        for character in name
        if character.isspace() or unicodedata.category(character) not in ("Cc", "Cf")
    )
    return " ".join(visible.split())[:CREDENTIAL_NAME_MAX_LENGTH]


def rename_credential(*, user: AuthUser, pk: int, name: str) -> WebAuthnCredential:
    credential = get_credential(user=user, pk=pk)
    cleaned = clean_credential_name(name)
    if not cleaned:
        raise ValueError("A key needs a name.")
    WebAuthnCredential.objects.filter(pk=credential.pk).update(name=cleaned)
    credential.name = cleaned
    return credential


def remove_credential(*, user: AuthUser, pk: int) -> WebAuthnCredential:
    """Delete one of the user's keys and announce it; the removed key (no longer stored).

    Refused with LastSecondFactor when nothing would be left to prove the second factor
    with (no authenticator app, no other key): that is turning 2FA off, which Disable 2FA
    does. Under the user's row lock, so two removals at once cannot both pass the check.
    """
    with transaction.atomic():
        list(get_user_model()._default_manager.select_for_update().filter(pk=user.pk).values("pk"))
        has_app = TOTPDevice.objects.confirmed().filter(user=user).exists()
        credential = get_credential(user=user, pk=pk)
        others = WebAuthnCredential.objects.filter(user=user).exclude(pk=credential.pk)
        if not has_app and not others.exists():
            raise LastSecondFactor
        deleted, _ = WebAuthnCredential.objects.filter(pk=credential.pk).delete()
        if not deleted:  # removed by a parallel request a moment ago: announced there
            raise UnknownCredential("the key was removed meanwhile")
        signals.webauthn_credential_removed.send(
            sender=type(user), user=user, credential=credential
        )
    return credential
