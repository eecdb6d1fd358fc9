"""One HTTP exchange, with the raw request and response bytes kept.

The bytes written to the WARC are exactly the bytes that crossed the socket:
the request is written here, and the response is parsed as it is read, every
byte that arrives copied as it came. (http.client and its e-mail header parser
had cost a quarter of a crawl's CPU.) The raw response goes to a spooled
temporary file, so a large body is never held in memory; only HTML and CSS
bodies are also kept decoded, for link extraction and description.

Before connecting, every address the host resolves to is checked: private,
loopback, link-local and other non-public addresses are refused unless the
settings allow them, and the connection goes to the address that was checked.

A crawl keeps connections open between requests to the same server (HTTP/1.1
persistent connections, :class:`Connections`), as browsers and wget do: a new
connection costs a round trip (two or three with TLS) and the server a new
socket. A kept connection is used again only while it is idle for less than
:data:`IDLE_SECONDS` (less when the server's ``Keep-Alive: timeout`` says so)
and only to an address the host still resolves to (and
that passed the check); one the server closed meanwhile is replaced by a new
connection, the request sent again.
"""

from __future__ import annotations

import ipaddress
import select
import socket
import ssl
import tempfile
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property, lru_cache
from typing import IO
from urllib.parse import quote, urlsplit, urlunsplit

from preserve.capture.scope import DEFAULT_PORTS
from preserve.config import CaptureSettings
from preserve.errors import AddressRefused, FetchError, TooLarge, UnsupportedURL
from preserve.fingerprint import http_digests
from preserve.numbers import is_digits

SPOOL_IN_MEMORY = 1024 * 1024
READ_SIZE = 64 * 1024
PARSE_LIMIT = 16 * 1024 * 1024  # larger HTML or CSS is archived, not parsed for links
# A status or header line, and the number of headers, beyond which an answer is not HTTP.
MAX_LINE = 64 * 1024
MAX_HEADERS = 256
HTML_TYPES = ("text/html", "application/xhtml+xml")
PARSED_TYPES = (*HTML_TYPES, "text/css")
ROBOTS_PATH = "/robots.txt"  # its body is kept decoded too, whatever its type
# Characters a browser leaves as they are in a path or query; everything else,
# non-ASCII included, is percent-encoded (UTF-8) before it goes on the wire.
_PATH_SAFE = "/%:@!$&'()*+,;=-._~"
_QUERY_SAFE = _PATH_SAFE + "?"
# IPv6 ranges that carry an IPv4 address in their last 32 bits.
_NAT64 = (ipaddress.IPv6Network("64:ff9b::/96"), ipaddress.IPv6Network("64:ff9b:1::/48"))
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")
ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
# A connection idle longer than this is closed rather than used again: servers
# commonly close theirs after 5 seconds (Apache's default KeepAliveTimeout).
IDLE_SECONDS = 4.0
# A server that says how long it keeps an idle connection (``Keep-Alive: timeout=N``)
# is taken at its word, less this: the next request must reach it before it closes.
KEEP_ALIVE_MARGIN = 1.0
# Idle connections kept per server, and in all.
IDLE_PER_SERVER = 8
IDLE_TOTAL = 64

_Server = tuple[str, str, int]  # scheme, host, port


