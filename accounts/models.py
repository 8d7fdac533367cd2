import unicodedata
from collections.abc import Iterator
from typing import TYPE_CHECKING

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.crypto import salted_hmac
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from accounts.user_agents import describe_origin


def normalize_email_address(email: str | None) -> str:
    """The one form of an address that every lookup, uniqueness check and counter uses.

    Unicode NFKC then case folding (Unicode's NFKC_Casefold, the identifier
    comparison of RFC 8264/UTS #31), done here in Python so SQLite and
    PostgreSQL agree: "ANN@x", "ａｎｎ@x" (full width) and "ann@x" are one account
    and one rate-limit key, and "STRASSE@x" is "straße@x". The whole address
    is folded, not just the domain as Django does: e-mail is the login and
    users do not expect it to be case-sensitive.
    """
    folded = unicodedata.normalize("NFKC", (email or "").strip()).casefold()
    return unicodedata.normalize("NFKC", folded).strip()


def deliverable_email_address(email: str) -> str:
    """The address as the user gave it, for sending mail to: only trimmed, and the
    domain lower-cased (domains are case-insensitive; a folded one may not be the
    same domain: under IDNA 2008 "fußball.example" is not "fussball.example")."""
    local, at, domain = (email or "").strip().rpartition("@")
    return f"{local}{at}{domain.lower()}" if at else (email or "").strip()


class UserQuerySet(models.QuerySet["User"]):
    def bulk_create(self, objs, *args, **kwargs):
        # bulk_create skips save(): the lookup key is set here instead.
        objs = list(objs)
        for user in objs:
            user.email = deliverable_email_address(user.email)
            user.email_key = normalize_email_address(user.email)
        return super().bulk_create(objs, *args, **kwargs)


if TYPE_CHECKING:
    # The class from_queryset() builds, as the type checker should see it: mypy cannot
    # use a call as a base, and django-stubs' plugin types an assigned from_queryset()
    # only in some module orders (not in this project's). UserQuerySet changes no
    # signature, so the plain manager's types are the built class's.
    _UserManagerBase = BaseUserManager["User"]
else:
    _UserManagerBase = BaseUserManager.from_queryset(UserQuerySet)


class UserManager(_UserManagerBase):
    use_in_migrations = True

    def _create_user(self, email: str, password: str | None, **extra) -> "User":
        if not email:
            raise ValueError("An e-mail address is required.")
        user = self.model(email=deliverable_email_address(email), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **extra) -> "User":
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra)

    def create_superuser(self, email: str, password: str | None = None, **extra) -> "User":
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        if not (extra["is_staff"] and extra["is_superuser"]):
            raise ValueError("A superuser must have is_staff and is_superuser set.")
        return self._create_user(email, password, **extra)

    def get_by_natural_key(self, username: str | None) -> "User":
        return self.get(email_key=normalize_email_address(username))


# Closed accounts get an address at a domain that cannot exist (RFC 2606 .invalid).
CLOSED_ACCOUNT_DOMAIN = "accounts.invalid"


def may_manage(actor: "User", target: "User") -> bool:
    """May `actor` change, reset or delete `target`'s account (not their own)?

    Superusers manage anyone; other staff (support) only customers. A staff
    target may hold rights the actor lacks: taking over their password, address
    or second factor would hand the actor those rights.
    """
    return actor.is_superuser or not (target.is_staff or target.is_superuser)


class NullsFirstIndex(models.Index):
    """An index on `fields` (ascending) that keeps the first column's NULLs first. SQLite
    does so anyway and refuses to say it in CREATE INDEX; PostgreSQL puts them last unless
    told, and only an index in the query's order serves its ORDER BY and its seeks."""

    def create_sql(self, model, schema_editor, using="", **kwargs):
        if schema_editor.connection.vendor == "sqlite":
            return super().create_sql(model, schema_editor, using=using, **kwargs)
        first, *rest = self.fields
        ordered = models.Index(
            F(first).asc(nulls_first=True), *(F(field).asc() for field in rest), name=self.name
        )
        return ordered.create_sql(model, schema_editor, using=using, **kwargs)


