"""The security log: what happened to an account, as SecurityEvents, and how to read it.

The receivers that write events live in accounts.receivers (every signal the
project listens to, in one place); this module holds the writing and reading.
Events are written in the transaction of the change they describe (twofactor's
signals are sent inside it), so a change that rolls back leaves no event, and
an event that fails to save rolls the change back. Callers pass words, never a
secret or a code.

An event keeps its detail twice: `detail`, English words for exports, the admin
and support; and `facts`, the values those words were made of, so the log and
its e-mails say it again in the reader's language and time zone (describe_event).
"""

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from django.core.paginator import Page, Paginator
from django.utils import formats, timezone, translation
from django.utils.functional import Promise
from django.utils.translation import gettext, gettext_noop, ngettext

from accounts.middleware import ActionOrigin, current_origin
from accounts.models import SecurityEvent, User
from twofactor.models import TwoFactorPolicy
from twofactor.services.policy import POLICY_FIELDS
from twofactor.signals import Method, Outcome

Kind = SecurityEvent.Kind

# The detail of a login, a failed code: words for the signal contract's names. Marked
# here (not taken from Method's labels) so the catalog has them whatever twofactor marks;
# tests check they are the labels' words.
PASSWORD_ONLY = gettext_noop("password only")
METHOD_WORDS: dict[str, str] = {
    Method.TOTP: gettext_noop("authenticator app"),
    Method.BACKUP: gettext_noop("backup code"),
    Method.WEBAUTHN: gettext_noop("passkey or security key"),
    Method.PASSKEY: gettext_noop("passkey, without a password"),
    Method.TRUSTED_BROWSER: gettext_noop("trusted browser, no code asked"),
}
FAILURE_WORDS: dict[tuple[str, str], str] = {
    (Method.TOTP, Outcome.INVALID): gettext_noop("wrong authenticator code"),
    (Method.TOTP, Outcome.REPLAYED): gettext_noop("authenticator code already used"),
    (Method.TOTP, Outcome.DRIFT): gettext_noop(
        "authenticator code from a device with a wrong clock"
    ),
    (Method.BACKUP, Outcome.INVALID): gettext_noop("wrong or used backup code"),
    (Method.WEBAUTHN, Outcome.KEY_REFUSED): gettext_noop("passkey or security key not accepted"),
    # A genuine key only counts up: a counter that went backwards means another
    # authenticator holds the same key. Shown in parentheses: no parentheses inside.
    (Method.WEBAUTHN, Outcome.SIGN_COUNT): gettext_noop(
        "signature counter of a passkey or security key went backwards: "
        "the key may have been copied"
    ),
    # A passkey alone (no password) is refused for the same two reasons; the method's own
    # label ("passkey, without a password") would not say what went wrong.
    (Method.PASSKEY, Outcome.KEY_REFUSED): gettext_noop("passkey not accepted"),
    (Method.PASSKEY, Outcome.SIGN_COUNT): gettext_noop(
        "signature counter of a passkey went backwards: the passkey may have been copied"
    ),
}
# The admin turned password login off (accounts.admin): a fixed phrase, no facts.
PASSWORD_LOGIN_DISABLED = gettext_noop("password login disabled")
# A policy change, setting by setting (the words of twofactor.services.policy, whole
# phrases so a translator sees "on" and "off" in their sentence).
POLICY_SWITCH_WORDS: dict[tuple[str, bool], str] = {
    ("require_for_staff", True): gettext_noop("2FA required for staff: on"),
    ("require_for_staff", False): gettext_noop("2FA required for staff: off"),
    ("require_for_everyone", True): gettext_noop("2FA required for every user: on"),
    ("require_for_everyone", False): gettext_noop("2FA required for every user: off"),
    ("allow_trusted_browsers", True): gettext_noop("trusted browsers allowed: on"),
    ("allow_trusted_browsers", False): gettext_noop("trusted browsers allowed: off"),
}
# Details that are the words of a person (a staff reason, a key's name): shown as
# written, never looked up in a catalog.
USER_WORDS_KINDS = frozenset(
    {Kind.TWO_FACTOR_RESET, Kind.SESSIONS_ENDED_BY_STAFF, Kind.KEY_ADDED, Kind.KEY_REMOVED}
)
# Said after a colon ("2FA reset by staff: Lost phone"), the others in parentheses.
COLON_KINDS = frozenset({Kind.TWO_FACTOR_RESET, Kind.SESSIONS_ENDED_BY_STAFF})
DETAIL_MAX_LENGTH = SecurityEvent._meta.get_field("detail").max_length
RECENT_EVENTS = 20
HISTORY_PAGE_SIZE = 50


