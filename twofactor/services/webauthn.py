"""Passkeys and security keys: adding one (registration) and proving one (authentication).

py_webauthn does the verification (client data, RP id hash, flags, signature); this module
owns what the library leaves to the relying party:

- Challenges: random (the library's 64 bytes), kept in the caller's session under one key
  per ceremony with the user they were issued to and when, and taken *before* the answer is
  checked: popped from the session and recorded as spent in the database (a unique row, so
  parallel requests carrying copies of one session cannot each use it), single use even
  when the answer is refused. An authentication challenge is also bound to a caller-given
  string (`bound_to`, e.g. pending_login_binding): a challenge issued for one half-finished
  login is worthless to the next one.
- "Sign in with a passkey" keeps nothing in a session (anyone may ask for its options, and
  a session row per request would let them fill the table): its challenge carries its own
  proof, an HMAC over a nonce, the time and the browser's CSRF secret, checked when it comes
  back, and is then spent like the others.
- The origin and RP id come from settings (TWOFACTOR_WEBAUTHN_ORIGINS / _RP_ID) at call time.
- A credential answers only for the user it belongs to, and a counting key's sign count
  only moves forward: checked, then stored by one conditional UPDATE, so two answers that
  carry the same count cannot both be accepted.

Nothing here logs anyone in or touches the code throttle; the login step decides that.
"""

import hashlib
import json
import logging
import secrets
from collections.abc import MutableMapping
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.crypto import constant_time_compare, salted_hmac
from django.utils.translation import gettext_lazy as _
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import (
    base64url_to_bytes,
    bytes_to_base64url,
    parse_authentication_credential_json,
    parse_registration_credential_json,
)
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AttestationConveyancePreference,
    AuthenticationCredential,
    AuthenticatorAttachment,
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    CredentialDeviceType,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from twofactor import signals
from twofactor.authenticators import name_for_aaguid
from twofactor.conf import app_settings
from twofactor.models import (
    CREDENTIAL_ID_MAX_BYTES,
    SpentWebAuthnChallenge,
    TOTPDevice,
    WebAuthnCredential,
    encode_credential_id,
)
from twofactor.services.errors import (
    CredentialAlreadyRegistered,
    InvalidWebAuthnResponse,
    NotEnrolled,
    SignCountRegressed,
    UnknownCredential,
    WebAuthnChallengeExpired,
    WebAuthnChallengeMissing,
)
from twofactor.services.keys import clean_credential_name
from twofactor.signals import Method, Outcome
from twofactor.user_model import AuthUser

logger = logging.getLogger(__name__)

# One challenge per ceremony and session; a new begin_* replaces the previous one.
WEBAUTHN_REGISTRATION_SESSION_KEY = "twofactor_webauthn_registration"
WEBAUTHN_AUTHENTICATION_SESSION_KEY = "twofactor_webauthn_authentication"
# Also the timeout the browser is given; a login's own 10 minutes still apply on top.
WEBAUTHN_CHALLENGE_TTL = timedelta(minutes=5)
# "Sign in with a passkey": a nonce, the time it was issued (8 bytes), then the HMAC.
SIGN_IN_NONCE_BYTES = 32
SIGN_IN_MAC_BYTES = 32
# What a malformed answer makes py_webauthn's parsers raise: its own errors, and (3.0.1)
# ValueError / TypeError from a userHandle that is not base64url, RecursionError from
# deeply nested JSON. All are the sender's fault: a refusal, never a server error.
UNREADABLE = (WebAuthnException, ValueError, TypeError, RecursionError)
# The name a key gets when the user gives none: synced or built-in, or a roaming key. In
# the user's language as the key is added; from then on it is the user's to rename.
DEFAULT_PASSKEY_NAME = _("Passkey")
DEFAULT_SECURITY_KEY_NAME = _("Security key")


def begin_registration(
    *, user: AuthUser, session: MutableMapping[str, Any], now: datetime | None = None
) -> str:
    """Options for navigator.credentials.create() (PublicKeyCredentialCreationOptionsJSON).

    Resident key and user verification preferred (a passkey where the authenticator can
    make one, a plain security key otherwise), no attestation (we trust no vendor list),
    and the user's existing keys excluded so one authenticator is not registered twice.
    """
    now = now or timezone.now()
    options = generate_registration_options(
        rp_id=app_settings.WEBAUTHN_RP_ID,
        rp_name=app_settings.WEBAUTHN_RP_NAME,
        user_name=user.get_username(),
        user_id=_user_handles(user)[0],
        user_display_name=_display_name(user),
        timeout=_timeout_ms(),
        attestation=AttestationConveyancePreference.NONE,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.PREFERRED,
            user_verification=UserVerificationRequirement.PREFERRED,
        ),
        exclude_credentials=_descriptors(user),
    )
    _store_challenge(
        session, WEBAUTHN_REGISTRATION_SESSION_KEY, options.challenge, user=user, now=now
    )
    return options_to_json(options)


