"""Passkeys and security keys (services.webauthn), against a software authenticator.

SoftAuthenticator (tests/twofactor/soft_authenticator.py) does what a browser and a key
do together: an EC P-256 key pair, authenticator data (RP id hash, flags, sign count,
attested credential data with a COSE key), a "none" attestation object, clientDataJSON,
and assertion signatures over authData + sha256(clientDataJSON). Every answer it gives is
checked by py_webauthn for real.
"""

import base64
import json
import os
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from django.contrib.sessions.backends.db import SessionStore
from django.db import IntegrityError, transaction
from django.test import RequestFactory

from tests.twofactor.soft_authenticator import ORIGIN, RP_ID, SoftAuthenticator, b64url
from twofactor import checks, services, signals
from twofactor.conf import app_settings
from twofactor.models import WebAuthnCredential, encode_credential_id
from twofactor.services import webauthn as webauthn_service

NOW = datetime(2025, 3, 14, 9, 26, 45, tzinfo=UTC)
BINDING = "pending-login-1"


@pytest.fixture(autouse=True)
def _relying_party(settings):
    settings.TWOFACTOR_WEBAUTHN_RP_ID = RP_ID
    settings.TWOFACTOR_WEBAUTHN_ORIGINS = [ORIGIN]


@pytest.fixture
def user(make_user, enrolled):
    """Ann, with the authenticator app on: keys are added beside it."""
    ann = make_user()
    enrolled(ann)
    return ann


@pytest.fixture
def authenticator() -> SoftAuthenticator:
    return SoftAuthenticator()


@pytest.fixture
def register(enrolled):
    """register(user, authenticator, name=""): a key added through both services (the user
    gets the authenticator app first if they have none: keys are added beside it)."""

    def add(user, authenticator: SoftAuthenticator, *, name: str = "") -> WebAuthnCredential:
        if not services.is_two_factor_enabled(user=user):
            enrolled(user)
        session: dict = {}
        options = services.begin_registration(user=user, session=session, now=NOW)
        return services.finish_registration(
            user=user,
            session=session,
            response_json=authenticator.create(options),
            name=name,
            now=NOW,
        )

    return add


@pytest.fixture
def registered(user, authenticator, register) -> WebAuthnCredential:
    return register(user, authenticator, name="Blue key")


def finish_sign_in(user, session, response_json, *, bound_to=BINDING, now=NOW):
    """services.finish_authentication, with this file's binding and clock unless told."""
    return services.finish_authentication(
        user=user, session=session, bound_to=bound_to, response_json=response_json, now=now
    )


def sign_in(user, authenticator: SoftAuthenticator, **answer) -> WebAuthnCredential:
    session: dict = {}
    options = services.begin_authentication(user=user, session=session, bound_to=BINDING, now=NOW)
    return finish_sign_in(user, session, authenticator.get(options, **answer))


# Registration


def test_registration_stores_the_key_with_its_facts(user, authenticator, registered):
    stored = WebAuthnCredential.objects.get()
    assert stored.user == user
    assert stored.raw_credential_id == authenticator.credential_id
    assert bytes(stored.public_key) == authenticator.cose_key()
    assert stored.sign_count == 0
    assert stored.transports == ["usb"]
    assert stored.aaguid == "00000000-0000-0000-0000-000000000000"
    assert (stored.backup_eligible, stored.backup_state) == (False, False)
    assert stored.name == "Blue key"
    assert stored.created_at == NOW
    assert stored.last_used_at is None


def test_a_key_is_not_added_without_the_authenticator_app(make_user, authenticator):
    # Keys come beside the app; a Disable 2FA in another tab after the options were
    # issued leaves the answer nothing to be added to.
    user = make_user("carol@example.com")
    session: dict = {}
    options = services.begin_registration(user=user, session=session, now=NOW)
    with pytest.raises(services.NotEnrolled):
        services.finish_registration(
            user=user, session=session, response_json=authenticator.create(options), now=NOW
        )
    assert not WebAuthnCredential.objects.exists()


