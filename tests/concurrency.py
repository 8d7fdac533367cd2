"""Many browsers pressing the same button at once (PostgreSQL tests: one connection a thread)."""

import threading
from collections.abc import Callable

from django.db import connections
from django.test import Client


def all_at_once(clients: list[Client], request: Callable[[Client], object]) -> list:
    """request(client) for every client, released together; the responses, in order."""
    barrier = threading.Barrier(len(clients))
    responses: list = [None] * len(clients)

    def run(index: int) -> None:
        try:
            barrier.wait(timeout=10)
            responses[index] = request(clients[index])
        except Exception as error:  # noqa: BLE001 - surfaced by the assertion below
            responses[index] = error
        finally:
            connections.close_all()  # each thread opened its own connection

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(clients))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert all(hasattr(r, "status_code") for r in responses), responses
    return responses