def finish_registration(
    *,
    user: AuthUser,
    session: MutableMapping[str, Any],
    response_json: str,
    name: str = "",
    now: datetime | None = None,
) -> WebAuthnCredential:
    """Verify the browser's answer to begin_registration and store the new key.

    `name` is what the user called it (blank: the authenticator's model where its AAGUID
    is known, such as "YubiKey 5 Series", else "Passkey" or "Security key"); forms bound
    its length, and the column's limit is enforced here too.
    """
    now = now or timezone.now()
    # Taken first: a refused answer spends the challenge as surely as an accepted one.
    challenge = _take_challenge(session, WEBAUTHN_REGISTRATION_SESSION_KEY, user=user, now=now)
    try:
        parsed = parse_registration_credential_json(response_json)
    except UNREADABLE as exc:
        raise InvalidWebAuthnResponse(str(exc) or type(exc).__name__) from exc
    try:
        verified = verify_registration_response(
            credential=parsed,
            expected_challenge=challenge,
            expected_rp_id=app_settings.WEBAUTHN_RP_ID,
            expected_origin=app_settings.WEBAUTHN_ORIGINS,
        )
    except UNREADABLE as exc:  # malformed JSON, base64 and CBOR too
        raise InvalidWebAuthnResponse(str(exc)) from exc
    if len(verified.credential_id) > CREDENTIAL_ID_MAX_BYTES:
        raise InvalidWebAuthnResponse("credential id longer than WebAuthn allows")
    backup_eligible = verified.credential_device_type == CredentialDeviceType.MULTI_DEVICE
    name = clean_credential_name(name) or _unused_name(
        user,
        name_for_aaguid(verified.aaguid)
        or str(
            DEFAULT_PASSKEY_NAME
            if backup_eligible
            or parsed.authenticator_attachment == AuthenticatorAttachment.PLATFORM
            else DEFAULT_SECURITY_KEY_NAME
        ),
    )
    credential = WebAuthnCredential(
        user=user,
        credential_id=encode_credential_id(verified.credential_id),
        public_key=verified.credential_public_key,
        sign_count=verified.sign_count,
        transports=[t.value for t in parsed.response.transports or []],
        aaguid=verified.aaguid,
        backup_eligible=backup_eligible,
        backup_state=verified.credential_backed_up,
        name=name,
        created_at=now,
    )
    with transaction.atomic():
        # Keys are added beside the app, never instead of it: checked under the app's row
        # lock, so a Disable 2FA in another tab either ran before (refused here) or waits
        # for this and removes the new key with the rest.
        if TOTPDevice.objects.confirmed().select_for_update().filter(user=user).first() is None:
            raise NotEnrolled
        try:
            # A savepoint of its own: a duplicate id must not break a caller's transaction.
            with transaction.atomic():
                credential.save()
        except IntegrityError:
            # Said only for the user's own key: whether a credential id is another
            # account's is none of this user's business.
            if WebAuthnCredential.objects.filter(
                user=user, credential_id=credential.credential_id
            ).exists():
                raise CredentialAlreadyRegistered from None
            raise InvalidWebAuthnResponse("the credential id is taken") from None
        signals.webauthn_credential_added.send(sender=type(user), user=user, credential=credential)
    return credential


def begin_authentication(
    *,
    user: AuthUser,
    session: MutableMapping[str, Any],
    bound_to: str,
    now: datetime | None = None,
) -> str:
    """Options for navigator.credentials.get() (PublicKeyCredentialRequestOptionsJSON) for
    a user who is already identified (the second step): only their keys are allowed."""
    now = now or timezone.now()
    allowed = _descriptors(user)
    if not allowed:
        raise NotEnrolled
    options = generate_authentication_options(
        rp_id=app_settings.WEBAUTHN_RP_ID,
        timeout=_timeout_ms(),
        allow_credentials=allowed,
        user_verification=UserVerificationRequirement.PREFERRED,
    )
    _store_challenge(
        session,
        WEBAUTHN_AUTHENTICATION_SESSION_KEY,
        options.challenge,
        user=user,
        now=now,
        bound_to=bound_to,
    )
    return options_to_json(options)