def test_registration_options_ask_for_a_passkey_without_attestation(user):
    options = json.loads(services.begin_registration(user=user, session={}, now=NOW))
    assert options["rp"] == {"id": RP_ID, "name": app_settings.ISSUER}
    assert options["authenticatorSelection"]["residentKey"] == "preferred"
    assert options["authenticatorSelection"]["userVerification"] == "preferred"
    assert options["attestation"] == "none"
    assert options["user"]["name"] == user.email
    assert len(base64.urlsafe_b64decode(options["challenge"] + "==")) >= 16


def test_registration_options_exclude_the_users_existing_keys(user, registered, authenticator):
    options = json.loads(services.begin_registration(user=user, session={}, now=NOW))
    excluded = options["excludeCredentials"]
    assert [(c["id"], c["transports"]) for c in excluded] == [
        (b64url(authenticator.credential_id), ["usb"])
    ]


def test_registration_options_exclude_no_key_of_another_user(make_user, registered):
    other = make_user("bob@example.com")
    options = json.loads(services.begin_registration(user=other, session={}, now=NOW))
    assert options["excludeCredentials"] == []


def test_the_user_handle_is_stable_and_reveals_neither_pk_nor_email(user):
    first = json.loads(services.begin_registration(user=user, session={}, now=NOW))
    second = json.loads(services.begin_registration(user=user, session={}, now=NOW))
    handle = base64.urlsafe_b64decode(first["user"]["id"] + "==")
    assert first["user"]["id"] == second["user"]["id"]
    assert str(user.pk).encode() not in handle
    assert user.email.encode() not in handle


def test_registration_announces_the_new_key(user, authenticator, register):
    heard = []

    def listener(sender, **kwargs):
        heard.append(kwargs)

    signals.webauthn_credential_added.connect(listener)
    try:
        credential = register(user, authenticator)
    finally:
        signals.webauthn_credential_added.disconnect(listener)
    assert heard == [
        {"signal": signals.webauthn_credential_added, "user": user, "credential": credential}
    ]


def test_a_key_without_a_name_is_called_security_key(user, register):
    assert register(user, SoftAuthenticator(), name="  ").name == "Security key"


def test_a_synced_key_without_a_name_is_called_passkey(user, register):
    credential = register(user, SoftAuthenticator(backup_eligible=True))
    assert credential.name == "Passkey"
    assert (credential.backup_eligible, credential.backup_state) == (True, True)


def test_a_key_without_a_name_is_called_by_its_model_where_known(user, register):
    google = uuid.UUID("ea9b8d66-4d01-1d21-3ce4-b6b48cb575d4").bytes
    credential = register(user, SoftAuthenticator(aaguid=google, backup_eligible=True))
    assert credential.name == "Google Password Manager"
    assert credential.aaguid == "ea9b8d66-4d01-1d21-3ce4-b6b48cb575d4"


def test_a_name_longer_than_the_column_is_cut(user, authenticator, register):
    assert register(user, authenticator, name="k" * 100).name == "k" * 64


def test_registration_from_another_origin_is_refused(user, authenticator):
    session: dict = {}
    options = services.begin_registration(user=user, session=session, now=NOW)
    with pytest.raises(services.InvalidWebAuthnResponse, match="origin"):
        services.finish_registration(
            user=user,
            session=session,
            response_json=authenticator.create(options, origin="https://portal.example.evil"),
            now=NOW,
        )
    assert not WebAuthnCredential.objects.exists()


def test_registration_for_another_rp_id_is_refused(user, authenticator):
    session: dict = {}
    options = services.begin_registration(user=user, session=session, now=NOW)
    with pytest.raises(services.InvalidWebAuthnResponse, match="RP ID"):
        services.finish_registration(
            user=user,
            session=session,
            response_json=authenticator.create(options, rp_id="evil.example"),
            now=NOW,
        )
    assert not WebAuthnCredential.objects.exists()


def test_a_registration_challenge_is_single_use(user, authenticator):
    session: dict = {}
    options = services.begin_registration(user=user, session=session, now=NOW)
    answer = authenticator.create(options)
    services.finish_registration(user=user, session=session, response_json=answer, now=NOW)
    WebAuthnCredential.objects.all().delete()  # not the unique id: the challenge refuses it
    with pytest.raises(services.WebAuthnChallengeMissing):
        services.finish_registration(user=user, session=session, response_json=answer, now=NOW)
    assert not WebAuthnCredential.objects.exists()


