"""One HTTP exchange, with the raw request and response bytes kept.

The bytes written to the WARC are exactly the bytes that crossed the socket:
:mod:`http.client` parses the response while a recording socket copies every
byte sent and received. The raw response goes to a spooled temporary file, so
a large body is never held in memory; only HTML and CSS bodies are also kept
decoded, for link extraction and description.

Before connecting, every address the host resolves to is checked: private,
loopback, link-local and other non-public addresses are refused unless the
settings allow them, and the connection goes to the address that was checked.
"""

from __future__ import annotations

import http.client
import io
import ipaddress
import socket
import ssl
import tempfile
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, Any
from urllib.parse import urlsplit

from preserve.config import CaptureSettings
from preserve.errors import AddressRefused, FetchError, TooLarge, UnsupportedURL

SPOOL_IN_MEMORY = 1024 * 1024
READ_SIZE = 64 * 1024
PARSED_TYPES = ("text/html", "application/xhtml+xml", "text/css")
ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


@dataclass
class Exchange:
    """A finished HTTP exchange: what was sent, what came back, and when."""

    url: str
    ip: str
    date: datetime
    request: bytes
    response: IO[bytes]
    response_size: int
    header_size: int
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes | None = field(default=None, repr=False)

    def header(self, name: str) -> str | None:
        """The first value of a response header, case-insensitively."""
        wanted = name.lower()
        for key, value in self.headers:
            if key.lower() == wanted:
                return value
        return None

    @property
    def mime(self) -> str:
        """The media type of the response, without parameters."""
        return (self.header("Content-Type") or "").split(";")[0].strip().lower()

    @property
    def location(self) -> str | None:
        """The redirect target, for 3xx answers that name one."""
        return self.header("Location") if 300 <= self.status < 400 else None

    def close(self) -> None:
        """Release the spooled response bytes."""
        self.response.close()


def check_url(url: str) -> tuple[str, str, int]:
    """Scheme, host and port of a capturable URL, or :class:`UnsupportedURL`."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsupportedURL(f"{url}: not a valid URL ({exc})") from exc
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        shown = scheme or "none"
        raise UnsupportedURL(f"{url}: scheme {shown!r} is not supported (use http or https)")
    if not parts.hostname:
        raise UnsupportedURL(f"{url}: the URL has no host")
    return scheme, parts.hostname, port or (443 if scheme == "https" else 80)


def resolve(url: str, host: str, port: int, allow_private: bool) -> str:
    """The address to connect to, after checking every address the host has."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise FetchError(f"{url}: cannot resolve host {host!r}") from exc
    addresses = [str(info[4][0]) for info in infos]
    if not allow_private:
        for address in addresses:
            if not ipaddress.ip_address(address.split("%")[0]).is_global:
                raise AddressRefused(
                    f"{url}: host {host!r} resolves to non-public address {address}; "
                    "set PRESERVE_ALLOW_PRIVATE_ADDRESSES=1 to capture private networks"
                )
    return addresses[0]


def fetch(url: str, settings: CaptureSettings) -> Exchange:
    """GET one URL and keep the exchange. Raises :class:`BadInput` subclasses."""
    scheme, host, port = check_url(url)
    ip = resolve(url, host, port, settings.allow_private_addresses)
    parts = urlsplit(url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    received = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)  # noqa: SIM115 (returned)
    conn = _RecordingConnection(host, port, ip, scheme == "https", settings.timeout_seconds,
                                received)
    date = datetime.now(UTC)
    try:
        conn.putrequest("GET", target, skip_accept_encoding=True)
        conn.putheader("User-Agent", settings.user_agent)
        conn.putheader("Accept", ACCEPT)
        conn.putheader("Accept-Encoding", "gzip, deflate")
        conn.putheader("Connection", "close")
        conn.endheaders()
        response = conn.getresponse()
        body = _read_body(url, response, settings.max_resource_bytes)
    except TimeoutError as exc:
        received.close()
        raise FetchError(f"{url}: timed out after {settings.timeout_seconds:g} s") from exc
    except ssl.SSLError as exc:
        received.close()
        raise FetchError(f"{url}: TLS failed: {exc.reason or exc}") from exc
    except (OSError, http.client.HTTPException) as exc:
        received.close()
        raise FetchError(f"{url}: {_describe_os_error(exc)}") from exc
    except TooLarge:
        received.close()
        raise
    finally:
        conn.close()
    size = received.seek(0, io.SEEK_END)
    received.seek(0)
    header_size = http_header_length(received)
    received.seek(0)
    return Exchange(
        url=url, ip=ip, date=date, request=bytes(conn.sent), response=received,
        response_size=size, header_size=header_size, status=response.status,
        reason=response.reason, headers=list(response.getheaders()), body=body,
    )