def record_event(
    *,
    user: User,
    kind: str,
    detail: str | Promise = "",
    facts: Mapping[str, Any] | None = None,
    actor: User | None = None,
    origin: ActionOrigin | None = None,
    now: datetime | None = None,
) -> SecurityEvent:
    """Write one event. Callers pass words (`detail`: a fixed phrase, a person's words)
    or the facts the words are made of (`facts`, see DETAIL_WORDS), never a secret or a code.

    `detail` is stored in English, in UTC, whatever the request speaks: exports, the
    admin and support read it. The log pages and e-mails say it again from the facts.
    """
    origin = origin or current_origin()
    facts = dict(facts or {})
    with translation.override("en"), timezone.override(UTC):
        words = str(detail) if detail else (_words_from_facts(kind, facts) or "")
    return SecurityEvent.objects.create(
        user=user,
        kind=kind,
        detail=words[:DETAIL_MAX_LENGTH],
        facts=facts,
        actor=actor,
        ip=origin.ip,
        user_agent=origin.user_agent,
        created_at=now or timezone.now(),
    )


def recent_events(*, user: User, limit: int = RECENT_EVENTS) -> list[SecurityEvent]:
    """Newest first, for "Recent security activity" on My profile."""
    return list(SecurityEvent.objects.filter(user=user).select_related("actor")[:limit])


def history_page(*, user: User, number: int | str | None) -> Page:
    """One page of a user's full history; a bad page number gets the nearest real page."""
    events = SecurityEvent.objects.filter(user=user).select_related("actor")
    return Paginator(events, HISTORY_PAGE_SIZE).get_page(number)


def prune_events(*, older_than_days: int, now: datetime | None = None) -> int:
    """Delete events older than the retention period; returns how many went."""
    if older_than_days < 1:
        raise ValueError("The retention period must be at least one day.")
    cutoff = (now or timezone.now()) - timedelta(days=older_than_days)
    deleted, _ = SecurityEvent.objects.filter(created_at__lt=cutoff).delete()
    return deleted


# --- Reading the log: in the reader's language and time zone ------------------------------
def describe_event(*, kind: str, detail: str, facts: Mapping[str, Any] | None) -> str:
    """The kind in words, with the detail where it adds something, in the active
    language and time zone: SecurityEvent.description, and the e-mails' words."""
    label = str(Kind(kind).label) if kind in Kind.values else kind
    words = event_detail(kind=kind, detail=detail, facts=facts)
    if not words:
        return label
    if kind in COLON_KINDS:
        # Translators: a security log line, e.g. "2FA reset by staff: Lost phone".
        return gettext("%(event)s: %(detail)s") % {"event": label, "detail": words}
    # Translators: a security log line, e.g. "Backup code used (4 left)".
    return gettext("%(event)s (%(detail)s)") % {"event": label, "detail": words}


def event_detail(*, kind: str, detail: str, facts: Mapping[str, Any] | None) -> str:
    """The detail in the active language and time zone: worded again from its facts;
    without facts (events older than them), the stored words, translated when they are
    one of the fixed phrases above, else as stored. A person's words stay as written."""
    words = _words_from_facts(kind, facts) if facts else None
    if words is not None:
        return words
    if not detail or kind in USER_WORDS_KINDS:
        return detail
    return gettext(detail)


def _words_from_facts(kind: str, facts: Mapping[str, Any]) -> str | None:
    wording = DETAIL_WORDS.get(kind)
    if wording is None or not facts:
        return None
    try:
        return wording(facts)
    except (KeyError, TypeError, ValueError, AttributeError):
        # Facts of another shape (an older or hand-edited row): the stored words stand.
        return None


def _local_time(iso: str) -> str:
    """A stored time as the reader's clock shows it, with the zone ("06:09 UTC", "15:09 JST")."""
    return formats.date_format(timezone.localtime(datetime.fromisoformat(iso)), "TIME_FORMAT")


def _method_words(method: str) -> str:
    # A method added to twofactor before its words here: its own label (ValueError if
    # it is no method at all).
    return gettext(METHOD_WORDS.get(method) or str(Method(method).label))


def _login_words(facts: Mapping[str, Any]) -> str:
    method = facts["method"]
    return gettext(PASSWORD_ONLY) if method is None else _method_words(method)


def _code_failed_words(facts: Mapping[str, Any]) -> str:
    words = FAILURE_WORDS.get((facts["method"], facts["outcome"]))
    return gettext(words) if words else _method_words(facts["method"])


def _backup_code_used_words(facts: Mapping[str, Any]) -> str:
    remaining = int(facts["remaining"])
    return ngettext("%(count)s left", "%(count)s left", remaining) % {"count": remaining}


def _account_locked_words(facts: Mapping[str, Any]) -> str:
    return gettext("until %(time)s") % {"time": _local_time(facts["until"])}


def _browser_trusted_words(facts: Mapping[str, Any]) -> str:
    days = int(facts["days"])
    return ngettext(
        "no code asked there for %(days)s day", "no code asked there for %(days)s days", days
    ) % {"days": days}


def _trusted_browsers_removed_words(facts: Mapping[str, Any]) -> str:
    return str(int(facts["count"]))


