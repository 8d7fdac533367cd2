"""E-mail leaves the request: queued in the database after the commit, sent by db_worker.

The rest of the suite runs tasks at once (the immediate backend); here the real
database queue and the real worker command are used, as `make run` and
production do.
"""

import pytest
from django.core.management import call_command
from django.test import Client, override_settings
from django_tasks_db.models import DBTaskResult

DATABASE_QUEUE = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default"]}}


@pytest.fixture
def database_queue():
    with override_settings(TASKS=DATABASE_QUEUE):
        yield


def run_worker() -> None:
    call_command("db_worker", "--batch", "--no-startup-delay", "--no-reload", verbosity=0)


@pytest.mark.django_db(transaction=True)
def test_a_reset_email_is_queued_by_the_request_and_sent_by_the_worker(
    user, mailoutbox, database_queue
):
    response = Client().post("/accounts/password-reset/", {"email": user.email})
    assert response.status_code == 302
    assert mailoutbox == []  # nothing was sent inside the request
    assert DBTaskResult.objects.count() == 1
    run_worker()
    assert [message.to for message in mailoutbox] == [[user.email]]
    assert "/accounts/password-reset/" in mailoutbox[0].body


@pytest.mark.django_db(transaction=True)
def test_a_security_notice_is_queued_and_sent_by_the_worker(
    user, enrolled, mailoutbox, database_queue
):
    enrolled(user)  # "Two-factor authentication is now on"
    assert mailoutbox == []
    run_worker()
    assert len(mailoutbox) == 1
    assert "Two-factor authentication is now on" in mailoutbox[0].subject


@pytest.mark.django_db(transaction=True)
def test_an_unknown_address_queues_the_same_task_and_the_worker_sends_nothing(
    db, mailoutbox, database_queue
):
    Client().post("/accounts/password-reset/", {"email": "nobody@example.com"})
    assert DBTaskResult.objects.count() == 1
    run_worker()
    assert mailoutbox == []