def http_header_length(stream: IO[bytes]) -> int:
    """Bytes of the status line and headers, up to and including the blank line.

    Follows warcio's reader (a line that is empty once stripped ends the
    headers), so the payload digest we write is the one ``warcio check`` computes.
    """
    length = 0
    first = True
    while line := stream.readline():
        length += len(line)
        if not first and not line.strip():
            break
        first = False
    return length


def _read_body(url: str, response: http.client.HTTPResponse, limit: int) -> bytes | None:
    """Drain the body (the recording socket keeps the raw bytes); decode HTML and CSS."""
    mime = (response.getheader("Content-Type") or "").split(";")[0].strip().lower()
    keep = mime in PARSED_TYPES
    parts: list[bytes] = []
    total = 0
    while chunk := response.read(READ_SIZE):
        total += len(chunk)
        if total > limit:
            raise TooLarge(f"{url}: body is larger than the limit of {limit} bytes "
                           "(capture.max_resource_bytes)")
        if keep:
            parts.append(chunk)
    if not keep:
        return None
    return _decode_content(b"".join(parts), response.getheader("Content-Encoding"), limit)


def _decode_content(data: bytes, encoding: str | None, limit: int) -> bytes | None:
    """The body without its content coding, or None when it cannot be decoded within limit.

    The limit applies to the decoded size too, so a small compressed body cannot
    expand into an unbounded one (the raw bytes are archived either way).
    """
    coding = (encoding or "identity").strip().lower()
    if coding in ("identity", ""):
        return data
    formats = {"gzip": [47], "x-gzip": [47], "deflate": [15, -15]}.get(coding, [])
    for wbits in formats:
        inflater = zlib.decompressobj(wbits=wbits)
        try:
            decoded = inflater.decompress(data, limit + 1)
        except zlib.error:
            continue
        return decoded if len(decoded) <= limit else None
    return None


def _describe_os_error(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, ConnectionResetError):
        return "connection reset by the server"
    if isinstance(exc, http.client.HTTPException):
        return f"not a valid HTTP answer ({type(exc).__name__})"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return str(exc) or type(exc).__name__


class _TeeReader(io.RawIOBase):
    """Reads from a socket's raw file and copies every byte into a sink."""

    def __init__(self, raw: Any, sink: IO[bytes]) -> None:
        self._raw = raw
        self._sink = sink

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        count: int | None = self._raw.readinto(buffer)
        if count:
            self._sink.write(memoryview(buffer)[:count])
        return count or 0

    def close(self) -> None:
        self._raw.close()
        super().close()


class _RecordingSocket:
    """Wraps a connected socket: keeps what is sent, tees what is read."""

    def __init__(self, sock: socket.socket, sent: bytearray, received: IO[bytes]) -> None:
        self._sock = sock
        self._sent = sent
        self._received = received

    def sendall(self, data: bytes) -> None:
        self._sent += data
        self._sock.sendall(data)

    def makefile(self, mode: str, *args: Any, **kwargs: Any) -> io.BufferedReader:
        # The socket's own raw file keeps the descriptor open until the response
        # is read, even after http.client closes a Connection: close connection.
        raw = self._sock.makefile("rb", buffering=0)
        return io.BufferedReader(_TeeReader(raw, self._received))

    def close(self) -> None:
        self._sock.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


class _RecordingConnection(http.client.HTTPConnection):
    """An HTTP(S) connection to a checked address that records both directions."""

    def __init__(self, host: str, port: int, ip: str, tls: bool, timeout: float,
                 received: IO[bytes]) -> None:
        super().__init__(host, port, timeout=timeout)
        self.default_port = 443 if tls else 80  # keeps :443 out of the Host header
        self.sent = bytearray()
        self._ip = ip
        self._tls = tls
        self._received = received

    def connect(self) -> None:
        sock = socket.create_connection((self._ip, self.port), self.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self._tls:
            sock = ssl.create_default_context().wrap_socket(sock, server_hostname=self.host)
        self.sock = _RecordingSocket(sock, self.sent, self._received)