def finish_authentication(
    *,
    user: AuthUser,
    session: MutableMapping[str, Any],
    bound_to: str,
    response_json: str,
    now: datetime | None = None,
) -> WebAuthnCredential:
    """Verify the browser's answer to begin_authentication; the key that signed, with its
    sign count and last use updated. Raises an InvalidWebAuthnResponse (UnknownCredential,
    SignCountRegressed among them) or a WebAuthnChallengeMissing."""
    now = now or timezone.now()
    challenge = _take_challenge(
        session, WEBAUTHN_AUTHENTICATION_SESSION_KEY, user=user, now=now, bound_to=bound_to
    )
    parsed = _parse_assertion(response_json)
    if not constant_time_compare(_answered_challenge(parsed), challenge):
        # Signed for an earlier challenge of this session (the page was opened again in
        # another tab, which replaced it): stale, not a wrong key.
        raise WebAuthnChallengeMissing
    # This user's key or nothing: another account's key gets the same answer as no key.
    credential = WebAuthnCredential.objects.with_raw_id(parsed.raw_id).filter(user=user).first()
    if credential is None:
        raise UnknownCredential("not a key of this account")
    user_handle = parsed.response.user_handle
    if user_handle is not None and not _is_handle_of(user_handle, user):
        raise UnknownCredential("the key names another account")
    return _check_assertion(
        parsed, credential, challenge=challenge, require_user_verification=False, now=now
    )


def begin_passkey_sign_in(*, binding: str, now: datetime | None = None) -> str:
    """Options for navigator.credentials.get() on the login page, before anyone is named:
    no allowCredentials (the authenticator offers its discoverable passkeys for this RP),
    and user verification required, because the passkey stands for both factors.

    `binding` is a secret of this browser (the view passes its CSRF secret): the challenge
    is signed over it and is worthless to any other browser. Nothing is stored.
    """
    now = now or timezone.now()
    body = secrets.token_bytes(SIGN_IN_NONCE_BYTES) + int(now.timestamp()).to_bytes(8, "big")
    options = generate_authentication_options(
        rp_id=app_settings.WEBAUTHN_RP_ID,
        timeout=_timeout_ms(),
        challenge=body + _sign_in_mac(body, binding),
        user_verification=UserVerificationRequirement.REQUIRED,
    )
    return options_to_json(options)


def finish_passkey_sign_in(
    *, binding: str, response_json: str, now: datetime | None = None
) -> WebAuthnCredential:
    """Verify the answer to begin_passkey_sign_in; the key that signed (its `user` is who
    signs in). The key must name its account (the user handle of a discoverable
    credential) and the authenticator must have verified the user (PIN or biometrics).
    Every refusal is an InvalidWebAuthnResponse or a WebAuthnChallengeMissing: the
    caller answers them all alike, so nobody learns which credential ids exist.
    """
    now = now or timezone.now()
    parsed = _parse_assertion(response_json)
    challenge = _signed_sign_in_challenge(parsed, binding=binding, now=now)
    _spend_challenge(challenge, now=now)
    credential = (
        WebAuthnCredential.objects.with_raw_id(parsed.raw_id)
        .filter(user__is_active=True)
        .select_related("user")
        .first()
    )
    if credential is None:
        raise UnknownCredential("no such key")
    user_handle = parsed.response.user_handle
    if user_handle is None or not _is_handle_of(user_handle, credential.user):
        raise UnknownCredential("the key does not name its account")
    try:
        return _check_assertion(
            parsed, credential, challenge=challenge, require_user_verification=True, now=now
        )
    except SignCountRegressed:
        # A copy of a passkey that stands for both factors: said to its owner (the
        # security log, an e-mail) as at the code step, though no throttle counts here
        # (nobody else can make a signature of this key to lock its owner out with).
        user = credential.user
        signals.code_verification_failed.send(
            sender=type(user), user=user, method=Method.PASSKEY, outcome=Outcome.SIGN_COUNT
        )
        raise


def _sign_in_mac(body: bytes, binding: str) -> bytes:
    return salted_hmac(
        "twofactor.services.webauthn.sign_in", body + binding.encode(), algorithm="sha256"
    ).digest()