class Connections:
    """Idle connections, kept for the next request to the same server. Thread-safe."""

    def __init__(self, idle_seconds: float = IDLE_SECONDS, per_server: int = IDLE_PER_SERVER,
                 total: int = IDLE_TOTAL, clock: Callable[[], float] = time.monotonic) -> None:
        self.idle_seconds = idle_seconds
        self.per_server = per_server
        self.total = total
        self.clock = clock
        # Per server, oldest first: a connection, its address, when it was given back,
        # and when it stops being fit.
        self._idle: dict[_Server, list[tuple[socket.socket, str, float, float]]] = {}
        self._count = 0
        self._lock = threading.Lock()
        self._busy: set[socket.socket] = set()  # carrying a request now
        self._stopped = False

    @property
    def idle(self) -> int:
        """Connections kept, waiting for a request."""
        return self._count

    def take(self, server: _Server, addresses: list[str]) -> tuple[socket.socket, str] | None:
        """The most recently used idle connection to one of these addresses, if any is fit."""
        while True:
            with self._lock:
                kept = self._idle.get(server)
                if not kept:
                    return None
                sock, address, _given, until = kept.pop()
                if not kept:
                    del self._idle[server]
                self._count -= 1
            # Readable while idle: the server closed it (or sent what nobody asked for).
            if address in addresses and self.clock() < until and not _readable(sock):
                return sock, address
            sock.close()

    def give(self, server: _Server, sock: socket.socket, address: str,
             idle_seconds: float | None = None) -> None:
        """Keep a connection whose last answer was read to its end, to be used again
        while it has been idle less than ``idle_seconds`` (never more than the pool's)."""
        closing: list[socket.socket] = []
        limit = self.idle_seconds if idle_seconds is None else min(idle_seconds,
                                                                    self.idle_seconds)
        with self._lock:
            if self._stopped:  # no more requests to keep it for
                closing.append(sock)
            else:
                self._keep(server, sock, address, limit, closing)
        for old in closing:
            old.close()

    def _keep(self, server: _Server, sock: socket.socket, address: str, limit: float,
              closing: list[socket.socket]) -> None:
        """(With the lock held.) Keep the connection; ``closing`` gets those it displaces."""
        kept = self._idle.setdefault(server, [])
        now = self.clock()
        kept.append((sock, address, now, now + limit))
        self._count += 1
        if len(kept) > self.per_server:
            closing.append(kept.pop(0)[0])
            self._count -= 1
        if self._count > self.total:
            oldest = min(self._idle, key=lambda name: self._idle[name][0][2])
            closing.append(self._idle[oldest].pop(0)[0])
            if not self._idle[oldest]:
                del self._idle[oldest]
            self._count -= 1

    def close(self) -> None:
        """Close every idle connection."""
        with self._lock:
            kept = [entry[0] for entries in self._idle.values() for entry in entries]
            self._idle.clear()
            self._count = 0
        for sock in kept:
            sock.close()

    def busy(self, sock: socket.socket) -> None:
        """A connection starts carrying a request (one :meth:`stop` may cut short)."""
        with self._lock:
            if not self._stopped:
                self._busy.add(sock)
                return
        sock.close()
        raise ConnectionAbortedError("the crawl is stopping")

    def done(self, sock: socket.socket) -> None:
        with self._lock:
            self._busy.discard(sock)

    def stop(self) -> None:
        """Cut short every request in flight and take no more (a crawl stopping: Ctrl-C
        is not kept waiting for slow servers' answers), and close the idle connections."""
        with self._lock:
            self._stopped = True
            busy = list(self._busy)
        for sock in busy:
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self.close()


def _readable(sock: socket.socket) -> bool:
    if isinstance(sock, ssl.SSLSocket) and sock.pending():
        return True
    poll = select.poll()  # not select(), which takes no descriptor past 1023
    try:
        poll.register(sock, select.POLLIN)
        return bool(poll.poll(0))
    except (OSError, ValueError):  # closed meanwhile
        return True


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
    # Why the body is not whole, as WARC-Truncated says it: "length", "disconnect".
    truncated: str | None = None

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
    # The scheme's own port is not written: http://h:80/ is http://h/, as a browser has it.
    netloc = host if port in (None, DEFAULT_PORTS[scheme]) else f"{host}:{port}"
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


