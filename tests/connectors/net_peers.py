"""Network peers for the egress and thread-pool tests: hosts an integration must not reach (they
record every connection they accept), a redirecting HTTP server, a PostgreSQL look-alike that
asks for a password and keeps what it is offered, a TLS server that keeps the name a client
asks for (SNI), and a name resolver for `*.optria.test` names.

Each peer runs its own thread, so a test can drive connectors on its event loop meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import selectors
import socket
import ssl
import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


class Tally:
    """A count that peer threads raise and a test's event loop can await."""

    def __init__(self) -> None:
        self.count = 0
        self._waiters: list[tuple[int, asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self._lock = threading.Lock()

    def add(self, amount: int = 1) -> None:
        with self._lock:
            self.count += amount
            reached = [waiter for waiter in self._waiters if waiter[0] <= self.count]
            for waiter in reached:
                self._waiters.remove(waiter)
        for _, loop, future in reached:
            loop.call_soon_threadsafe(_resolve_future, future)

    async def reach(self, count: int) -> None:
        """Until the count is at least `count`."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        with self._lock:
            if self.count >= count:
                return
            self._waiters.append((count, loop, future))
        await future


def _resolve_future(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class TCPPeer:
    """A listening TCP socket standing in for a host: it accepts every connection, records it
    and never answers (accepted sockets stay open, silent, until `close`)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._sock = socket.socket(family, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port))
        self._sock.listen(64)
        self._sock.setblocking(False)
        self.host, self.port = host, int(self._sock.getsockname()[1])
        self.connections = Tally()
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self._sock, selectors.EVENT_READ)
            while not self._closed.is_set():
                if selector.select(timeout=0.05):
                    self._drain()

    def _drain(self) -> int:
        """Accept whatever the kernel has queued; the number accepted so far."""
        with self._lock:
            while True:
                try:
                    connection, _ = self._sock.accept()
                except OSError:  # BlockingIOError: nothing queued; or the socket is closed
                    break
                self._sockets.append(connection)
                self.connections.add()
            return len(self._sockets)

    def accepted(self) -> int:
        """Connections made so far. Queued handshakes are accepted first, so a connection
        that any client completed before this call is always counted."""
        return self._drain()

    def close(self) -> None:
        self._closed.set()
        self._thread.join(timeout=5)
        with self._lock:
            for connection in self._sockets:
                connection.close()
            self._sock.close()


@contextlib.contextmanager
def tcp_peer(host: str = "127.0.0.1", port: int = 0) -> Iterator[TCPPeer]:
    peer = TCPPeer(host, port)
    try:
        yield peer
    finally:
        peer.close()


@contextlib.contextmanager
def redirecting_server(location: str) -> Iterator[tuple[int, list[str]]]:
    """An HTTP server answering every GET with `302 Location: <location>`; yields its port
    and the paths it was asked for."""
    asked: list[str] = []

    class Redirect(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            asked.append(self.path)
            self.send_response(302)
            self.send_header("Location", location)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1]), asked
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# --- PostgreSQL look-alike -------------------------------------------------------------------

_SSL_REQUEST, _GSSENC_REQUEST, _PROTOCOL_3 = 80877103, 80877104, 196608


@dataclass
class PasswordAskingPostgres:
    """Speaks just enough of PostgreSQL's wire protocol to ask each client for a cleartext
    password, then refuses it. Records the startup parameters and every password offered."""

    port: int = 0
    startups: list[dict[str, str]] = field(default_factory=list)
    passwords: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._sock.getsockname()[1])
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self._sock.accept()
            except OSError:
                return  # closed
            with connection, contextlib.suppress(OSError, struct.error):
                connection.settimeout(10)
                self._converse(connection)

    def _converse(self, connection: socket.socket) -> None:
        while True:
            length, code = struct.unpack("!ii", _read(connection, 8))
            if code in (_SSL_REQUEST, _GSSENC_REQUEST):
                connection.sendall(b"N")  # no TLS, no GSS encryption: go on in clear
                continue
            break
        assert code == _PROTOCOL_3, code
        fields = _read(connection, length - 8).split(b"\0")
        self.startups.append(
            {k.decode(): v.decode() for k, v in zip(fields[::2], fields[1::2], strict=False) if k}
        )
        connection.sendall(b"R" + struct.pack("!ii", 8, 3))  # AuthenticationCleartextPassword
        try:
            kind = _read(connection, 1)
        except EOFError:
            return  # the client had no password to offer and hung up
        (length,) = struct.unpack("!i", _read(connection, 4))
        body = _read(connection, length - 4)
        if kind == b"p":
            self.passwords.append(body.rstrip(b"\0").decode())
        error = b"SFATAL\0C28P01\0Mpassword authentication failed\0\0"
        connection.sendall(b"E" + struct.pack("!i", len(error) + 4) + error)

    def close(self) -> None:
        self._sock.close()
        self._thread.join(timeout=5)


def _read(connection: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = connection.recv(size - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return data


# --- TLS -------------------------------------------------------------------------------------


def self_signed_certificate(name: str, directory: Path) -> tuple[Path, Path]:
    """A certificate for `name` that no client trusts; (cert.pem, key.pem)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


class TLSPeer:
    """A TLS server that records the server name each client asks for (SNI) and how each
    handshake ended; it serves nothing after the handshake."""

    def __init__(self, cert: Path, key: Path) -> None:
        self.server_names: list[str | None] = []
        self.handshakes: list[str] = []  # "ok" or the server-side error
        self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._context.load_cert_chain(cert, key)
        self._context.sni_callback = self._record_name
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._sock.getsockname()[1])
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _record_name(self, _: ssl.SSLObject, name: str | None, __: ssl.SSLContext) -> None:
        self.server_names.append(name)

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self._sock.accept()
            except OSError:
                return
            connection.settimeout(10)
            try:
                with self._context.wrap_socket(connection, server_side=True):
                    self.handshakes.append("ok")
            except (ssl.SSLError, OSError) as exc:
                self.handshakes.append(str(exc))
            finally:
                connection.close()

    def close(self) -> None:
        self._sock.close()
        self._thread.join(timeout=5)


# --- name resolution -------------------------------------------------------------------------

TEST_DOMAIN = ".optria.test"  # RFC 2606: never resolves on a real network


STALL = "stall"  # an answer that only comes when the test releases it, as "unknown name"


@dataclass
class FakeDNS:
    """Answers for `*.optria.test` names, and every lookup of such a name with the thread that
    made it. A name's answers are given in turn (the last one repeating); an answer may list
    several addresses, comma-separated, or be STALL: a resolver that hangs until `release`.
    Other names go to the system resolver. libpq resolves in C and never sees these answers."""

    answers: dict[str, list[str]] = field(default_factory=dict)
    lookups: list[tuple[str, str]] = field(default_factory=list)  # (name, thread name)
    stalled: Tally = field(default_factory=Tally)  # lookups now hanging
    release: threading.Event = field(default_factory=threading.Event)

    def answer(self, name: str) -> str | None:
        """The addresses for `name`, or None (unknown name) once a stalled lookup is released."""
        self.lookups.append((name, threading.current_thread().name))
        answers = self.answers[name]
        answer = answers.pop(0) if len(answers) > 1 else answers[0]
        if answer != STALL:
            return answer
        self.stalled.add()
        self.release.wait(timeout=30)
        return None
