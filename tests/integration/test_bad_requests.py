"""Requests Django refuses (malformed bodies, charsets, Host headers) get the portal's
400 page, never a 500; odd input Django accepts never gives a 500 either.

The test client skips the CSRF check unless told otherwise, and the CSRF check
is where a POST body is first read: so these clients enforce it and carry a
CSRF cookie, as a browser does. The same requests then go over a real socket
to gunicorn with the production settings.
"""

import re
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from django.conf import settings
from django.test import Client

from tests.integration.servers import Server, manage, production_env, start_gunicorn, stop

PAGE_TEXT = "The portal could not understand what your browser sent"
BOUNDARY = "portal-test-boundary"
CSRF_SECRET = "a" * 32  # a well-formed CSRF cookie: the check goes on to read the body
FORM = "application/x-www-form-urlencoded"
MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"


def multipart(fields: int = 0, files: int = 0) -> bytes:
    parts = [
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="f{n}"\r\n\r\nx\r\n'
        for n in range(fields)
    ]
    parts += [
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="u{n}"; filename="u{n}.txt"\r\n'
        "Content-Type: text/plain\r\n\r\nx\r\n"
        for n in range(files)
    ]
    return ("".join(parts) + f"--{BOUNDARY}--\r\n").encode()


def too_many_fields() -> bytes:
    return "&".join(f"f{n}=x" for n in range(settings.DATA_UPLOAD_MAX_NUMBER_FIELDS + 1)).encode()


# Bodies Django refuses: name -> (body, Content-Type). Functions, so settings are read late.
REFUSED_BODIES = {
    "multipart without a boundary": lambda: (b"username=a", "multipart/form-data"),
    "multipart with an invalid boundary": lambda: (
        b"username=a",
        "multipart/form-data; boundary=" + "x" * 300,
    ),
    "too many form fields": lambda: (too_many_fields(), FORM),
    "too many multipart fields": lambda: (
        multipart(fields=settings.DATA_UPLOAD_MAX_NUMBER_FIELDS + 1),
        MULTIPART,
    ),
    "too many files": lambda: (
        multipart(files=settings.DATA_UPLOAD_MAX_NUMBER_FILES + 1),
        MULTIPART,
    ),
    "form body too large": lambda: (
        b"username=" + b"x" * settings.DATA_UPLOAD_MAX_MEMORY_SIZE,
        FORM,
    ),
    # Django reads form bodies as UTF-8 only and refuses any other declared charset.
    "form in UTF-16": lambda: ("username=a&password=b".encode("utf-16"), f"{FORM}; charset=utf-16"),
    "form in Latin-1": lambda: (b"username=caf\xe9", f"{FORM}; charset=latin-1"),
}

# Anonymous pages and pages of a logged-in user (sudo asks for the password there).
PAGES = {
    "login": ("/accounts/login/", False),
    "code step": ("/2fa/login/", False),
    "password reset": ("/accounts/password-reset/", False),
    "set new password": ("/accounts/password-reset/MQ/set-password/", False),
    "sudo (enable 2FA)": ("/2fa/enable/", True),
    "disable 2FA": ("/2fa/disable/", True),
}
HTMX = {"plain": {}, "htmx": {"HTTP_HX_REQUEST": "true"}}


def assert_bad_request_page(status: int, body: str, headers) -> None:
    assert status == 400, body[:500]
    assert PAGE_TEXT in body
    assert "Request not understood" in body
    assert "Traceback" not in body
    assert "no-store" in headers.get("Cache-Control", headers.get("cache-control", ""))


@pytest.fixture
def browser(db, make_user):
    def make(logged_in: bool) -> Client:
        client = Client(enforce_csrf_checks=True, raise_request_exception=False)
        client.cookies[settings.CSRF_COOKIE_NAME] = CSRF_SECRET
        if logged_in:
            client.force_login(make_user())
        return client

    return make


# --- Test client ------------------------------------------------------------------------------
@pytest.mark.parametrize("htmx", HTMX)
@pytest.mark.parametrize("page", PAGES)
@pytest.mark.parametrize("refused", REFUSED_BODIES)
def test_a_body_django_refuses_gets_the_400_page(browser, refused, page, htmx):
    path, logged_in = PAGES[page]
    body, content_type = REFUSED_BODIES[refused]()
    client = browser(logged_in)
    response = client.generic(
        "POST", path, body, content_type=content_type, HTTP_X_CSRFTOKEN=CSRF_SECRET, **HTMX[htmx]
    )
    assert_bad_request_page(response.status_code, response.content.decode(), response)


