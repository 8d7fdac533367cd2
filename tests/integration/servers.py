"""Real gunicorn servers on loopback ports, and a tiny cookie-keeping HTTP client.

Used by the integration tests (and the login benchmark): they talk HTTP to
separate processes, so nothing is shared through this test process's memory.
"""

from __future__ import annotations

import atexit
import html
import http.client
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode, urlsplit, urlunsplit

from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parents[2]
CSRF_INPUT = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


_static_root: str | None = None


def collected_static() -> str:
    """collectstatic once per test process into a private folder, as `make serve` does.

    Production uses whitenoise's manifest storage, which needs the collected files.
    """
    global _static_root
    if _static_root is None:
        folder = tempfile.mkdtemp(prefix="portal-static-")
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        env = production_env(STATIC_ROOT=folder)
        manage(env, "collectstatic", "--no-input", "--skip-checks", "-v0")
        _static_root = folder
    return _static_root


# A production e-mail configuration (check --deploy refuses the console backend and a
# missing EMAIL_HOST) aimed at a local port where no mail server listens. These servers
# run no task worker, so nothing is ever sent; if a mail were, it would fail, not leave.
SMTP_ENV = {
    "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
    "EMAIL_HOST": "127.0.0.1",
    "EMAIL_PORT": "2525",
    "DEFAULT_FROM_EMAIL": "Customer Portal <no-reply@portal.example.com>",
    "SUPPORT_EMAIL": "support@portal.example.com",
    "SITE_URL": "https://portal.example.com",  # links in e-mails
}


def production_env(**overrides: str) -> dict[str, str]:
    """The environment of `make serve`, minus TLS: plain http on loopback."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key
        not in {
            "DJANGO_SETTINGS_MODULE",
            "DEBUG",
            "TEST_DATABASE_NAME",
            "DJANGO_ALLOW_ASYNC_UNSAFE",
        }
    }
    env.update(
        DJANGO_SETTINGS_MODULE="portal.settings",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="127.0.0.1",
        TWOFACTOR_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
        TWOFACTOR_BACKUP_CODE_KEYS=secrets.token_urlsafe(32),
        # A production host name (the deploy check refuses "localhost"); no test here
        # adds a key through these servers.
        TWOFACTOR_WEBAUTHN_RP_ID="portal.example.com",
        SECURE_COOKIES="0",
        **SMTP_ENV,
        GUNICORN_ACCESS_LOG="",
        GUNICORN_LOG_LEVEL="warning",
        PYTHONUNBUFFERED="1",
    )
    if _static_root is not None:
        env["STATIC_ROOT"] = _static_root
    env.update(overrides)
    return env


def manage(env: dict[str, str], *args: str, timeout: float = 120) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if result.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stderr[-3000:]}")
    return result.stdout


def with_database_name(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


@contextmanager
def postgres_database(name: str) -> Iterator[str]:
    """A fresh PostgreSQL database on the DATABASE_URL server; dropped afterwards."""
    import psycopg

    admin_url = os.environ["DATABASE_URL"].replace("postgres://", "postgresql://", 1)
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield with_database_name(os.environ["DATABASE_URL"], name)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass
class Server:
    process: subprocess.Popen
    port: int

    @property
    def address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)


def start_gunicorn(
    env: dict[str, str], *, port: int | None = None, workers: int | None = 2
) -> Server:
    # workers=None: the config's own count (from the cores), as `make serve` runs.
    port = port or free_port()
    env = {**env, "STATIC_ROOT": collected_static()}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "portal.wsgi:application",
            "--config",
            "portal/gunicorn.conf.py",
            "--bind",
            f"127.0.0.1:{port}",
            *(["--workers", str(workers)] if workers else []),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    server = Server(process=process, port=port)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited:\n{process.stderr.read()[-3000:]}")
        try:
            with socket.create_connection(server.address, timeout=0.5):
                return server
        except OSError:
            time.sleep(0.1)
    stop(server)
    raise RuntimeError("gunicorn did not start within 20 s")


def start_task_worker(env: dict[str, str]) -> subprocess.Popen:
    """`manage.py db_worker`, as `make serve` runs it beside gunicorn: it sends the e-mails."""
    return subprocess.Popen(
        [
            sys.executable, "manage.py", "db_worker",
            "--no-reload", "--no-startup-delay", "--interval", "0.2",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip


def stop_task_worker(worker: subprocess.Popen) -> None:
    worker.terminate()  # the worker finishes the task at hand, then exits
    try:
        worker.wait(timeout=15)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait()


def stop(server: Server) -> None:
    server.process.send_signal(signal.SIGINT)  # gunicorn's quick shutdown
    try:
        server.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: str

    @property
    def location(self) -> str:
        return self.headers.get("location", "")

    @property
    def text(self) -> str:
        """The body with HTML entities decoded, for assertions on what a user reads."""
        return html.unescape(self.body)


@dataclass
class Browser:
    """Keeps cookies across requests and servers, like one browser behind a load balancer."""

    cookies: dict[str, str] = field(default_factory=dict)

    def request(
        self, server: Server, method: str, path: str, data: dict[str, str] | None = None
    ) -> Response:
        connection = http.client.HTTPConnection(*server.address, timeout=30)
        headers = {"Host": "127.0.0.1"}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = None
        if data is not None:
            body = urlencode(data)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            # Django's CSRF check compares Origin with the host on every POST.
            headers["Origin"] = "http://127.0.0.1"
        try:
            connection.request(method, path, body=body, headers=headers)
            raw = connection.getresponse()
            text = raw.read().decode("utf-8", "replace")
            for header in raw.headers.get_all("Set-Cookie") or []:
                for name, morsel in SimpleCookie(header).items():
                    if morsel["max-age"] == "0" or morsel.value == "":
                        self.cookies.pop(name, None)
                    else:
                        self.cookies[name] = morsel.value
            return Response(raw.status, {k.lower(): v for k, v in raw.getheaders()}, text)
        finally:
            connection.close()

    def get(self, server: Server, path: str) -> Response:
        return self.request(server, "GET", path)

    def submit(self, server: Server, path: str, fields: dict[str, str]) -> Response:
        """GET the form (for its CSRF token), then POST it, as a person would."""
        page = self.get(server, path)
        match = CSRF_INPUT.search(page.body)
        if not match:
            raise AssertionError(f"no form at {path}: {page.status}")
        return self.request(server, "POST", path, {"csrfmiddlewaretoken": match.group(1), **fields})


class TcpRelay:
    """A loopback TCP forwarder we can cut: the database 'goes away' for the app
    exactly as it would if the network or the server failed (connection refused,
    open connections reset), and comes back on the same port."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def stop(self) -> None:
        """Refuse new connections and reset the open ones."""
        if self._listener is not None:
            # shutdown() wakes the thread blocked in accept(); close() alone would
            # leave the port listening until the next connection arrives.
            try:
                self._listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._listener.close()
            self._listener = None
        with self._lock:
            for sock in self._sockets:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()
            self._sockets.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets.update((client, upstream))
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