def test_a_refused_registration_spends_the_challenge(user, authenticator):
    session: dict = {}
    options = services.begin_registration(user=user, session=session, now=NOW)
    with pytest.raises(services.InvalidWebAuthnResponse):
        services.finish_registration(
            user=user,
            session=session,
            response_json=authenticator.create(options, origin="https://evil.example"),
            now=NOW,
        )
    with pytest.raises(services.WebAuthnChallengeMissing):
        services.finish_registration(
            user=user, session=session, response_json=authenticator.create(options), now=NOW
        )


def test_an_expired_registration_challenge_is_refused(user, authenticator):
    session: dict = {}
    options = services.begin_registration(user=user, session=session, now=NOW)
    later = NOW + services.WEBAUTHN_CHALLENGE_TTL + timedelta(seconds=1)
    with pytest.raises(services.WebAuthnChallengeExpired):
        services.finish_registration(
            user=user, session=session, response_json=authenticator.create(options), now=later
        )
    assert not WebAuthnCredential.objects.exists()


def test_a_registration_challenge_is_good_until_it_expires(user, authenticator):
    session: dict = {}
    options = services.begin_registration(user=user, session=session, now=NOW)
    services.finish_registration(
        user=user,
        session=session,
        response_json=authenticator.create(options),
        now=NOW + services.WEBAUTHN_CHALLENGE_TTL,
    )
    assert WebAuthnCredential.objects.count() == 1


def test_a_registration_challenge_from_another_session_is_refused(user, authenticator):
    options = services.begin_registration(user=user, session={}, now=NOW)
    with pytest.raises(services.WebAuthnChallengeMissing):
        services.finish_registration(
            user=user, session={}, response_json=authenticator.create(options), now=NOW
        )


def test_a_registration_challenge_of_another_user_is_refused(user, make_user, authenticator):
    session: dict = {}
    options = services.begin_registration(user=user, session=session, now=NOW)
    other = make_user("bob@example.com")
    with pytest.raises(services.WebAuthnChallengeMissing):
        services.finish_registration(
            user=other, session=session, response_json=authenticator.create(options), now=NOW
        )
    assert not WebAuthnCredential.objects.exists()


def test_malformed_registration_answers_are_refused_not_errors(user, authenticator):
    well_formed = json.loads(
        authenticator.create(services.begin_registration(user=user, session={}))
    )
    garbage = [
        {**well_formed, "rawId": "!!"},
        {**well_formed, "response": {**well_formed["response"], "attestationObject": "AAAA"}},
        {**well_formed, "response": {**well_formed["response"], "clientDataJSON": b64url(b"[")}},
    ]
    for answer in ["", "{}", "[]", *map(json.dumps, garbage)]:
        session: dict = {}
        services.begin_registration(user=user, session=session, now=NOW)
        with pytest.raises(services.InvalidWebAuthnResponse):
            services.finish_registration(user=user, session=session, response_json=answer, now=NOW)


# Credential ids


def test_a_credential_id_is_unique_across_users(make_user, registered):
    other = make_user("bob@example.com")
    with pytest.raises(IntegrityError), transaction.atomic():
        WebAuthnCredential.objects.create(
            user=other, credential_id=registered.credential_id, public_key=b"k", name="Copy"
        )


def test_registering_a_key_another_user_has_is_refused(
    make_user, enrolled, authenticator, registered
):
    other = make_user("bob@example.com")
    enrolled(other)
    session: dict = {}
    options = services.begin_registration(user=other, session=session, now=NOW)
    # Refused as any unusable answer: whether an id is another account's is not said.
    with pytest.raises(services.InvalidWebAuthnResponse) as refused:
        services.finish_registration(
            user=other, session=session, response_json=authenticator.create(options), now=NOW
        )
    assert list(WebAuthnCredential.objects.values_list("user", flat=True)) == [registered.user_id]
    assert not isinstance(refused.value, services.CredentialAlreadyRegistered)


def test_credential_ids_are_stored_in_one_spelling():
    raw = bytes(range(250, 256)) + b"\x00"
    assert encode_credential_id(raw) == "-vv8_f7_AA"  # base64url, unpadded
    assert WebAuthnCredential(credential_id=encode_credential_id(raw)).raw_credential_id == raw


# Authentication


