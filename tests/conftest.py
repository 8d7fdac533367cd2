"""Shared fixtures: users, a user with an active authenticator, codes at a given time (right
and wrong ones), sessions logged in with or without a recent "confirm it's you"; and the one
rule that skips PostgreSQL-only tests on SQLite."""

from collections.abc import Callable
from datetime import datetime, timedelta

import pyotp
import pytest
from django.contrib.auth import get_user_model
from django.db import connections
from django.utils import timezone

from twofactor import otp, services
from twofactor.signals import Method

PASSWORD = "correct horse battery staple"  # noqa: S105 - test fixture password


def request_with_cookies_of(browser):
    """A request carrying a test Client's cookies, to ask what the server makes of them."""
    from django.test import RequestFactory

    request = RequestFactory().get("/")
    request.COOKIES = {name: morsel.value for name, morsel in browser.cookies.items()}
    return request


# next= values that must never send a user off the site (each lands on My profile).
OPEN_REDIRECTS = [
    "https://evil.example",
    "//evil.example",
    "http:999999999",
    "http:\\\\evil.example",
    "/\\evil.example",
]


def pytest_collection_modifyitems(config, items) -> None:
    # The one place @pytest.mark.postgres is honoured: row locks, concurrent connections,
    # pg_trgm and the PostgreSQL servers only exist when DATABASE_URL names PostgreSQL.
    vendor = connections["default"].vendor
    if vendor == "postgresql":
        return
    # A skipif put first: pytest reads skipif marks before skip marks, and a test's other
    # reason to skip (no Redis, say) must not hide this one.
    skip = pytest.mark.skipif(
        True, reason=f"needs PostgreSQL, not {vendor}: DATABASE_URL=postgres://..."
    )
    for item in items:
        if item.get_closest_marker("postgres"):
            item.add_marker(skip, append=False)


class FrozenClock:
    """A stand-in for timezone.now() that only moves when the test says so."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture(autouse=True)
def _fresh_cache():
    # Rate limits and cached sessions must not leak between tests (locmem or Redis).
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def freeze_clock(monkeypatch) -> Callable[[datetime], FrozenClock]:
    """freeze_clock(start): django.utils.timezone.now() returns `start` until advanced."""

    def freeze(start: datetime) -> FrozenClock:
        frozen = FrozenClock(start)
        monkeypatch.setattr(timezone, "now", frozen)
        return frozen

    return freeze


@pytest.fixture
def password() -> str:
    return PASSWORD


@pytest.fixture
def make_user(db) -> Callable[..., object]:
    def make(email: str = "ann@example.com", **extra):
        extra.setdefault("name", "Ann Example")
        return get_user_model().objects.create_user(email=email, password=PASSWORD, **extra)

    return make


@pytest.fixture
def user(make_user):
    return make_user()


@pytest.fixture
def staff_user(make_user):
    """Support staff: All users, any user's history (view_user) and Reset 2FA; the staff
    flag alone opens nothing. 2FA is off: staff pages also need a verified session."""
    from django.contrib.auth.models import Permission

    staff = make_user("staff@example.com", name="Sam Staff", is_staff=True)
    rights = Permission.objects.filter(
        content_type__app_label="accounts",
        content_type__model="user",
        codename__in=["view_user", "reset_two_factor"],
    )
    assert rights.count() == 2
    staff.user_permissions.add(*rights)
    return get_user_model().objects.get(pk=staff.pk)  # fresh: no stale permission cache


@pytest.fixture
def staff_without_permissions(make_user):
    """A staff member granted no permission at all: must be refused like a customer."""
    return make_user("bare-staff@example.com", name="Bea Bare", is_staff=True)


@pytest.fixture
def enrolled(db) -> Callable[..., str]:
    """Turn on 2FA for a user; returns the secret. Burns the step of `at` (default: now)."""

    def enroll(user, *, at: datetime | None = None) -> str:
        session: dict = {}
        at = at or timezone.now()
        device = services.begin_enrollment(user=user, session=session, now=at)
        secret = device.secret
        services.confirm_enrollment(
            user=user, session=session, code=pyotp.TOTP(secret).at(at), now=at
        )
        return secret

    return enroll


@pytest.fixture
def user_with_totp(user, enrolled):
    """(user, secret) for a user whose 2FA was switched on two minutes ago."""
    secret = enrolled(user, at=timezone.now() - timezone.timedelta(minutes=2))
    return user, secret


@pytest.fixture
def totp_code() -> Callable[..., str]:
    """totp_code(secret, at=datetime, steps=0): the app's code, `steps` steps away from `at`."""

    def code(secret: str, *, at: datetime | None = None, steps: int = 0) -> str:
        at = at or timezone.now()
        return pyotp.TOTP(secret).at(at, counter_offset=steps)

    return code


