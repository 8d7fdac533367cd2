"""Where the current action comes from, for listeners that get no request.

twofactor's signals carry the user but no request (twofactor knows nothing of
HTTP clients), yet the security log wants the IP and browser of each event.
This middleware puts them in a context variable for the length of a request;
management commands set their own with `action_origin()`.

A ContextVar rather than a thread-local: each request (thread or asyncio task)
sees only its own value, and it is reset when the response leaves.
"""

import ipaddress
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest, HttpResponse

from portal.client_ip import client_ip
from twofactor.client import request_user_agent


@dataclass(frozen=True)
class ActionOrigin:
    ip: str | None = None
    user_agent: str = ""
    # The logged-in user making the request (a lazy object), to tell "staff
    # changed Ann's password" from "Ann changed her password".
    request_user: Any = None


_current_origin: ContextVar[ActionOrigin | None] = ContextVar("action_origin", default=None)


def _valid_ip(value: str) -> str | None:
    # X-Forwarded-For is client-controlled: a junk "address" must not reach a
    # PostgreSQL inet column and turn a user's action into a DataError.
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        return None


def origin_from_request(request: HttpRequest) -> ActionOrigin:
    return ActionOrigin(
        ip=_valid_ip(client_ip(request)),
        # Client-supplied and unbounded: cleaned and cut to the column's size.
        user_agent=request_user_agent(request),
        request_user=getattr(request, "user", None),
    )


def current_origin() -> ActionOrigin:
    return _current_origin.get() or ActionOrigin()


@contextmanager
def action_origin(origin: ActionOrigin) -> Iterator[None]:
    token = _current_origin.set(origin)
    try:
        yield
    finally:
        _current_origin.reset(token)


class ActionOriginMiddleware:
    """Must come after AuthenticationMiddleware (it keeps a reference to request.user)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        with action_origin(origin_from_request(request)):
            return self.get_response(request)