def test_authentication_accepts_the_users_key_and_records_its_use(user, authenticator, registered):
    credential = sign_in(user, authenticator)
    assert credential.pk == registered.pk
    registered.refresh_from_db()
    assert registered.sign_count == 1
    assert registered.last_used_at == NOW


def test_authentication_options_allow_only_the_users_keys(
    user, make_user, authenticator, registered, register
):
    register(make_user("bob@example.com"), SoftAuthenticator())
    options = json.loads(
        services.begin_authentication(user=user, session={}, bound_to=BINDING, now=NOW)
    )
    assert options["rpId"] == RP_ID
    assert options["userVerification"] == "preferred"
    assert [c["id"] for c in options["allowCredentials"]] == [b64url(authenticator.credential_id)]


def test_authentication_without_a_key_is_not_offered(user):
    with pytest.raises(services.NotEnrolled):
        services.begin_authentication(user=user, session={}, bound_to=BINDING, now=NOW)


def test_authentication_from_another_origin_is_refused(user, authenticator, registered):
    with pytest.raises(services.InvalidWebAuthnResponse, match="origin"):
        sign_in(user, authenticator, origin="https://evil.example")
    registered.refresh_from_db()
    assert registered.last_used_at is None


def test_authentication_for_another_rp_id_is_refused(user, authenticator, registered):
    with pytest.raises(services.InvalidWebAuthnResponse, match="RP ID"):
        sign_in(user, authenticator, rp_id="evil.example")


def test_an_authentication_signed_by_another_key_is_refused(user, authenticator, registered):
    authenticator.key = ec.generate_private_key(ec.SECP256R1())  # same id, another key
    with pytest.raises(services.InvalidWebAuthnResponse, match="signature"):
        sign_in(user, authenticator)


def test_an_authentication_challenge_is_single_use(user, authenticator, registered):
    session: dict = {}
    options = services.begin_authentication(user=user, session=session, bound_to=BINDING, now=NOW)
    answer = authenticator.get(options)
    services.finish_authentication(
        user=user, session=session, bound_to=BINDING, response_json=answer, now=NOW
    )
    WebAuthnCredential.objects.update(sign_count=0)  # not the counter: the challenge refuses it
    with pytest.raises(services.WebAuthnChallengeMissing):
        services.finish_authentication(
            user=user, session=session, bound_to=BINDING, response_json=answer, now=NOW
        )


def test_an_answer_to_an_earlier_challenge_is_refused(user, authenticator, registered):
    session: dict = {}
    first = services.begin_authentication(user=user, session=session, bound_to=BINDING, now=NOW)
    services.begin_authentication(user=user, session=session, bound_to=BINDING, now=NOW)
    # Stale (the page was opened again elsewhere), not a wrong key: not counted as one.
    with pytest.raises(services.WebAuthnChallengeMissing):
        finish_sign_in(user, session, authenticator.get(first))


def test_a_refused_authentication_spends_the_challenge(user, authenticator, registered):
    session: dict = {}
    options = services.begin_authentication(user=user, session=session, bound_to=BINDING, now=NOW)
    with pytest.raises(services.InvalidWebAuthnResponse):
        finish_sign_in(user, session, authenticator.get(options, origin="https://evil.example"))
    with pytest.raises(services.WebAuthnChallengeMissing):
        finish_sign_in(user, session, authenticator.get(options))


def test_an_expired_authentication_challenge_is_refused(user, authenticator, registered):
    session: dict = {}
    options = services.begin_authentication(user=user, session=session, bound_to=BINDING, now=NOW)
    with pytest.raises(services.WebAuthnChallengeExpired):
        finish_sign_in(
            user,
            session,
            authenticator.get(options),
            now=NOW + services.WEBAUTHN_CHALLENGE_TTL + timedelta(seconds=1),
        )


def test_an_authentication_challenge_from_another_session_is_refused(
    user, authenticator, registered
):
    options = services.begin_authentication(user=user, session={}, bound_to=BINDING, now=NOW)
    with pytest.raises(services.WebAuthnChallengeMissing):
        finish_sign_in(user, {}, authenticator.get(options))


def test_a_challenge_from_another_pending_login_is_refused(user, authenticator, registered):
    session: dict = {}
    options = services.begin_authentication(
        user=user, session=session, bound_to="pending-login-1", now=NOW
    )
    with pytest.raises(services.WebAuthnChallengeMissing):
        finish_sign_in(user, session, authenticator.get(options), bound_to="pending-login-2")