class User(AbstractBaseUser, PermissionsMixin):
    # Mail goes to `email` as given; every lookup and uniqueness check uses
    # `email_key`, its one normal form (normalize_email_address), set on save.
    email = models.EmailField(_("email"), max_length=254, unique=True)
    email_key = models.CharField(max_length=320, unique=True, editable=False)
    name = models.CharField(_("name"), max_length=150, blank=True)
    is_staff = models.BooleanField(_("staff status"), default=False)
    is_active = models.BooleanField(_("active"), default=True)
    date_joined = models.DateTimeField(_("date joined"), default=timezone.now)
    # Part of the session auth hash, like the password: bumping it signs the user
    # out of every session at once (see accounts.sign_out).
    session_generation = models.PositiveIntegerField(default=0, db_default=0, editable=False)
    # The user's own language and time zone (My profile): pages after login and every
    # e-mail use them. Blank until known: the login keeps the language the browser
    # chose and the time zone its script sent (accounts.preferences).
    language = models.CharField(_("language"), max_length=16, blank=True, default="", db_default="")
    time_zone = models.CharField(
        _("time zone"), max_length=64, blank=True, default="", db_default=""
    )

    objects = UserManager()

    EMAIL_FIELD = "email"
    USERNAME_FIELD = "email"
    REQUIRED_FIELDS = ["name"]

    class Meta:
        ordering = ["email"]
        constraints = [
            # Belt and braces: the manager lower-cases, the database refuses
            # "Ann@x" next to "ann@x" even if something bypasses the manager.
            models.UniqueConstraint(Lower("email"), name="accounts_user_email_ci_unique"),
        ]
        indexes = [
            # All users sorts on these (the e-mail column already has its unique index).
            models.Index(fields=["name", "id"], name="accounts_user_name_idx"),
            models.Index(fields=["date_joined", "id"], name="accounts_user_joined_idx"),
            # Never logged in (NULL) first ascending, so last when the newest come first
            # (read backwards): "Last login" descending opens with the latest logins.
            NullsFirstIndex(fields=["last_login", "id"], name="accounts_user_login_idx"),
        ]
        permissions = [("reset_two_factor", "Can reset another user's two-factor authentication")]

    def __str__(self) -> str:
        return self.email

    def clean(self) -> None:
        super().clean()
        self.email = deliverable_email_address(self.email)
        # Forms validate `email` only: another spelling of a taken address is refused
        # here, with a message, instead of failing on email_key's unique index.
        taken = type(self)._default_manager.filter(email_key=normalize_email_address(self.email))
        if taken.exclude(pk=self.pk).exists():
            raise ValidationError(
                {"email": gettext("A user with that email address already exists.")}
            )

    def save(self, *args, **kwargs) -> None:
        self.email = deliverable_email_address(self.email)
        self.email_key = normalize_email_address(self.email)
        if kwargs.get("update_fields") is not None and "email" in kwargs["update_fields"]:
            kwargs["update_fields"] = [*kwargs["update_fields"], "email_key"]
        if kwargs.get("update_fields") is None and not self._state.adding:
            # session_generation is written only by accounts.sign_out's F() update: a
            # stale copy of the user saved in full (an admin form opened before a reset)
            # must not write an old generation back and revive the signed-out sessions.
            kwargs["update_fields"] = [
                field.name
                for field in self._meta.concrete_fields
                if not field.primary_key and field.name != "session_generation"
            ]
        super().save(*args, **kwargs)

    # Django's session auth hash covers the password; ours covers session_generation
    # too. At generation 0 it is Django's hash unchanged: adding it signed nobody out.
    def get_session_auth_hash(self) -> str:
        return self._with_generation(super().get_session_auth_hash())

    def get_session_auth_fallback_hash(self) -> Iterator[str]:
        # The same for sessions signed with a previous SECRET_KEY (SECRET_KEY_FALLBACKS).
        fallback_secrets = settings.SECRET_KEY_FALLBACKS
        for secret, password_hash in zip(
            fallback_secrets, super().get_session_auth_fallback_hash(), strict=True
        ):
            yield self._with_generation(password_hash, secret=secret)

    def _with_generation(self, password_hash: str, *, secret: str | bytes | None = None) -> str:
        if not self.session_generation:
            return password_hash
        return salted_hmac(
            "accounts.User.session_generation",
            f"{password_hash}:{self.session_generation}",
            secret=secret,
            algorithm="sha256",
        ).hexdigest()

    @property
    def is_closed(self) -> bool:
        """Closed by its owner (accounts.account_changes.close_account): kept only for its log."""
        return self.email_key.startswith("closed-") and self.email_key.endswith(
            "@" + CLOSED_ACCOUNT_DOMAIN
        )

    def get_full_name(self) -> str:
        return self.name or self.email

    def get_short_name(self) -> str:
        return self.name.split(" ")[0] if self.name else self.email

    @property
    def initials(self) -> str:
        parts = [part for part in self.name.split() if part][:2]
        if parts:
            return "".join(part[0] for part in parts).upper()
        return self.email[:1].upper()