def _sessions_ended_words(facts: Mapping[str, Any]) -> str:
    count = int(facts["sessions"])
    sessions = ngettext("%(count)s session", "%(count)s sessions", count) % {"count": count}
    untrusted = int(facts.get("trusted_browsers", 0))
    if not untrusted:
        return sessions
    browsers = ngettext("%(count)s trusted browser", "%(count)s trusted browsers", untrusted) % {
        "count": untrusted
    }
    # Translators: what "Sign out all other sessions" ended, e.g. "2 sessions, 1 trusted browser".
    return gettext("%(sessions)s, %(browsers)s") % {"sessions": sessions, "browsers": browsers}


def _email_change_requested_words(facts: Mapping[str, Any]) -> str:
    return gettext("to %(email)s") % {"email": facts["new_email"]}


def _email_changed_words(facts: Mapping[str, Any]) -> str:
    return gettext("from %(old)s to %(new)s") % {
        "old": facts["old_email"],
        "new": facts["new_email"],
    }


def _policy_changed_words(facts: Mapping[str, Any]) -> str:
    words = []
    for change in facts["changes"]:
        setting, value = change["setting"], change["value"]
        if setting == "grace_period_days":
            days = int(value)
            words.append(
                ngettext("grace period: %(days)s day", "grace period: %(days)s days", days)
                % {"days": days}
            )
        else:
            words.append(gettext(POLICY_SWITCH_WORDS[(setting, bool(value))]))
    return "; ".join(words)


def _account_changed_words(facts: Mapping[str, Any]) -> str:
    if "group" in facts:
        group = facts["group"]  # a name staff gave: never translated
        if facts["group_change"] == "deleted":
            return gettext("group %(group)s deleted") % {"group": group}
        return gettext("permissions of group %(group)s") % {"group": group}
    # The admin's field labels: Django's and our model's verbose names, each a msgid.
    return ", ".join(gettext(field) for field in facts["fields"])


def _account_deleted_words(facts: Mapping[str, Any]) -> str:
    return gettext("%(email)s, user %(id)s") % {"email": facts["email"], "id": facts["user_id"]}


# Kind -> the detail worded from the event's facts. The facts each kind is recorded with
# (JSON values, by accounts.receivers, accounts.account_changes and accounts.admin):
#   LOGIN                     method: a Method value, or None for the password alone
#   CODE_FAILED               method, outcome: a Method and an Outcome value
#   BACKUP_CODE_USED          remaining: unused codes left
#   ACCOUNT_LOCKED            until: when code entry unlocks (ISO 8601, with its offset)
#   BROWSER_TRUSTED           days: how long no code is asked there
#   TRUSTED_BROWSERS_REMOVED  count
#   SESSIONS_ENDED            sessions, and trusted_browsers (forgotten with them)
#   EMAIL_CHANGE_REQUESTED    new_email
#   EMAIL_CHANGED             old_email, new_email
#   POLICY_CHANGED            changes: [{setting: a policy field, value: its new value}]
#   ACCOUNT_CHANGED           fields: the admin's field labels; or group, group_change
#                             ("permissions" or "deleted")
#   ACCOUNT_DELETED           email, user_id
DETAIL_WORDS: dict[str, Callable[[Mapping[str, Any]], str]] = {
    Kind.LOGIN: _login_words,
    Kind.CODE_FAILED: _code_failed_words,
    Kind.BACKUP_CODE_USED: _backup_code_used_words,
    Kind.ACCOUNT_LOCKED: _account_locked_words,
    Kind.BROWSER_TRUSTED: _browser_trusted_words,
    Kind.TRUSTED_BROWSERS_REMOVED: _trusted_browsers_removed_words,
    Kind.SESSIONS_ENDED: _sessions_ended_words,
    Kind.EMAIL_CHANGE_REQUESTED: _email_change_requested_words,
    Kind.EMAIL_CHANGED: _email_changed_words,
    Kind.POLICY_CHANGED: _policy_changed_words,
    Kind.ACCOUNT_CHANGED: _account_changed_words,
    Kind.ACCOUNT_DELETED: _account_deleted_words,
}


# --- The facts of the signals' events ----------------------------------------------------
def login_facts(method: Method | None) -> dict[str, Any]:
    """How a login passed: a second factor's Method, or None for the password alone
    ("authenticator app", "backup code", ..., "password only")."""
    return {"method": method.value if method is not None else None}


def failure_facts(method: Method, outcome: Outcome) -> dict[str, Any]:
    return {"method": method.value, "outcome": outcome.value}


def policy_facts(changes: list[str], policy: TwoFactorPolicy | None) -> dict[str, Any]:
    """The settings a policy change set, read back from twofactor's words for them
    ("grace period: 7 days") and the policy row; {} if a word is not one of its labels."""
    if policy is None:
        return {}
    with translation.override("en"):
        fields = {str(label): name for name, label in POLICY_FIELDS.items()}
    changed = []
    for words in changes:
        name = fields.get(str(words).partition(": ")[0])
        if name is None:
            return {}
        changed.append({"setting": name, "value": getattr(policy, name)})
    return {"changes": changed}