def _signed_sign_in_challenge(
    parsed: AuthenticationCredential, *, binding: str, now: datetime
) -> bytes:
    """The challenge the answer signed, if this server issued it to this browser less than
    WEBAUTHN_CHALLENGE_TTL ago (the library then checks the answer really signed it)."""
    challenge = _answered_challenge(parsed)
    body, mac = challenge[:-SIGN_IN_MAC_BYTES], challenge[-SIGN_IN_MAC_BYTES:]
    if len(body) != SIGN_IN_NONCE_BYTES + 8 or not constant_time_compare(
        mac, _sign_in_mac(body, binding)
    ):
        raise WebAuthnChallengeMissing
    issued_at = int.from_bytes(body[-8:], "big")
    age = now.timestamp() - issued_at
    if age > WEBAUTHN_CHALLENGE_TTL.total_seconds() or age < -1:
        raise WebAuthnChallengeExpired
    return challenge


def _answered_challenge(parsed: AuthenticationCredential) -> bytes:
    """The challenge the answer says it signed (the library checks that it really did)."""
    try:
        client_data = json.loads(parsed.response.client_data_json)
        return base64url_to_bytes(client_data["challenge"])
    except (ValueError, TypeError, KeyError, RecursionError) as exc:
        raise InvalidWebAuthnResponse("unreadable client data") from exc


def _spend_challenge(challenge: bytes, *, now: datetime) -> None:
    """Record the challenge as answered; WebAuthnChallengeMissing if it already was.

    Its own savepoint: inside a caller's transaction (verify_key's) the row commits with
    the failure count or the login; two requests racing with one challenge meet at the
    unique index, and the second is refused however the sessions look.
    """
    SpentWebAuthnChallenge.objects.filter(spent_at__lt=now - 2 * WEBAUTHN_CHALLENGE_TTL).delete()
    try:
        with transaction.atomic():
            SpentWebAuthnChallenge.objects.create(
                digest=hashlib.sha256(challenge).hexdigest(), spent_at=now
            )
    except IntegrityError:
        raise WebAuthnChallengeMissing from None


def _parse_assertion(response_json: str) -> AuthenticationCredential:
    try:
        return parse_authentication_credential_json(response_json)
    except UNREADABLE as exc:
        raise InvalidWebAuthnResponse(str(exc) or type(exc).__name__) from exc


def _check_assertion(
    parsed: AuthenticationCredential,
    credential: WebAuthnCredential,
    *,
    challenge: bytes,
    require_user_verification: bool,
    now: datetime,
) -> WebAuthnCredential:
    """The signature, origin, RP id and flags (the library), then the sign count (ours)."""
    try:
        verified = verify_authentication_response(
            credential=parsed,
            expected_challenge=challenge,
            expected_rp_id=app_settings.WEBAUTHN_RP_ID,
            expected_origin=app_settings.WEBAUTHN_ORIGINS,
            credential_public_key=bytes(credential.public_key),
            # 0: the library's own count check raises an anonymous error; ours, below,
            # is the same rule with a name (SignCountRegressed) and the figures to log.
            credential_current_sign_count=0,
            require_user_verification=require_user_verification,
        )
    except UNREADABLE as exc:  # malformed JSON, base64 and CBOR too
        raise InvalidWebAuthnResponse(str(exc)) from exc
    received, stored = verified.new_sign_count, credential.sign_count
    # WebAuthn's rule: once either count is non-zero the key counts, and each use must go
    # higher. Keys that never count (0 and 0, most synced passkeys) rely on the challenge.
    if (received or stored) and received <= stored:
        raise _regressed(credential, stored=stored, received=received)
    with transaction.atomic():
        rows = WebAuthnCredential.objects.filter(pk=credential.pk)
        # Checked again by the UPDATE itself: of two answers with one count, one wins.
        rows = rows.filter(sign_count__lt=received) if received else rows.filter(sign_count=0)
        if not rows.update(
            sign_count=received, last_used_at=now, backup_state=verified.credential_backed_up
        ):
            current = (
                WebAuthnCredential.objects.filter(pk=credential.pk)
                .values_list("sign_count", flat=True)
                .first()
            )
            if current is None:
                raise UnknownCredential("the key was removed meanwhile")
            raise _regressed(credential, stored=current, received=received)
    credential.sign_count = received
    credential.last_used_at = now
    credential.backup_state = verified.credential_backed_up
    return credential


