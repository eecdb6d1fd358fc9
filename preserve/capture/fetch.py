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
from functools import cached_property, lru_cache
from typing import IO, Any
from urllib.parse import quote, urlsplit, urlunsplit

from preserve.config import CaptureSettings
from preserve.errors import AddressRefused, FetchError, TooLarge, UnsupportedURL
from preserve.fingerprint import http_digests

SPOOL_IN_MEMORY = 1024 * 1024
READ_SIZE = 64 * 1024
PARSE_LIMIT = 16 * 1024 * 1024  # larger HTML or CSS is archived, not parsed for links
HTML_TYPES = ("text/html", "application/xhtml+xml")
PARSED_TYPES = (*HTML_TYPES, "text/css")
# Characters a browser leaves as they are in a path or query; everything else,
# non-ASCII included, is percent-encoded (UTF-8) before it goes on the wire.
_PATH_SAFE = "/%:@!$&'()*+,;=-._~"
_QUERY_SAFE = _PATH_SAFE + "?"
# IPv6 ranges that carry an IPv4 address in their last 32 bits.
_NAT64 = (ipaddress.IPv6Network("64:ff9b::/96"), ipaddress.IPv6Network("64:ff9b:1::/48"))
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")
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
    truncated: bool = False

    def header(self, name: str) -> str | None:
        """The first value of a response header, case-insensitively."""
        return header_value(self.headers, name)

    @property
    def mime(self) -> str:
        """The media type of the response, without parameters."""
        return media_type(self.header("Content-Type")) or ""

    @cached_property
    def digests(self) -> tuple[str, str]:
        """SHA-1 base32 block and payload digests of the response, computed once."""
        return http_digests(self.response, self.header_size)

    @property
    def location(self) -> str | None:
        """The redirect target, for 3xx answers that name one."""
        return self.header("Location") if 300 <= self.status < 400 else None

    def close(self) -> None:
        """Release the spooled response bytes."""
        self.response.close()


def header_value(headers: list[tuple[str, str]], name: str) -> str | None:
    """The first value of a header in a list of (name, value) pairs, case-insensitively."""
    wanted = name.lower()
    return next((value for key, value in headers if key.lower() == wanted), None)


def media_type(content_type: str | None) -> str | None:
    """``text/html`` of ``Text/HTML; charset=utf-8``; None when there is none."""
    value = (content_type or "").split(";")[0].strip().lower()
    return value or None


@lru_cache(maxsize=65536)  # asked of the same links again and again in a crawl
def normalize_url(url: str) -> str:
    """The URL as a browser would request it, or :class:`UnsupportedURL`.

    Scheme and host lower-cased, an international host in IDNA form, path and
    query percent-encoded as UTF-8, no fragment and no user information.
    """
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise UnsupportedURL(f"{url}: not a valid URL ({exc})") from exc
    scheme = parts.scheme.lower()
    if not scheme:
        raise UnsupportedURL(f"{url}: the URL has no scheme (did you mean http://{url}?)")
    if scheme not in ("http", "https"):
        raise UnsupportedURL(f"{url}: scheme {scheme!r} is not supported (use http or https)")
    if not parts.hostname:
        raise UnsupportedURL(f"{url}: the URL has no host")
    try:
        address = ipaddress.ip_address(parts.hostname)
        host = f"[{address}]" if address.version == 6 else str(address)
    except ValueError:
        try:
            host = parts.hostname.encode("idna").decode("ascii")
        except UnicodeError as exc:
            raise UnsupportedURL(f"{url}: {parts.hostname!r} is not a valid host name") from exc
    netloc = host if port is None else f"{host}:{port}"
    path = quote(parts.path or "/", safe=_PATH_SAFE)
    query = quote(parts.query, safe=_QUERY_SAFE)
    return urlunsplit((scheme, netloc, path, query, ""))


def is_public_address(address: str) -> bool:
    """True for a globally routable unicast address, including any IPv4 address inside it."""
    ip = ipaddress.ip_address(address.split("%")[0])
    if not ip.is_global or ip.is_multicast:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.is_site_local:
            return False
        inner: list[ipaddress.IPv4Address] = []
        if ip.ipv4_mapped:
            inner.append(ip.ipv4_mapped)
        if ip.sixtofour:
            inner.append(ip.sixtofour)
        if ip.teredo:
            inner.extend(ip.teredo)
        if ip in _IPV4_COMPATIBLE or any(ip in net for net in _NAT64):
            inner.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
        return all(v4.is_global and not v4.is_multicast for v4 in inner)
    return True