class SecurityEvent(models.Model):
    """One line of an account's security log: what happened, when, from where, by whom.

    `detail` is short human text chosen by the code that records the event
    (a remaining count, a staff reason); it never holds a secret or a code.
    """

    class Kind(models.TextChoices):
        LOGIN = "login", _("Logged in")
        LOGIN_FAILED = "login_failed", _("Failed login (wrong password)")
        CONFIRM_FAILED = "confirm_failed", _("Wrong password at “Confirm it's you”")
        CODE_FAILED = "code_failed", _("Two-factor code refused")
        ACCOUNT_LOCKED = "account_locked", _("Account locked after failed codes")
        TWO_FACTOR_ENABLED = "two_factor_enabled", _("Two-factor authentication enabled")
        TWO_FACTOR_DISABLED = "two_factor_disabled", _("Two-factor authentication disabled")
        BACKUP_CODES_GENERATED = "backup_codes_generated", _("New backup codes generated")
        BACKUP_CODE_USED = "backup_code_used", _("Backup code used")
        # The detail is the key's name (as its owner gave it), never its id or public key.
        KEY_ADDED = "key_added", _("Passkey or security key added")
        KEY_REMOVED = "key_removed", _("Passkey or security key removed")
        TWO_FACTOR_RESET = "two_factor_reset", _("2FA reset by staff")
        PASSWORD_CHANGED = "password_changed", _("Password changed")
        PASSWORD_RESET = "password_reset", _("Password reset by e-mail link")
        # The admin's changes (accounts.admin): the actor is the staff member; the
        # detail names what changed in words ("staff status, groups"), never a value
        # of a password field.
        ACCOUNT_CREATED = "account_created", _("Account created by staff")
        ACCOUNT_CHANGED = "account_changed", _("Account changed by staff")
        # On the staff member's own log: the deleted user's log goes with the account.
        ACCOUNT_DELETED = "account_deleted", _("Deleted a user account")
        # The user's own changes on My profile.
        NAME_CHANGED = "name_changed", _("Name changed")
        EMAIL_CHANGE_REQUESTED = "email_change_requested", _("E-mail change requested")
        EMAIL_CHANGED = "email_changed", _("E-mail address changed")
        ACCOUNT_CLOSED = "account_closed", _("Account closed by its owner")
        # The security policy (on the superuser's own log): the detail says what changed.
        POLICY_CHANGED = "policy_changed", _("Security policy changed")
        # Trusted browsers ("Don't ask for a code on this browser"); a login that used
        # one is a LOGIN whose detail says "trusted browser".
        BROWSER_TRUSTED = "browser_trusted", _("Browser trusted")
        TRUSTED_BROWSERS_REMOVED = "trusted_browsers_removed", _("Trusted browsers removed")
        # Sessions (My profile's list, or staff): the detail says which or why.
        SESSIONS_ENDED = "sessions_ended", _("Signed out of other sessions")
        SESSIONS_ENDED_BY_STAFF = "sessions_ended_by_staff", _("Signed out by staff")

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="security_events",
        db_index=True,
    )
    kind = models.CharField(max_length=32, choices=Kind.choices)
    created_at = models.DateTimeField(default=timezone.now)
    ip = models.GenericIPAddressField(_("IP address"), null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    # Who did it when it was not the user (a staff reset); SET_NULL keeps the
    # user's history when the staff account is deleted.
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    # Room for a staff reset's reason (the reset form allows 500 characters).
    detail = models.CharField(max_length=500, blank=True)
    # The detail's facts (counts, times, the login method), so the log and its
    # e-mails can say it again in the reader's language and time zone; `detail`
    # keeps the English words for exports and the admin.
    facts = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # "Recent security activity" and the history pages: one user's newest first.
            models.Index(fields=["user", "-created_at"], name="accounts_secevent_user_idx"),
            # prune_security_events deletes by age across all users.
            models.Index(fields=["created_at"], name="accounts_secevent_time_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} (user {self.user_id}, {self.created_at:%Y-%m-%d %H:%M})"

    @property
    def browser(self) -> str:
        return describe_origin(self.user_agent, self.ip)

    @property
    def by_someone_else(self) -> bool:
        """Done to the user by another account (staff): its address and browser are theirs."""
        return self.actor_id is not None and self.actor_id != self.user_id

    @property
    def description(self) -> str:
        """The kind in human words, with the detail where it adds something: in the
        active language and time zone (the reader's), worded from the facts."""
        from accounts.security_log import describe_event  # it reads this model

        return describe_event(kind=self.kind, detail=self.detail, facts=self.facts)


class RateWindow(models.Model):
    """One counter in a fixed time window: password failures, or e-mails sent.

    Kept in the database, not the cache: the limits must hold on every app
    server, survive a cache flush and keep working while Redis is down.
    See accounts.rate_windows for the arithmetic.
    """

    # "<scope>:<subject>", e.g. "device:<nonce>"; subjects that name a person are HMACs.
    key = models.CharField(max_length=160, unique=True)
    # The account the window belongs to (an HMAC of the address, "" for a network),
    # so a password reset can lift every lock of that account at once.
    account = models.CharField(max_length=64, blank=True, db_index=True)
    count = models.PositiveIntegerField(default=0)
    window_started_at = models.DateTimeField()
    blocked_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["window_started_at"], name="accounts_ratewindow_age_idx")]

    def __str__(self) -> str:
        return f"{self.key.split(':', 1)[0]} window ({self.count})"


