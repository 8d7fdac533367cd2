"""portal.sessions: login()'s key rotation in one UPDATE, and the old key dead with it."""

import pytest
from django.contrib.sessions.models import Session
from django.db import connection
from django.test.utils import CaptureQueriesContext

from portal.sessions import SessionStore

pytestmark = pytest.mark.django_db


def saved_session(**data) -> SessionStore:
    session = SessionStore()
    session.update(data)
    session.save()
    return session


def test_rotation_renames_the_row_in_one_update():
    session = saved_session(step="password")
    old_key = session.session_key
    session = SessionStore(old_key)
    session["step"] = "code"
    with CaptureQueriesContext(connection) as queries:
        session.cycle_key()
        session.save()
    statements = [
        q["sql"]
        for q in queries
        if not q["sql"].startswith(("BEGIN", "COMMIT", "SAVEPOINT", "RELEASE"))
    ]
    # (Loaded above, by the assignment.) One UPDATE renames the row and writes the data.
    assert len(statements) == 1 and statements[0].startswith("UPDATE")
    assert session.session_key != old_key
    assert not Session.objects.filter(session_key=old_key).exists()
    assert SessionStore(session.session_key).load() == {"step": "code"}
    assert SessionStore(old_key).load() == {}  # the old key opens nothing


def test_a_session_without_a_row_is_inserted_once_at_the_save():
    session = SessionStore()
    session["pending"] = 1
    with CaptureQueriesContext(connection) as queries:
        session.cycle_key()
        session.save()
    statements = [q["sql"] for q in queries if q["sql"].startswith(("INSERT", "UPDATE", "SELECT"))]
    assert len(statements) == 1 and statements[0].startswith("INSERT")
    assert SessionStore(session.session_key).load() == {"pending": 1}


def test_flushing_after_a_rotation_deletes_the_row_under_the_old_key():
    session = saved_session(user="1")
    old_key = session.session_key
    session = SessionStore(old_key)
    assert session["user"] == "1"
    session.cycle_key()
    session.flush()
    assert not Session.objects.filter(session_key=old_key).exists()
    assert Session.objects.count() == 0


def test_rotating_a_session_deleted_meanwhile_makes_a_new_one():
    session = saved_session(user="1")
    old_key = session.session_key
    session = SessionStore(old_key)
    assert session["user"] == "1"  # loaded, as a request has it
    Session.objects.all().delete()  # logged out in another browser, say
    session.cycle_key()
    session.save()
    assert SessionStore(session.session_key).load() == {"user": "1"}
    assert not Session.objects.filter(session_key=old_key).exists()


def test_rotating_twice_still_renames_the_original_row():
    session = saved_session(user="1")
    old_key = session.session_key
    session = SessionStore(old_key)
    assert session["user"] == "1"
    session.cycle_key()
    session.cycle_key()
    session.save()
    assert Session.objects.count() == 1
    assert not Session.objects.filter(session_key=old_key).exists()