def test_the_pending_login_binding_changes_with_each_password_step(user):
    request = RequestFactory().post("/")
    request.session = SessionStore()
    services.begin_pending_login(request=request, user=user, next_url="", now=NOW)
    first = services.pending_login_binding(session=request.session)
    assert services.pending_login_binding(session=request.session) == first
    services.begin_pending_login(
        request=request, user=user, next_url="", now=NOW + timedelta(seconds=1)
    )
    assert services.pending_login_binding(session=request.session) != first
    services.clear_pending_login(session=request.session)
    with pytest.raises(services.PendingLoginMissing):
        services.pending_login_binding(session=request.session)


def test_a_sign_count_that_went_backwards_is_refused(user, authenticator, registered):
    sign_in(user, authenticator, sign_count=10)
    with pytest.raises(services.SignCountRegressed) as refused:
        sign_in(user, authenticator, sign_count=5)
    assert (refused.value.stored, refused.value.received) == (10, 5)
    assert refused.value.credential_pk == registered.pk
    registered.refresh_from_db()
    assert registered.sign_count == 10


def test_a_sign_count_that_did_not_move_is_refused(user, authenticator, registered):
    sign_in(user, authenticator, sign_count=7)
    with pytest.raises(services.SignCountRegressed):
        sign_in(user, authenticator, sign_count=7)


def test_a_counting_key_that_falls_back_to_zero_is_refused(user, authenticator, registered):
    sign_in(user, authenticator, sign_count=3)
    with pytest.raises(services.SignCountRegressed):
        sign_in(user, authenticator, sign_count=0)


def test_a_key_that_does_not_count_is_accepted_every_time(user, register):
    authenticator = SoftAuthenticator(counts=False, backup_eligible=True)
    register(user, authenticator)
    for _ in range(3):
        assert sign_in(user, authenticator).sign_count == 0


def test_of_two_answers_with_one_count_only_one_is_accepted(
    user, authenticator, registered, monkeypatch
):
    # The other answer lands between this one's check and its UPDATE, with the same count.
    real = webauthn_service.verify_authentication_response

    def verify_while_another_answer_wins(**kwargs):
        verified = real(**kwargs)
        WebAuthnCredential.objects.filter(pk=registered.pk).update(
            sign_count=verified.new_sign_count
        )
        return verified

    monkeypatch.setattr(
        webauthn_service, "verify_authentication_response", verify_while_another_answer_wins
    )
    with pytest.raises(services.SignCountRegressed):
        sign_in(user, authenticator)
    registered.refresh_from_db()
    assert registered.last_used_at is None


def test_another_users_key_is_refused(user, make_user, register):
    other = make_user("bob@example.com")
    register(user, SoftAuthenticator())
    bobs_key = SoftAuthenticator()
    register(other, bobs_key)
    bobs_key.user_handle = None  # as a security key sends it: nothing names the account
    with pytest.raises(services.UnknownCredential):
        sign_in(user, bobs_key)
    assert WebAuthnCredential.objects.get(user=other).last_used_at is None


def test_a_key_that_names_another_account_is_refused(user, authenticator, registered):
    with pytest.raises(services.UnknownCredential):
        sign_in(user, authenticator, user_handle=b"someone else")


def test_an_unknown_key_is_refused_like_another_users(user, registered):
    with pytest.raises(services.UnknownCredential):
        sign_in(user, SoftAuthenticator())


def test_malformed_authentication_answers_are_refused_not_errors(user, authenticator, registered):
    for answer in ["", "null", "{}", "broken", "authenticatorData", "signature", "userHandle"]:
        session: dict = {}
        options = services.begin_authentication(
            user=user, session=session, bound_to=BINDING, now=NOW
        )
        # Each broken answer is made for this session's own challenge, so it is refused
        # for what is broken in it, not as stale.
        well_formed = json.loads(authenticator.get(options))
        broken = {
            "authenticatorData": "AAAA",
            "signature": "!!",
            "userHandle": 5,
        }
        if answer in broken:
            answer = json.dumps(
                {**well_formed, "response": {**well_formed["response"], answer: broken[answer]}}
            )
        with pytest.raises(services.InvalidWebAuthnResponse):
            services.finish_authentication(
                user=user, session=session, bound_to=BINDING, response_json=answer, now=NOW
            )