def resolve(url: str, host: str, port: int, allow_private: bool) -> list[str]:
    """The addresses to try, in order, after checking every address the host has."""
    try:
        addresses = [str(ipaddress.ip_address(host))]  # an address already: nothing to look up
    except ValueError:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise FetchError(f"{url}: cannot resolve host {host!r}") from exc
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not allow_private:
        for address in addresses:
            if not is_public_address(address):
                raise AddressRefused(
                    f"{url}: host {host!r} resolves to non-public address {address}; "
                    "set PRESERVE_ALLOW_PRIVATE_ADDRESSES=1 to capture private networks"
                )
    return addresses


def fetch(url: str, settings: CaptureSettings, truncate: bool = False) -> Exchange:
    """GET one URL and keep the exchange. Raises :class:`BadInput` subclasses.

    A body over ``max_resource_bytes`` is refused, or with ``truncate`` kept up
    to the limit and marked ``truncated``.
    """
    url = normalize_url(url)
    parts = urlsplit(url)
    scheme, host = parts.scheme, str(parts.hostname)
    port = parts.port or (443 if scheme == "https" else 80)
    addresses = resolve(url, host, port, settings.allow_private_addresses)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    received = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)  # noqa: SIM115 (returned)
    conn = _RecordingConnection(host, port, addresses, scheme == "https",
                                settings.timeout_seconds, received)
    date = datetime.now(UTC)
    try:
        conn.putrequest("GET", target, skip_accept_encoding=True)
        conn.putheader("User-Agent", settings.user_agent)
        conn.putheader("Accept", ACCEPT)
        conn.putheader("Accept-Encoding", "gzip, deflate")
        conn.putheader("Connection", "close")
        conn.endheaders()
        response = conn.getresponse()
        body, truncated = _read_body(url, response, settings.max_resource_bytes, truncate)
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
    received.seek(0)
    header_size = http_header_length(received)
    if truncated:
        size = header_size + settings.max_resource_bytes
        received.truncate(size)
    else:
        size = _trim_to_message(received, header_size, response)
    received.seek(0)
    return Exchange(
        url=url, ip=conn.connected_to, date=date, request=bytes(conn.sent), response=received,
        response_size=size, header_size=header_size, status=response.status,
        reason=response.reason, headers=list(response.getheaders()), body=body,
        truncated=truncated,
    )


def _trim_to_message(received: IO[bytes], header_size: int,
                     response: http.client.HTTPResponse) -> int:
    """Drop bytes a server sent after a Content-Length body: they are not part of the answer."""
    size = received.seek(0, io.SEEK_END)
    chunked = "chunked" in (response.getheader("Transfer-Encoding") or "").lower()
    length = (response.getheader("Content-Length") or "").strip()
    if not chunked and length.isdigit() and size > header_size + int(length):
        size = header_size + int(length)
        received.truncate(size)
    return size


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


def _read_body(url: str, response: http.client.HTTPResponse, limit: int,
               truncate: bool) -> tuple[bytes | None, bool]:
    """Drain the body (the recording socket keeps the raw bytes); decode HTML and CSS.

    Past ``limit`` bytes the body is cut (``truncate``) or refused (:class:`TooLarge`).
    Returns the decoded body of HTML and CSS (None for other types, or when it is
    too large to parse) and whether the body was cut.
    """
    keep = media_type(response.getheader("Content-Type")) in PARSED_TYPES
    parts: list[bytes] = []
    total = 0
    while chunk := response.read(READ_SIZE):
        total += len(chunk)
        if total > limit:
            if truncate:
                return None, True
            raise TooLarge(f"{url}: body is larger than the limit of {limit} bytes "
                           "(capture.max_resource_bytes)")
        if keep:
            parts.append(chunk)
            keep = total <= PARSE_LIMIT
    if not keep:
        return None, False
    return (_decode_content(b"".join(parts), response.getheader("Content-Encoding"),
                            PARSE_LIMIT), False)


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

    def __init__(self, host: str, port: int, addresses: list[str], tls: bool, timeout: float,
                 received: IO[bytes]) -> None:
        super().__init__(host, port, timeout=timeout)
        self.default_port = 443 if tls else 80  # keeps :443 out of the Host header
        self.sent = bytearray()
        self.connected_to = addresses[0]
        self._addresses = addresses
        self._tls = tls
        self._received = received

    def connect(self) -> None:
        # Only addresses that passed the guard are tried, first answer wins.
        failure: OSError | None = None
        for address in self._addresses:
            # Straight to the checked address: create_connection would look it up again.
            sock = socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET,
                                 socket.SOCK_STREAM)
            sock.settimeout(self.timeout)
            try:
                sock.connect((address, self.port))
            except OSError as exc:
                sock.close()
                failure = exc
                continue
            self.connected_to = address
            break
        else:
            assert failure is not None
            raise failure
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self._tls:
            sock = ssl.create_default_context().wrap_socket(sock, server_hostname=self.host)
        self.sock = _RecordingSocket(sock, self.sent, self._received)