@pytest.mark.parametrize("htmx", HTMX)
@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize(
    "host", ["ev!l$.example", "portal.example.com:not-a-port", "evil.example", "a" * 300]
)
def test_a_host_header_django_refuses_gets_the_400_page(browser, settings, host, method, htmx):
    settings.ALLOWED_HOSTS = ["testserver"]
    response = browser(False).generic(method, "/accounts/login/", HTTP_HOST=host, **HTMX[htmx])
    assert_bad_request_page(response.status_code, response.content.decode(), response)


def test_the_400_page_reads_neither_the_session_nor_the_user(browser, django_assert_num_queries):
    body, content_type = REFUSED_BODIES["form in UTF-16"]()
    client = browser(True)
    with django_assert_num_queries(0):
        response = client.generic("POST", "/2fa/enable/", body, content_type=content_type)
    assert response.status_code == 400
    assert "Account menu" not in response.content.decode()


# Odd input that Django accepts (it decodes leniently or ignores it): whatever the page
# answers, it is never a 500 and never a traceback.
ACCEPTED = {
    "non-UTF-8 bytes in a form": dict(
        data=b"username=\xff\xfe&password=\xc3\x28", content_type=FORM
    ),
    "unknown charset": dict(data=b"username=a", content_type=f"{FORM}; charset=x-klingon"),
    "JSON to a form view": dict(data=b'{"username": "a"}', content_type="application/json"),
    "binary junk as JSON": dict(data=b"\xff{\x00", content_type="application/json"),
    "plain text": dict(data=b"hello", content_type="text/plain"),
    "multipart garbage": dict(data=b"garbage\x00\xff", content_type=MULTIPART),
    "truncated multipart": dict(
        data=f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="username"\r\n\r\nan'.encode(),
        content_type=MULTIPART,
    ),
    "malformed cookie header": dict(
        data=b"username=a", content_type=FORM, HTTP_COOKIE='a="b; \x00; ;;=; sessionid="\xff'
    ),
    "huge cookie": dict(
        data=b"username=a", content_type=FORM, HTTP_COOKIE="sessionid=" + "x" * 8000
    ),
}


@pytest.mark.parametrize("htmx", HTMX)
@pytest.mark.parametrize("page", PAGES)
@pytest.mark.parametrize("odd", ACCEPTED)
def test_odd_input_django_accepts_never_gives_a_500(browser, odd, page, htmx):
    path, logged_in = PAGES[page]
    response = browser(logged_in).generic("POST", path, **ACCEPTED[odd], **HTMX[htmx])
    assert response.status_code < 500
    assert "Traceback" not in response.content.decode(errors="replace")


# "12, 12" is what an ASGI server makes of two Content-Length headers.
@pytest.mark.parametrize("content_length", ["abc", "12, 12"])
def test_an_invalid_content_length_never_gives_a_500(browser, content_length):
    response = browser(False).generic(
        "POST", "/accounts/login/", b"username=a", content_type=FORM, CONTENT_LENGTH=content_length
    )
    assert response.status_code < 500


@pytest.mark.parametrize(
    "path",
    [
        "/accounts/login/?next=%ff%fe",
        "/accounts/login/?%ff=%c3%28",
        "/accounts/login/%ff%fe/",
        "/accounts/password-reset/%ff/%fe/set-password/",
        "/2fa/login/?next=%c3%28",
    ],
)
def test_non_utf8_bytes_in_paths_and_query_strings_never_give_a_500(browser, path):
    response = browser(False).get(path)
    assert response.status_code < 500


# --- A real server ----------------------------------------------------------------------------
@dataclass
class LiveServer:
    server: Server
    log: list[str]  # gunicorn's stderr: Django's log lines


@pytest.fixture(scope="module")
def live(tmp_path_factory) -> Iterator[LiveServer]:
    """gunicorn with the production settings on a fresh SQLite file; its log is kept."""
    database = tmp_path_factory.mktemp("bad-requests") / "db.sqlite3"
    env = production_env(DATABASE_URL=f"sqlite:///{database}")
    manage(env, "migrate", "--no-input", "--skip-checks", "-v0")
    server = start_gunicorn(env, workers=1)
    # Django logs every refused request with its traceback: drain the pipe so a
    # full one never blocks the worker, and keep the lines to look for 500s.
    log: list[str] = []
    threading.Thread(target=lambda: log.extend(server.process.stderr), daemon=True).start()
    yield LiveServer(server, log)
    stop(server)