# Settings


def test_the_relying_party_settings_have_safe_localhost_defaults(settings):
    for name in [
        "TWOFACTOR_WEBAUTHN_RP_ID",
        "TWOFACTOR_WEBAUTHN_ORIGINS",
        "TWOFACTOR_WEBAUTHN_RP_NAME",
    ]:
        if hasattr(settings, name):
            delattr(settings, name)
    assert app_settings.WEBAUTHN_RP_ID == "localhost"
    assert app_settings.WEBAUTHN_ORIGINS == ["http://localhost:8000"]
    assert app_settings.WEBAUTHN_RP_NAME == app_settings.ISSUER


def test_the_relying_party_settings_are_read_at_call_time(user, settings):
    settings.TWOFACTOR_WEBAUTHN_RP_ID = "elsewhere.example"
    settings.TWOFACTOR_WEBAUTHN_RP_NAME = "Elsewhere"
    options = json.loads(services.begin_registration(user=user, session={}, now=NOW))
    assert options["rp"] == {"id": "elsewhere.example", "name": "Elsewhere"}


# Settings checks


@pytest.mark.parametrize(
    ("rp_id", "origins"),
    [
        ("localhost", ["http://localhost:8000"]),
        ("portal.example.com", ["https://portal.example.com"]),
        ("example.com", ["https://portal.example.com", "https://example.com:8443"]),
    ],
)
def test_a_relying_party_on_its_host_passes_the_check(settings, rp_id, origins):
    settings.TWOFACTOR_WEBAUTHN_RP_ID = rp_id
    settings.TWOFACTOR_WEBAUTHN_ORIGINS = origins
    assert checks.check_webauthn_relying_party(None) == []


@pytest.mark.parametrize(
    ("rp_id", "origins", "error"),
    [
        ("127.0.0.1", ["http://127.0.0.1:8000"], "twofactor.E002"),
        ("https://portal.example.com", ["https://portal.example.com"], "twofactor.E002"),
        ("portal.example.com:443", ["https://portal.example.com"], "twofactor.E002"),
        ("portal.example.com", ["https://evil-portal.example.com"], "twofactor.E003"),
        ("portal.example.com", ["https://example.com"], "twofactor.E003"),
        ("portal.example.com", ["portal.example.com"], "twofactor.E003"),
        ("portal.example.com", ["https://portal.example.com/login"], "twofactor.E003"),
    ],
)
def test_a_relying_party_browsers_would_refuse_fails_the_check(settings, rp_id, origins, error):
    settings.TWOFACTOR_WEBAUTHN_RP_ID = rp_id
    settings.TWOFACTOR_WEBAUTHN_ORIGINS = origins
    assert [message.id for message in checks.check_webauthn_relying_party(None)] == [error]


def test_a_deployment_on_localhost_is_warned_about(settings):
    settings.TWOFACTOR_WEBAUTHN_RP_ID = "localhost"
    assert [m.id for m in checks.check_webauthn_deployment(None)] == ["twofactor.W002"]
    settings.TWOFACTOR_WEBAUTHN_RP_ID = "portal.example.com"
    assert checks.check_webauthn_deployment(None) == []


# Single use across copies of one session (parallel requests each load their own copy)


def test_a_registration_challenge_is_spent_for_every_copy_of_the_session(user, enrolled):
    authenticator = SoftAuthenticator()
    session: dict = {}
    options = services.begin_registration(user=user, session=session, now=NOW)
    copy = dict(session)
    answer = authenticator.create(options)
    services.finish_registration(user=user, session=session, response_json=answer, now=NOW)
    with pytest.raises(services.WebAuthnChallengeMissing):
        services.finish_registration(user=user, session=copy, response_json=answer, now=NOW)


def test_an_authentication_challenge_is_spent_for_every_copy_of_the_session(
    user, authenticator, registered
):
    session: dict = {}
    options = services.begin_authentication(user=user, session=session, bound_to=BINDING, now=NOW)
    copy = dict(session)
    finish_sign_in(user, session, authenticator.get(options))
    with pytest.raises(services.WebAuthnChallengeMissing):
        finish_sign_in(user, copy, authenticator.get(options))


