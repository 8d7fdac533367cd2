"""Django's database sessions, with the key rotation of login() folded into the save.

Django's cycle_key() writes the session under a new key at once (a SELECT to check the
random key is free, an INSERT) and deletes the old row (a SELECT, a DELETE); the end
of the request then saves it again (an UPDATE). Here cycle_key() only picks the new
key; the save at the end renames the row and writes the data in one UPDATE (or one
INSERT, for a session that had no row yet), a statement that commits alone. The old
key stops working at that same statement, which is what rotation is for: a key
planted or seen before the login opens nothing after it.
"""

from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING, Any

from django.contrib.sessions.backends import db
from django.contrib.sessions.backends.base import VALID_KEY_CHARS, CreateError
from django.db import IntegrityError, router, transaction
from django.utils.crypto import get_random_string


def _alone_or_in_a_savepoint(using: str) -> AbstractContextManager[Any]:
    """For one statement: outside a transaction it commits alone (no BEGIN and COMMIT
    around it); inside one, a savepoint, so a refused key leaves that transaction usable."""
    if transaction.get_connection(using).in_atomic_block:
        return transaction.atomic(using=using)
    return nullcontext()


class SessionStore(db.SessionStore):
    _rotated_from: str | None = None

    if TYPE_CHECKING:
        # The parts of Django's SessionBase this builds on, which django-stubs leaves out.
        _session: dict[str, Any]
        _session_cache: dict[str, Any]

        def _get_session(self, no_load: bool = False) -> dict[str, Any]: ...
        def _get_or_create_session_key(self) -> str: ...

    def _get_new_session_key(self) -> str:
        # 32 characters of 36 (165 bits): no other session holds the key, and if one did
        # the INSERT's unique key would refuse it (CreateError, a new key is drawn).
        return get_random_string(32, VALID_KEY_CHARS)

    def cycle_key(self) -> None:
        data = self._session  # loaded under the old key (a key with no row is forgotten)
        old_key = self.session_key
        self._session_cache = data
        # A session without a row yet simply gets one at the save, under a new key.
        self._session_key = self._get_new_session_key() if old_key else None
        self._rotated_from = self._rotated_from or old_key
        self.modified = True

    def save(self, must_create: bool = False) -> None:
        old_key, self._rotated_from = self._rotated_from, None
        if old_key is None or must_create:
            return super().save(must_create=must_create)
        using = router.db_for_write(self.model, instance=None)
        try:
            with _alone_or_in_a_savepoint(using):
                renamed = (
                    self.model.objects.using(using)
                    .filter(session_key=old_key)
                    .update(
                        session_key=self._get_or_create_session_key(),
                        session_data=self.encode(self._get_session()),
                        expire_date=self.get_expiry_date(),
                    )
                )
        except IntegrityError:  # the new key is taken (never seen): draw another
            renamed = 0
            self._session_key = None
        if not renamed:
            # The old row is gone (logged out elsewhere, expired, cleared): a new one.
            if self._session_key is None:
                self.create()
            else:
                try:
                    super().save(must_create=True)
                except CreateError:
                    self._session_key = None
                    self.create()

    def delete(self, session_key: str | None = None) -> None:
        # One DELETE (Django's reads the row first to delete it as an object). Deleting
        # this session (flush, logout) after a rotation deletes the row still under the
        # old key too: it must not outlive the session.
        if session_key is None:
            keys = {self.session_key, self._rotated_from} - {None}
            self._rotated_from = None
        else:
            keys = {session_key}
        if keys:
            self.model.objects.filter(session_key__in=keys).delete()