def _regressed(credential: WebAuthnCredential, *, stored: int, received: int) -> SignCountRegressed:
    """The refusal of a counting key that signed with a count it used before: a copy of the
    key may exist. Said in the log here, once, for whoever investigates, whichever step
    it happened at; the callers announce it to the owner."""
    logger.warning(
        "Sign count went backwards for WebAuthn credential %s of user %s "
        "(stored %s, received %s): refused",
        credential.pk,
        credential.user_id,
        stored,
        received,
    )
    return SignCountRegressed(credential.pk, stored=stored, received=received)


def _store_challenge(
    session: MutableMapping[str, Any],
    key: str,
    challenge: bytes,
    *,
    now: datetime,
    user: AuthUser | None = None,
    bound_to: str | None = None,
) -> None:
    session[key] = {
        "challenge": bytes_to_base64url(challenge),
        "user_id": _user_key(user),
        "issued_at": now.timestamp(),
        "bound_to": bound_to,
    }


def _take_challenge(
    session: MutableMapping[str, Any],
    key: str,
    *,
    now: datetime,
    user: AuthUser | None = None,
    bound_to: str | None = None,
) -> bytes:
    """Pop this ceremony's challenge and return it if it is the user's (None: issued to
    nobody yet, the passkey sign-in), fresh and bound to `bound_to`; whatever the outcome,
    it is gone from the session."""
    data = session.pop(key, None)
    if not isinstance(data, dict) or data.get("user_id") != _user_key(user):
        raise WebAuthnChallengeMissing
    stored_binding = data.get("bound_to")
    if bound_to is not None and not (
        isinstance(stored_binding, str) and constant_time_compare(stored_binding, bound_to)
    ):
        raise WebAuthnChallengeMissing
    issued_at = data.get("issued_at")
    if (
        not isinstance(issued_at, int | float)
        or now.timestamp() - issued_at > WEBAUTHN_CHALLENGE_TTL.total_seconds()
        or issued_at > now.timestamp()
    ):
        raise WebAuthnChallengeExpired
    challenge = data.get("challenge")
    if not isinstance(challenge, str):
        raise WebAuthnChallengeMissing
    raw = base64url_to_bytes(challenge)
    _spend_challenge(raw, now=now)
    return raw


def _unused_name(user: AuthUser, name: str) -> str:
    """`name`, or "`name` 2", "`name` 3"...: a default name the user's list does not have
    yet, so two keys of one kind can be told apart (and named by their own buttons)."""
    taken = set(WebAuthnCredential.objects.filter(user=user).values_list("name", flat=True))
    number = 1
    candidate = name
    while candidate in taken:
        number += 1
        candidate = f"{name} {number}"
    return candidate


def _user_key(user: AuthUser | None) -> str:
    return "" if user is None else str(user.pk)


def _descriptors(user: AuthUser) -> list[PublicKeyCredentialDescriptor]:
    known = {t.value for t in AuthenticatorTransport}
    return [
        PublicKeyCredentialDescriptor(
            id=credential.raw_credential_id,
            transports=[AuthenticatorTransport(t) for t in credential.transports if t in known],
        )
        for credential in WebAuthnCredential.objects.filter(user=user)
    ]


def _user_handles(user: AuthUser) -> list[bytes]:
    """The WebAuthn user handle of `user`, newest first: an HMAC of the user's pk under
    SECRET_KEY (then each of SECRET_KEY_FALLBACKS, so keys made before a rotation still
    match). Stable without a column of its own, and it reveals neither the pk nor the email
    to whoever holds the authenticator."""
    secrets = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    return [
        salted_hmac(
            "twofactor.services.webauthn.user_handle",
            str(user.pk),
            secret=secret,
            algorithm="sha256",
        ).digest()
        for secret in secrets
    ]


def _is_handle_of(user_handle: bytes, user: AuthUser) -> bool:
    return any(constant_time_compare(user_handle, handle) for handle in _user_handles(user))


def _display_name(user: AuthUser) -> str:
    get_full_name = getattr(user, "get_full_name", None)
    full_name = get_full_name() if callable(get_full_name) else ""
    return str(full_name or user.get_username())


def _timeout_ms() -> int:
    return int(WEBAUTHN_CHALLENGE_TTL.total_seconds() * 1000)