# Sign in with a passkey: the challenge carries its own proof


def passkey_answer(authenticator, *, binding="browser-1", now=NOW, **answer) -> str:
    options = services.begin_passkey_sign_in(binding=binding, now=now)
    return authenticator.get(options, **answer)


def test_a_passkey_signs_in_with_its_own_challenge(user, authenticator, registered):
    answer = passkey_answer(authenticator)
    credential = services.finish_passkey_sign_in(binding="browser-1", response_json=answer, now=NOW)
    assert credential.user == user


def test_a_passkey_challenge_is_for_the_browser_that_asked(user, authenticator, registered):
    answer = passkey_answer(authenticator, binding="browser-1")
    with pytest.raises(services.WebAuthnChallengeMissing):
        services.finish_passkey_sign_in(binding="browser-2", response_json=answer, now=NOW)


def test_a_passkey_challenge_is_single_use(user, authenticator, registered):
    answer = passkey_answer(authenticator)
    services.finish_passkey_sign_in(binding="browser-1", response_json=answer, now=NOW)
    with pytest.raises(services.WebAuthnChallengeMissing):
        services.finish_passkey_sign_in(binding="browser-1", response_json=answer, now=NOW)


def test_a_passkey_challenge_expires(user, authenticator, registered):
    answer = passkey_answer(authenticator)
    later = NOW + services.WEBAUTHN_CHALLENGE_TTL + timedelta(seconds=1)
    with pytest.raises(services.WebAuthnChallengeExpired):
        services.finish_passkey_sign_in(binding="browser-1", response_json=answer, now=later)


def test_a_challenge_the_server_did_not_sign_is_refused(user, authenticator, registered):
    forged = json.dumps({"challenge": b64url(os.urandom(72)), "rpId": RP_ID})
    with pytest.raises(services.WebAuthnChallengeMissing):
        services.finish_passkey_sign_in(
            binding="browser-1", response_json=authenticator.get(forged), now=NOW
        )


def test_a_cloned_passkey_at_sign_in_is_refused_and_announced(user, authenticator, registered):
    services.finish_passkey_sign_in(
        binding="b", response_json=passkey_answer(authenticator, binding="b", sign_count=9), now=NOW
    )
    heard = []

    def listener(sender, **kwargs):
        heard.append((kwargs["method"], kwargs["outcome"]))

    signals.code_verification_failed.connect(listener)
    try:
        with pytest.raises(services.SignCountRegressed):
            services.finish_passkey_sign_in(
                binding="b",
                response_json=passkey_answer(authenticator, binding="b", sign_count=4),
                now=NOW,
            )
    finally:
        signals.code_verification_failed.disconnect(listener)
    assert heard == [(signals.Method.PASSKEY, signals.Outcome.SIGN_COUNT)]


@pytest.mark.parametrize(
    "mangle",
    [
        lambda answer: "[" * 2000,
        lambda answer: answer.replace('"userHandle": "', '"userHandle": "A', 1),
        lambda answer: answer.replace('"userHandle": "', '"userHandle": "\u00e9', 1),
        lambda answer: answer.replace('"userHandle": "', '"userHandle": "\ud800', 1),
    ],
    ids=["nested", "short-handle", "non-ascii-handle", "lone-surrogate-handle"],
)
def test_unreadable_answers_are_refusals_not_errors(user, authenticator, registered, mangle):
    answer = mangle(passkey_answer(authenticator))
    with pytest.raises(services.InvalidWebAuthnResponse):
        services.finish_passkey_sign_in(binding="browser-1", response_json=answer, now=NOW)
    session: dict = {}
    options = services.begin_authentication(user=user, session=session, bound_to=BINDING, now=NOW)
    with pytest.raises(services.InvalidWebAuthnResponse):
        finish_sign_in(user, session, mangle(authenticator.get(options)))


def test_key_names_lose_control_and_format_characters():
    assert services.clean_credential_name("evil\u202egnp.exe") == "evilgnp.exe"
    assert services.clean_credential_name("a\u200bb\x07c\x1b[31m") == "abc[31m"
    assert services.clean_credential_name(" Work\tlaptop\n ") == "Work laptop"