def send(live: LiveServer, head: str, body: bytes = b"") -> tuple[int, str, str]:
    """One raw HTTP/1.1 exchange: (status, headers, body as text)."""
    raw = b""
    with socket.create_connection(live.server.address, timeout=30) as sock:
        try:
            sock.sendall(head.encode("latin-1") + body)
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the server answered and closed before taking the whole body
        try:
            while chunk := sock.recv(65536):
                raw += chunk
        except OSError:
            pass
    header_block, _, content = raw.partition(b"\r\n\r\n")
    status_line = header_block.split(b"\r\n", 1)[0].decode("latin-1")
    match = re.match(r"HTTP/1\.[01] (\d{3})", status_line)
    assert match, f"no HTTP response: {raw[:200]!r}"
    return int(match.group(1)), header_block.decode("latin-1"), content.decode(errors="replace")


def post_head(path: str, content_type: str, length: int, extra: str = "") -> str:
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: http://127.0.0.1\r\n"
        f"Cookie: csrftoken={CSRF_SECRET}\r\nX-CSRFToken: {CSRF_SECRET}\r\n"
        f"Content-Type: {content_type}\r\nContent-Length: {length}\r\nConnection: close\r\n"
        f"{extra}\r\n"
    )


LIVE_REFUSED = ["multipart without a boundary", "too many form fields", "form in UTF-16"]
LIVE_HTMX = {"plain": "", "htmx": "HX-Request: true\r\n"}


@pytest.mark.parametrize("htmx", LIVE_HTMX)
@pytest.mark.parametrize("page", ["login", "code step", "password reset"])
@pytest.mark.parametrize("refused", LIVE_REFUSED)
def test_live_server_answers_refused_bodies_with_the_400_page(live, refused, page, htmx):
    body, content_type = REFUSED_BODIES[refused]()
    head = post_head(PAGES[page][0], content_type, len(body), LIVE_HTMX[htmx])
    status, headers, text = send(live, head, body)
    assert status == 400, text[:500]
    assert PAGE_TEXT in text and "no-store" in headers.lower()


def test_live_server_answers_a_body_over_the_limit_with_the_400_page(live):
    # The length alone is refused: Django never reads the body it announces.
    head = post_head("/accounts/login/", FORM, settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)
    status, _, text = send(live, head, b"username=a")
    assert status == 400 and PAGE_TEXT in text


@pytest.mark.parametrize("host", ["evil.example", "ev!l$.example"])
def test_live_server_answers_a_bad_host_with_the_400_page(live, host):
    status, _, text = send(live, f"GET /accounts/login/ HTTP/1.1\r\nHost: {host}\r\n\r\n")
    assert status == 400 and PAGE_TEXT in text


@pytest.mark.parametrize(
    "request_line, headers",
    [
        ("GET /accounts/login/\xff\xfe HTTP/1.1", ""),
        ("GET /accounts/login/?next=\xff%fe HTTP/1.1", ""),
        ("GET /accounts/login/ HTTP/1.1", 'Cookie: \xff\xfe=\x01; sessionid="\xff\r\n'),
        ("GET /accounts/login/ HTTP/1.1", "Cookie: sessionid=" + "x" * 7000 + "\r\n"),
        # gunicorn refuses these two itself, with its own 400, before Django sees them.
        ("POST /accounts/login/ HTTP/1.1", "Content-Length: abc\r\n"),
        ("POST /accounts/login/ HTTP/1.1", "Content-Length: -5\r\n"),
    ],
)
def test_live_server_never_answers_odd_requests_with_a_500(live, request_line, headers):
    status, _, _ = send(live, f"{request_line}\r\nHost: 127.0.0.1\r\n{headers}\r\n")
    assert status < 500


def test_live_server_logged_no_server_error(live):
    # Runs after the live tests above (pytest keeps file order): not one 500 in the log.
    log = "".join(live.log)
    assert "Internal Server Error" not in log
    assert "Error handling request" not in log