@pytest.fixture
def wrong_code() -> Callable[..., str]:
    """wrong_code(secret, at=datetime): six digits that are the code of no step near `at`.

    Not even of a step inside the drift window (a drifted code is "your clock is off", not
    "wrong"), with two steps to spare for a test that moves its clock a little; so the
    refusal is always the plain "That code is not right". Each call gives another code, as
    a guesser would: the same wrong code again within its 30 seconds is not a new attempt
    (services.complete_pending_login), and tests of the lock count attempts.
    """
    given: set[str] = set()

    def code(secret: str, *, at: datetime | None = None) -> str:
        at = at or timezone.now()
        reach = otp.DRIFT_WINDOW + 2
        near = {pyotp.TOTP(secret).at(at, counter_offset=n) for n in range(-reach, reach + 1)}
        candidates = (f"{n:06d}" for n in range(1_000_000))
        found = next(c for c in candidates if c not in near and c not in given)
        given.add(found)
        return found

    return code


@pytest.fixture
def log_in_with_sudo(db) -> Callable[..., object]:
    """log_in_with_sudo(client, user): logged in, and "confirm it's you" answered just now
    (at timezone.now(), so a frozen clock sets when it lapses). Returns the client.

    Without the password dialog and without spending a code, for tests whose subject comes
    after the proof; tests of the proof itself post the dialog. A user with 2FA on gets a
    session that passed the code step too, as a real login would (staff pages need it).
    The user's security log is emptied afterwards, so it holds only what the test does next.
    """
    from accounts.models import SecurityEvent

    def log_in(client, user):
        client.force_login(user)
        session = client.session
        session[services.SUDO_SESSION_KEY] = {
            "user_id": str(user.pk),
            "at": timezone.now().timestamp(),
        }
        if services.is_two_factor_enabled(user=user):
            services.mark_session_verified(session=session, user=user, method=Method.TOTP)
        session.save()
        SecurityEvent.objects.filter(user=user).delete()
        return client

    return log_in


@pytest.fixture
def log_in_verified(enrolled) -> Callable[..., str]:
    """force_login for a session that passed the second factor (staff pages and the admin
    need one); 2FA is switched on first if it is off. Returns the user's TOTP secret."""
    from twofactor.models import TOTPDevice

    def log_in(client, user) -> str:
        device = TOTPDevice.objects.filter(user=user, confirmed_at__isnull=False).first()
        secret = (
            device.secret if device else enrolled(user, at=timezone.now() - timedelta(minutes=2))
        )
        client.force_login(user)
        session = client.session
        services.mark_session_verified(session=session, user=user, method=Method.TOTP)
        session.save()
        return secret

    return log_in


@pytest.fixture
def log_in_with_code(totp_code):
    """Log `client` in through both real steps (password, then an app code)."""

    def log_in(client, user, secret: str):
        client.post("/accounts/login/", {"username": user.email, "password": PASSWORD})
        response = client.post("/2fa/login/", {"code": totp_code(secret)})
        assert response.status_code == 302, "the code step refused the code"
        return client

    return log_in