class EmailChange(models.Model):
    """A requested move to a new address, waiting for its confirmation link to be opened.

    Only the newest request of a user counts (a new one deletes the others); a
    confirmed one is kept as used, so its link works once.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="email_changes"
    )
    new_email = models.EmailField(max_length=254)
    created_at = models.DateTimeField(default=timezone.now)
    confirmed_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        state = "confirmed" if self.confirmed_at else "pending"
        return f"E-mail change of user {self.user_id} ({state})"


class DeviceToken(models.Model):
    """A device cookie's token as the server knows it: only its hash, per account.

    A token counts only while its row exists, so a copied cookie dies when the
    browser it came from logs in again (the token rotates), and every token of
    an account dies with a password reset or "sign out everywhere".
    """

    account = models.CharField(max_length=64, db_index=True)  # accounts.device_cookies.account_tag
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"Device token ({self.created_at:%Y-%m-%d})"


class UserSessionQuerySet(models.QuerySet["UserSession"]):
    def open(self) -> "UserSessionQuerySet":
        return self.filter(ended_at__isnull=True)


class UserSession(models.Model):
    """One logged-in session as its user sees it on My profile: browser, IP, last activity.

    Django's session table holds the session itself (and is not indexed by user);
    this record is found from the session (its id is kept in the session data) and
    from the user. A session whose record is ended (or gone) is logged out at its
    next request, on any app server (accounts.session_records). `auth_tag` follows
    the user's session auth hash: a session whose password or "sign out everywhere"
    generation is stale is dead to Django, and so left out of the list.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="session_records"
    )
    auth_tag = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)
    last_activity = models.DateTimeField(default=timezone.now)
    ip = models.GenericIPAddressField(_("IP address"), null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)

    objects = UserSessionQuerySet.as_manager()

    class Meta:
        ordering = ["-last_activity", "-pk"]
        indexes = [
            models.Index(
                fields=["user", "-last_activity"],
                name="accounts_session_open_idx",
                condition=models.Q(ended_at__isnull=True),
            ),
            models.Index(fields=["last_activity"], name="accounts_session_age_idx"),
        ]

    def __str__(self) -> str:
        state = "ended" if self.ended_at else "open"
        return f"Session of user {self.user_id} ({state})"

    @property
    def browser(self) -> str:
        return describe_origin(self.user_agent, self.ip)