def fetch(url: str, settings: CaptureSettings, truncate: bool = False,
          connections: Connections | None = None) -> Exchange:
    """GET one URL and keep the exchange. Raises :class:`BadInput` subclasses.

    A body over ``max_resource_bytes`` is refused, or with ``truncate`` kept up
    to the limit and marked ``truncated``. With ``connections``, a kept connection
    to the server is used when there is one, and this one kept when the answer allows.
    """
    url = normalize_url(url)
    parts = urlsplit(url)
    scheme, host = parts.scheme, str(parts.hostname)
    default_port = DEFAULT_PORTS[scheme]
    port = parts.port or default_port
    addresses = resolve(url, host, port, settings.allow_private_addresses)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    # The Host header as http.client wrote it: the port only when it is not the default.
    host_header = (f"[{host}]" if ":" in host else host) + (
        "" if port == default_port else f":{port}")
    # Without kept connections, the server is told this one ends with its answer.
    closing = "" if connections is not None else "Connection: close\r\n"
    request = (f"GET {target} HTTP/1.1\r\nHost: {host_header}\r\n"
               f"User-Agent: {settings.user_agent}\r\nAccept: {ACCEPT}\r\n"
               f"Accept-Encoding: gzip, deflate\r\n{closing}\r\n").encode("latin-1")
    server = (scheme, host, port)
    received = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)  # noqa: SIM115 (returned)
    date = datetime.now(UTC)
    sock: socket.socket | None = None
    keep = False
    idle: float | None = None
    try:
        sock, address, wire, head = _ask(request, received, server, addresses,
                                         settings.timeout_seconds, connections)
        body, truncated = _read_body(url, wire, head, settings.max_resource_bytes, truncate,
                                     parse=parts.path == ROBOTS_PATH)
        idle = head.idle_seconds
        keep = head.reusable and not truncated and not wire.buffer and idle != 0
    except TimeoutError as exc:
        received.close()
        raise FetchError(f"{url}: timed out after {settings.timeout_seconds:g} s") from exc
    except ssl.SSLError as exc:
        received.close()
        raise FetchError(f"{url}: TLS failed: {exc.reason or exc}") from exc
    except _NotHttp as exc:
        received.close()
        raise FetchError(f"{url}: not a valid HTTP answer ({exc})") from exc
    except OSError as exc:
        received.close()
        raise FetchError(f"{url}: {_describe_os_error(exc)}") from exc
    except TooLarge:
        received.close()
        raise
    finally:
        if sock is not None:
            if connections is not None:
                connections.done(sock)
            if keep and connections is not None:
                connections.give(server, sock, address, idle)
            else:
                sock.close()
    received.seek(0)
    header_size = http_header_length(received)
    if truncated == "length":
        size = header_size + settings.max_resource_bytes
    else:  # bytes a server sent after the end of the message are not part of the answer
        size = wire.received - len(wire.buffer)
    received.truncate(size)
    received.seek(0)
    return Exchange(
        url=url, ip=address, date=date, request=request, response=received,
        response_size=size, header_size=header_size, status=head.status,
        reason=head.reason, headers=head.headers, body=body, truncated=truncated,
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


def _ask(request: bytes, received: IO[bytes], server: _Server, addresses: list[str],
         timeout: float, connections: Connections | None
         ) -> tuple[socket.socket, str, _Wire, _Head]:
    """Send the request on a kept connection, else a new one; the connection and answer's head.

    A kept connection the server closed while it was idle fails before any byte
    of an answer arrives, or answers 408 (Request Timeout), or with bytes that
    are no answer: the request then goes again on a new connection.
    """
    kept = connections.take(server, addresses) if connections is not None else None
    while True:
        if kept is not None:
            sock, address = kept
        else:
            scheme, host, port = server
            sock, address = _connect(host, port, addresses, scheme == "https", timeout)
        if connections is not None:
            connections.busy(sock)
        wire = _Wire(sock, received)
        try:
            sock.sendall(request)
            head = _read_head(wire)
        except BaseException as exc:
            if connections is not None:
                connections.done(sock)
            sock.close()
            if kept is None or not _closed_by_server(exc, wire):
                raise
        else:
            if kept is None or head.status != 408:
                return sock, address, wire, head
            if connections is not None:
                connections.done(sock)
            sock.close()  # the server's "idle too long", sent as the request arrived
        kept = None  # a new connection, and the request again
        received.seek(0)
        received.truncate()


def _closed_by_server(exc: BaseException, wire: _Wire) -> bool:
    """Does this failure on a kept connection only say that the server closed it: closed
    as the request went (nothing came), or what came is no answer to it (the end of the
    last one, say)? A timeout is not that: a new connection would wait as long."""
    if isinstance(exc, _NotHttp):
        return True
    return isinstance(exc, OSError) and not isinstance(exc, TimeoutError) and not wire.received


class _NotHttp(Exception):
    """The server's answer is not an HTTP/1.x response (the message says why)."""


class _CutShort(_NotHttp):
    """The connection ended before the body did (its declared length, its last chunk)."""


class _Wire:
    """Reads from a socket, copying every byte that arrives into the record."""

    def __init__(self, sock: socket.socket, record: IO[bytes]) -> None:
        self._sock = sock
        self._record = record
        self.buffer = bytearray()  # received, not yet consumed
        self.received = 0

    def _fill(self) -> bool:
        data = self._sock.recv(READ_SIZE)
        if not data:
            return False
        self._record.write(data)
        self.received += len(data)
        self.buffer += data
        return True

    def readline(self) -> bytes:
        """The next line with its end; what is left at the end of the stream; b"" after it."""
        while (end := self.buffer.find(b"\n", 0, MAX_LINE)) < 0:
            if len(self.buffer) >= MAX_LINE:
                raise _NotHttp(f"a line longer than {MAX_LINE} bytes")
            if not self._fill():
                end = len(self.buffer) - 1
                break
        line = bytes(self.buffer[:end + 1])
        del self.buffer[:end + 1]
        return line

    def read(self, size: int) -> bytes:
        """Up to size bytes; b"" at the end of the stream."""
        if not self.buffer and not self._fill():
            return b""
        data = bytes(self.buffer[:size])
        del self.buffer[:size]
        return data


@dataclass(frozen=True)
class _Head:
    status: int
    reason: str
    headers: list[tuple[str, str]]
    version: str = "HTTP/1.1"

    def header(self, name: str) -> str | None:
        return header_value(self.headers, name)

    @property
    def bodiless(self) -> bool:
        return self.status < 200 or self.status in (204, 304)

    def _tokens(self, name: str) -> list[str]:
        """The comma-separated values of every header of that name, lower-cased."""
        wanted = name.lower()
        return [token.strip().lower() for key, value in self.headers if key.lower() == wanted
                for token in value.split(",") if token.strip()]

    @property
    def idle_seconds(self) -> float | None:
        """How long the connection may wait idle for the next request, by the server's
        ``Keep-Alive: timeout=N`` (less a second, for the way there); None when it
        does not say."""
        for token in self._tokens("Keep-Alive"):
            name, _, value = token.partition("=")
            value = value.strip().strip('"')
            if name.strip() == "timeout" and is_digits(value):
                # Over a day (six digits) is as good as no limit; 400 digits would overflow.
                return max(int(value) - KEEP_ALIVE_MARGIN, 0.0) if len(value) < 6 else None
        return None

    @property
    def chunked(self) -> bool:
        return "chunked" in self._tokens("Transfer-Encoding")

    @property
    def reusable(self) -> bool:
        """May the connection carry another request once this answer is read?

        Only an HTTP/1.1 answer that does not say ``Connection: close`` and whose
        end is beyond doubt without the connection closing: no body (a 304 may
        give the length it did not send), one length, or chunks as the last and
        only coding. Anything ambiguous (two lengths, a length and chunks) could
        leave bytes that would pass for the next answer.
        """
        if self.version != "HTTP/1.1" or self.status == 101 or "close" in self._tokens(
                "Connection"):
            return False
        lengths = set(self._tokens("Content-Length"))
        codings = self._tokens("Transfer-Encoding")
        if self.bodiless:
            return not codings and (self.status == 304 or lengths <= {"0"})
        if codings:
            return not lengths and codings[-1] == "chunked" and codings.count("chunked") == 1
        return len(lengths) == 1 and is_digits(next(iter(lengths)))


def _read_head(wire: _Wire) -> _Head:
    """Status line and headers of the final answer (interim 1xx answers are passed over)."""
    while True:
        line = wire.readline()
        if not line:
            raise ConnectionResetError("the server closed the connection without answering")
        version, code, reason = [*line.decode("latin-1").split(None, 2), "", ""][:3]
        if not version.startswith("HTTP/") or len(code) != 3 or not is_digits(code):
            raise _NotHttp(f"status line {line[:80]!r}")
        headers: list[tuple[str, str]] = []
        while (line := wire.readline()) not in (b"\r\n", b"\n", b""):
            if len(headers) == MAX_HEADERS:
                raise _NotHttp(f"more than {MAX_HEADERS} headers")
            text = line.decode("latin-1").rstrip("\r\n")
            if text[:1] in (" ", "\t") and headers:  # a folded line continues the last header
                name, value = headers[-1]
                headers[-1] = (name, f"{value} {text.strip()}")
            elif ":" in text:
                name, _, value = text.partition(":")
                headers.append((name, value.lstrip(" \t")))
        status = int(code)
        if not 100 <= status < 200 or status == 101:
            return _Head(status, reason.strip(), headers, version)


def _body_chunks(wire: _Wire, head: _Head) -> Iterator[bytes]:
    """The body, without chunked framing, as it arrives; :class:`_NotHttp` if it is cut short."""
    if head.bodiless:
        return
    if head.chunked:
        while True:
            size_line = wire.readline()
            if not size_line:
                raise _CutShort("the body ended before its last chunk")
            try:
                size = int(size_line.split(b";")[0].strip(), 16)
            except ValueError:
                size = -1
            if size < 0:
                raise _NotHttp(f"chunk size {size_line[:40]!r}")
            if size == 0:
                while wire.readline() not in (b"\r\n", b"\n", b""):  # trailer fields
                    pass
                return
            yield from _exactly(wire, size)
            wire.readline()  # the CRLF that ends a chunk
    length = (head.header("Content-Length") or "").strip()
    if is_digits(length):
        yield from _exactly(wire, int(length))
        return
    while chunk := wire.read(READ_SIZE):  # no length: the body ends when the connection does
        yield chunk


def _exactly(wire: _Wire, size: int) -> Iterator[bytes]:
    left = size
    while left > 0:
        chunk = wire.read(min(left, READ_SIZE))
        if not chunk:
            raise _CutShort(f"the body ended {left} bytes before its declared length")
        left -= len(chunk)
        yield chunk


def _read_body(url: str, wire: _Wire, head: _Head, limit: int,
               truncate: bool, parse: bool = False) -> tuple[bytes | None, str | None]:
    """Drain the body (the wire keeps the raw bytes); decode HTML and CSS (and with
    ``parse``, whatever it is: robots.txt).

    Past ``limit`` bytes the body is cut (``truncate``) or refused (:class:`TooLarge`).
    Returns the decoded body of HTML and CSS (None for other types, or when it is
    too large to parse, or cut short) and why the body is not whole, as WARC's
    ``WARC-Truncated`` says it: ``length`` (cut at the limit), ``disconnect`` (the
    server closed the connection before its end: what arrived is kept, as Heritrix
    and wget keep it), or None.
    """
    keep = parse or media_type(head.header("Content-Type")) in PARSED_TYPES
    parts: list[bytes] = []
    total = 0
    try:
        for chunk in _body_chunks(wire, head):
            total += len(chunk)
            if total > limit:
                if truncate:
                    return None, "length"
                raise TooLarge(f"{url}: body is larger than the limit of {limit} bytes "
                               "(capture.max_resource_bytes)")
            if keep:
                parts.append(chunk)
                keep = total <= PARSE_LIMIT
    except _CutShort:
        return None, "disconnect"
    if not keep:
        return None, None
    return _decode_content(b"".join(parts), head.header("Content-Encoding"), PARSE_LIMIT), None


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
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return str(exc) or type(exc).__name__


@lru_cache(maxsize=1)
def _tls_context() -> ssl.SSLContext:
    """The system's trust and modern defaults, made once (loading the CA store takes time)."""
    return ssl.create_default_context()


def _connect(host: str, port: int, addresses: list[str], tls: bool,
             timeout: float) -> tuple[socket.socket, str]:
    """A connection to the first checked address that answers, and that address."""
    failure: OSError | None = None
    for address in addresses:
        # Straight to the checked address: create_connection would look it up again.
        sock = socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET,
                             socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect((address, port))
        except OSError as exc:
            sock.close()
            failure = exc
            continue
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if tls:
            try:
                sock = _tls_context().wrap_socket(sock, server_hostname=host)
            except BaseException:
                sock.close()
                raise
        return sock, address
    assert failure is not None
    raise failure
