"""HTTP fetching and WARC writing keep exactly the bytes that crossed the socket.

A raw-socket server on 127.0.0.1 sends fixed bytes, so every test knows the
exact response (chunking, compression, odd header spacing included).
"""

from __future__ import annotations

import gzip
import ipaddress
import json
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from warcio.archiveiterator import ArchiveIterator

from preserve.capture import fetch as fetch_module
from preserve.capture.fetch import Connections, fetch, is_public_address, normalize_url
from preserve.config import CaptureSettings
from preserve.demo import LoopbackSite, Route
from preserve.errors import AddressRefused, FetchError, TooLarge, UnsupportedURL
from preserve.storage.filesystem import MARKER

WARCIO = Path(sys.executable).parent / "warcio"
LOCAL = CaptureSettings(allow_private_addresses=True, timeout_seconds=5)


class RawServer:
    """Answers every connection on 127.0.0.1 with the same raw bytes (or never, if None)."""

    def __init__(self, response: bytes | None) -> None:
        self.response = response
        self.requests: list[bytes] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self._held: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self._listener.getsockname()[1])

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._accepted(conn)

    def _accepted(self, conn: socket.socket) -> None:
        try:
            self._answer(conn)
        except OSError:
            conn.close()

    def _answer(self, conn: socket.socket) -> None:
        conn.settimeout(5)
        request = b""
        while b"\r\n\r\n" not in request:
            data = conn.recv(65536)
            if not data:
                break
            request += data
        self.requests.append(request)
        if self.response is None:
            self._held.append(conn)  # never answer; closed when the server stops
            return
        conn.sendall(self.response)
        conn.shutdown(socket.SHUT_WR)
        conn.close()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._listener.close()
        for conn in self._held:
            conn.close()


@pytest.fixture
def raw_server() -> Iterator[Callable[[bytes | None], RawServer]]:
    servers: list[RawServer] = []

    def start(response: bytes | None) -> RawServer:
        servers.append(RawServer(response))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


def chunked(*pieces: bytes) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for piece in pieces) + b"0\r\n\r\n"


CHUNKS = (b"Archived ", b"in three ", b"chunks.\n")
CHUNKED = (b"HTTP/1.1 200 OK\r\n"
           b"Content-Type: text/plain; charset=utf-8\r\n"
           b"Transfer-Encoding: chunked\r\n"
           b"Connection: close\r\n"
           b"\r\n" + chunked(*CHUNKS))

PAGE = (b"<html><head><title>Compressed page</title></head>"
        b"<body><p>The body of this page travelled gzip-compressed.</p></body></html>")
ZIPPED = gzip.compress(PAGE, mtime=0)
GZIPPED = (b"HTTP/1.1 200 OK\r\n"
           b"Content-Type: text/html; charset=utf-8\r\n"
           b"Content-Encoding: gzip\r\n"
           b"Content-Length: %d\r\n"
           b"Connection: close\r\n"
           b"\r\n" % len(ZIPPED)) + ZIPPED

ODD_BODY = b"<html><body><p>Odd headers.</p></body></html>"
ODD = (b"HTTP/1.1 200 OK\r\n"
       b"Content-Type:text/html\r\n"
       b"X-Trailing-Spaces: kept   \r\n"
       b"x-lower-CASE:\tvalue with tab\r\n"
       b"Content-Length: %d\r\n"
       b"Connection: close\r\n"
       b"\r\n" % len(ODD_BODY)) + ODD_BODY


def capture(run: Callable[..., Any], url: str) -> Path:
    """Capture url through the CLI; the stored WARC's path."""
    # The raw server answers every path alike, robots.txt included: do not ask it.
    result = run("capture", url, "--collection", "t", "--json", "--ignore-robots")
    assert result.status == 0, result.err
    report = json.loads(result.out)
    path = Path(os.environ["PRESERVE_HOME"]) / "objects" / report["warcs"][0]["key"]
    assert path.is_file()
    return path


def blocks(path: Path, kind: str) -> list[bytes]:
    """The blocks of the WARC's records of one type, as stored, HTTP headers unparsed."""
    with path.open("rb") as stream:
        return [record.raw_stream.read()
                for record in ArchiveIterator(stream, no_record_parse=True)
                if record.rec_type == kind]


def warcio_check(path: Path) -> None:
    checked = subprocess.run([str(WARCIO), "check", "-v", str(path)], capture_output=True,
                             text=True, timeout=60, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # Every record (warcinfo, request, response, any metadata) had its digests checked.
    records = checked.stdout.count("WARC-Record-ID")
    assert records >= 3, checked.stdout
    assert checked.stdout.count("digest pass") == records, checked.stdout


@pytest.mark.parametrize("raw", [CHUNKED, GZIPPED, ODD], ids=["chunked", "gzip", "odd-headers"])
def test_the_warc_holds_the_response_byte_for_byte(
        run: Callable[..., Any], raw_server: Callable[..., RawServer], raw: bytes) -> None:
    server = raw_server(raw)

    warc = capture(run, server.url("/doc"))

    warcio_check(warc)
    assert blocks(warc, "response") == [raw]
    # And in the stored file as such, once its gzip members are undone.
    assert raw in gzip.decompress(warc.read_bytes())


CUT_SHORT = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 10000\r\n\r\n"
             + b"x" * 4000)
CUT_CHUNKS = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n"
              b"\r\n" + chunked(*CHUNKS)[:-5])  # the server goes before the last chunk


@pytest.mark.parametrize("raw", [CUT_SHORT, CUT_CHUNKS], ids=["length", "chunked"])
def test_a_body_the_server_cuts_short_is_kept_as_far_as_it_came(
        run: Callable[..., Any], raw_server: Callable[..., RawServer], raw: bytes) -> None:
    # Asked again (retries); then what arrived is archived and marked, as Heritrix and
    # wget keep it, where it used to be lost whole.
    server = raw_server(raw)
    result = run("capture", server.url("/doc"), "--collection", "t", "--json",
                 "--ignore-robots")
    assert result.status == 0, result.err
    report = json.loads(result.out)
    assert len(server.requests) == 3
    assert report["errors"] == [f"{server.url('/doc')}: the server closed the connection "
                                "before the body's end, 3 times; what arrived is kept "
                                "(WARC-Truncated: disconnect)"]
    warc = Path(os.environ["PRESERVE_HOME"]) / "objects" / report["warcs"][0]["key"]
    assert blocks(warc, "response") == [raw]
    with warc.open("rb") as stream:
        [response] = [r for r in ArchiveIterator(stream) if r.rec_type == "response"]
        assert response.rec_headers.get_header("WARC-Truncated") == "disconnect"
    warcio_check(warc)
    assert run("fixity", "run", "--deep").status == 0


def test_the_request_record_holds_the_bytes_sent(
        run: Callable[..., Any], raw_server: Callable[..., RawServer]) -> None:
    server = raw_server(CHUNKED)

    warc = capture(run, server.url("/path?q=1"))

    (request,) = blocks(warc, "request")
    assert [request] == server.requests
    assert request.startswith(b"GET /path?q=1 HTTP/1.1\r\n")
    assert f"\r\nHost: 127.0.0.1:{server.port}\r\n".encode() in request
    assert request.endswith(b"\r\n\r\n")


# Transfer-encoding is removed; content-encoding is kept, as the server sent it.
@pytest.mark.parametrize(("raw", "payload"), [(CHUNKED, b"".join(CHUNKS)), (GZIPPED, ZIPPED)],
                         ids=["chunked", "gzip"])
def test_get_payload_gives_the_body_as_sent(
        run: Callable[..., Any], raw_server: Callable[..., RawServer], raw: bytes,
        payload: bytes) -> None:
    server = raw_server(raw)
    capture(run, server.url("/doc"))

    result = run("get", server.url("/doc"), "--payload")

    assert result.status == 0, result.err
    assert result.out == payload


def test_a_gzip_page_is_described_from_its_decoded_body(
        run: Callable[..., Any], raw_server: Callable[..., RawServer]) -> None:
    server = raw_server(GZIPPED)
    capture(run, server.url("/doc"))

    result = run("get", server.url("/doc"), "--json")

    assert result.status == 0, result.err
    assert json.loads(result.out)["title"] == "Compressed page"


def test_fetch_keeps_the_exchange(raw_server: Callable[..., RawServer]) -> None:
    server = raw_server(ODD)

    exchange = fetch(server.url("/odd"), LOCAL)
    try:
        assert exchange.response.read() == ODD
        assert exchange.response_size == len(ODD)
        assert exchange.header_size == len(ODD) - len(ODD_BODY)
        assert exchange.request == server.requests[0]
        assert (exchange.status, exchange.ip, exchange.mime) == (200, "127.0.0.1", "text/html")
        assert exchange.body == ODD_BODY
    finally:
        exchange.close()


def test_private_addresses_are_refused_unless_allowed(
        raw_server: Callable[..., RawServer]) -> None:
    server = raw_server(ODD)

    with pytest.raises(AddressRefused, match=r"127\.0\.0\.1"):
        fetch(server.url("/odd"), CaptureSettings(allow_private_addresses=False))

    time.sleep(0.2)
    assert server.requests == []  # refused before connecting

    exchange = fetch(server.url("/odd"), CaptureSettings(allow_private_addresses=True))
    assert exchange.status == 200 and len(server.requests) == 1
    exchange.close()


@pytest.mark.parametrize("url", ["ftp://x/", "file:///etc/passwd", "http:///nohost",
                                 "mailto:someone@example.com", "http://host:notaport/"])
def test_normalize_url_refuses_what_cannot_be_captured(url: str) -> None:
    with pytest.raises(UnsupportedURL):
        normalize_url(url)


@pytest.mark.parametrize(("url", "normalized"), [
    ("http://Example.COM/x", "http://example.com/x"),
    ("HTTPS://example.com", "https://example.com/"),
    ("http://127.0.0.1:8080/a#frag", "http://127.0.0.1:8080/a"),
    ("http://user:secret@example.com/", "http://example.com/"),
    ("http://example.com/café/a b.png?q=é&x=1", "http://example.com/caf%C3%A9/a%20b.png?q=%C3%A9&x=1"),
    ("http://example.com/already%20encoded", "http://example.com/already%20encoded"),
    ("http://bücher.example/", "http://xn--bcher-kva.example/"),
    ("http://[::1]:81/", "http://[::1]:81/"),
    ("http://example.com:80/a", "http://example.com/a"),  # the scheme's own port: unsaid
    ("https://example.com:443/", "https://example.com/"),
    ("https://example.com:80/", "https://example.com:80/"),
])
def test_normalize_url_is_what_a_browser_sends(url: str, normalized: str) -> None:
    assert normalize_url(url) == normalized


@pytest.mark.parametrize("address", [
    "127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "0.0.0.0",
    "100.64.0.1", "224.0.0.1", "::1", "::", "fe80::1", "fc00::1", "fec0::1", "ff0e::1",
    "::ffff:127.0.0.1", "::127.0.0.1", "64:ff9b::7f00:1", "2002:7f00:1::1",
    "2001:0:4136:e378:8000:63bf:80ff:fffe",  # Teredo whose client is 127.0.0.1
])
def test_non_public_addresses(address: str) -> None:
    assert not is_public_address(address)


@pytest.mark.parametrize("address", ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c",
                                     "64:ff9b::5db8:d70e", "::ffff:93.184.215.14"])
def test_public_addresses(address: str) -> None:
    assert is_public_address(address)


def test_nothing_listening_is_connection_refused() -> None:
    # A bound socket that does not listen keeps the port ours and refuses connections.
    with socket.socket() as bound:
        bound.bind(("127.0.0.1", 0))
        port = bound.getsockname()[1]
        with pytest.raises(FetchError, match="refused"):
            fetch(f"http://127.0.0.1:{port}/", LOCAL)


def test_a_body_over_the_limit_is_too_large(raw_server: Callable[..., RawServer]) -> None:
    server = raw_server(ODD)

    def limited(limit: int) -> CaptureSettings:
        return CaptureSettings(allow_private_addresses=True, timeout_seconds=5,
                               max_resource_bytes=limit)

    with pytest.raises(TooLarge, match=str(len(ODD_BODY) - 1)):
        fetch(server.url("/odd"), limited(len(ODD_BODY) - 1))
    exchange = fetch(server.url("/odd"), limited(len(ODD_BODY)))  # exactly at the limit
    assert exchange.response.read() == ODD
    exchange.close()


def test_a_decoded_body_is_held_to_the_limit_too(raw_server: Callable[..., RawServer]) -> None:
    # 20 MB of HTML that travels as a few kilobytes of gzip, past the 16 MiB parse limit.
    page = b"<html><body>" + b" " * 20_000_000 + b"</body></html>"
    zipped = gzip.compress(page, mtime=0)
    server = raw_server(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n"
                        b"Content-Encoding: gzip\r\nContent-Length: %d\r\n\r\n"
                        % len(zipped) + zipped)
    limit = 1_000_000
    assert len(zipped) < limit < len(page)
    settings = CaptureSettings(allow_private_addresses=True, timeout_seconds=5,
                               max_resource_bytes=limit)

    exchange = fetch(server.url("/bomb"), settings)
    exchange.close()
    # The raw answer is archivable (it is small); the decoded page is not kept for parsing.
    assert exchange.response_size < limit
    assert exchange.body is None


def test_a_server_that_never_answers_times_out(raw_server: Callable[..., RawServer]) -> None:
    server = raw_server(None)
    settings = CaptureSettings(allow_private_addresses=True, timeout_seconds=0.5)

    started = time.monotonic()
    with pytest.raises(FetchError, match="timed out"):
        fetch(server.url("/slow"), settings)

    assert time.monotonic() - started < 5
    assert len(server.requests) == 1


def test_a_capture_over_the_limit_fails_and_stores_nothing(
        run: Callable[..., Any], raw_server: Callable[..., RawServer]) -> None:
    server = raw_server(GZIPPED)

    result = run("capture", server.url("/doc"), "--collection", "t",
                 "--max-resource-bytes", "10")

    assert result.status == 2
    assert "max_resource_bytes" in result.err
    home = Path(os.environ["PRESERVE_HOME"])
    assert not any(path.is_file() and path.name != MARKER
                   for path in (home / "objects").rglob("*"))
    assert not any((home / "work").glob("*.warc.gz"))


def test_bytes_after_the_declared_length_are_not_archived(
        raw_server: Callable[..., RawServer]) -> None:
    answer = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello"
    server = raw_server(answer + b"GARBAGE AFTER THE BODY")
    exchange = fetch(server.url("/extra"), LOCAL)
    assert exchange.response.read() == answer
    assert exchange.response_size == len(answer)
    exchange.close()


def test_the_next_address_is_tried_when_the_first_does_not_answer(
        raw_server: Callable[..., RawServer], monkeypatch: pytest.MonkeyPatch) -> None:
    # "localhost" resolves to ::1 and 127.0.0.1 here; the server listens on 127.0.0.1 only.
    server = raw_server(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
    real = socket.getaddrinfo

    def both(host: str, port: int, *args: Any, **kwargs: Any) -> Any:
        v4 = real("127.0.0.1", port, *args, **kwargs)
        v6 = [(socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("::1", port, 0, 0))]
        return v6 + v4 if host == "dual.test" else real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", both)
    with socket.socket(socket.AF_INET6) as probe:  # make sure nothing listens on ::1 there
        if probe.connect_ex(("::1", server.port)) == 0:
            pytest.skip("something listens on [::1] at the same port")
    exchange = fetch(f"http://dual.test:{server.port}/", LOCAL)
    assert exchange.status == 204 and exchange.ip == "127.0.0.1"
    exchange.close()


# The answer is parsed as it is read (not by http.client): framing, interim answers,
# and what is not HTTP at all.
@pytest.mark.parametrize(("raw", "body"), [
    (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Type: text/css\r\n"
     b"Content-Length: 5\r\n\r\nhello", b"hello"),
    (b"HTTP/1.0 200 OK\r\nContent-Type: text/css\r\n\r\nread to the end", b"read to the end"),
    (b"HTTP/1.1 200 OK\r\nContent-Type: text/css\r\nTransfer-Encoding: chunked\r\n\r\n"
     b"4;name=value\r\nabcd\r\n2\r\nef\r\n0\r\nTrailer: x\r\n\r\n", b"abcdef"),
    (b"HTTP/1.1 204 No Content\r\nContent-Type: text/html\r\n\r\n", b""),
    (b"HTTP/1.1  200\r\nContent-Type: text/css\r\nContent-Length: 1\r\n\r\nx", b"x"),
    # Not a length ("\xb2" is a superscript two, which str.isdigit takes): to the end.
    (b"HTTP/1.1 200 OK\r\nContent-Type: text/css\r\nContent-Length: \xb2\r\n\r\nab", b"ab"),
], ids=["interim-100", "no-length", "chunk-extension-and-trailer", "no-content",
        "no-reason-phrase", "superscript-length"])
def test_answers_are_framed_as_http_says(raw_server: Callable[..., RawServer], raw: bytes,
                                        body: bytes | None) -> None:
    server = raw_server(raw)
    exchange = fetch(server.url("/framed"), LOCAL)
    try:
        assert exchange.response.read() == raw  # the record holds every byte, as sent
        assert exchange.status == (204 if b" 204 " in raw else 200)
        assert exchange.body == body
    finally:
        exchange.close()


@pytest.mark.parametrize("raw", [
    b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nabc",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n",
], ids=["short-body", "short-chunk", "no-last-chunk"])
def test_a_body_cut_short_is_what_arrived_marked_disconnect(
        raw_server: Callable[..., RawServer], raw: bytes) -> None:
    server = raw_server(raw)
    exchange = fetch(server.url("/cut"), LOCAL)
    try:
        assert exchange.truncated == "disconnect" and exchange.status == 200
        assert exchange.response.read() == raw
    finally:
        exchange.close()


def test_folded_and_odd_header_lines_are_read(raw_server: Callable[..., RawServer]) -> None:
    server = raw_server(b"HTTP/1.1 200 OK\r\nX-Folded: first\r\n  second\r\n"
                        b"no colon here\r\nContent-Type:text/html\r\nContent-Length: 2\r\n\r\nhi")
    exchange = fetch(server.url("/odd"), LOCAL)
    exchange.close()
    assert exchange.header("x-folded") == "first second"
    assert (exchange.mime, exchange.body) == ("text/html", b"hi")


@pytest.mark.parametrize(("raw", "problem"), [
    (b"SSH-2.0-OpenSSH_9.2\r\n\r\n", "status line"),
    (b"HTTP/1.1 2000 OK\r\n\r\n", "status line"),
    (b"HTTP/1.1 \xb200 OK\r\n\r\n", "status line"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "chunk size"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\n", "chunk size"),
    (b"HTTP/1.1 200 OK\r\nX-Long: " + b"a" * 70_000 + b"\r\n\r\n", "longer than"),
    (b"", "connection reset"),
], ids=["not-http", "bad-status", "superscript-status", "bad-chunk-size",
        "negative-chunk-size", "long-line", "nothing"])
def test_what_is_not_http_is_a_fetch_error(raw_server: Callable[..., RawServer], raw: bytes,
                                           problem: str) -> None:
    server = raw_server(raw)
    with pytest.raises(FetchError, match=problem) as caught:
        fetch(server.url("/broken"), LOCAL)
    assert str(caught.value).startswith(server.url("/broken") + ": ")


# Persistent connections: a crawl keeps its connections open between requests.

KEPT = (b"HTTP/1.1 200 OK\r\nContent-Type: text/css\r\nContent-Length: 4\r\n\r\nkept")


class KeepAliveServer(RawServer):
    """Answers request after request on each connection, as HTTP/1.1 servers do.

    After ``answers`` answers on a connection (None: no limit) it either closes
    the connection at once (``then="close"``, a server ending an idle
    connection), or reads the next request and closes without answering it
    (``then="drop"``: the server closed as the client sent), or sends
    ``then`` bytes and closes (a 408, or what is no answer).
    """

    def __init__(self, response: bytes, answers: int | None = None, then: str = "close") -> None:
        self.answers = answers
        self.then = then
        self.connections = 0
        self.closed = 0
        self._threads: list[threading.Thread] = []
        super().__init__(response)

    def _accepted(self, conn: socket.socket) -> None:
        self.connections += 1
        thread = threading.Thread(target=self._converse, args=(conn,), daemon=True)
        self._threads.append(thread)
        thread.start()

    def _converse(self, conn: socket.socket) -> None:
        try:
            self._answer_all(conn)
        finally:
            self.closed += 1

    def _answer_all(self, conn: socket.socket) -> None:
        conn.settimeout(0.2)
        answered, pending = 0, b""
        with conn:
            while not self._stop.is_set():
                if self.answers is not None and answered == self.answers and self.then == "close":
                    return
                try:
                    data = conn.recv(65536)
                except TimeoutError:
                    continue
                if not data:
                    return
                pending += data
                while b"\r\n\r\n" in pending:
                    request, pending = pending.split(b"\r\n\r\n", 1)
                    self.requests.append(request + b"\r\n\r\n")
                    if self.answers is not None and answered == self.answers:
                        if self.then != "drop":  # else read, never answered
                            conn.sendall(self.then.encode("latin-1"))
                        return
                    conn.sendall(self.response)
                    answered += 1

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(5)
        super().stop()


@pytest.fixture
def keep_alive_server() -> Iterator[Callable[..., KeepAliveServer]]:
    servers: list[KeepAliveServer] = []

    def start(response: bytes = KEPT, **options: Any) -> KeepAliveServer:
        servers.append(KeepAliveServer(response, **options))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


def fetched_bodies(urls: list[str], connections: Connections) -> list[bytes | None]:
    bodies = []
    for url in urls:
        exchange = fetch(url, LOCAL, connections=connections)
        assert exchange.response.read() == KEPT  # one answer per record, nothing else
        exchange.close()
        bodies.append(exchange.body)
    return bodies


def test_a_kept_connection_carries_the_next_requests(
        keep_alive_server: Callable[..., KeepAliveServer]) -> None:
    server = keep_alive_server()
    connections = Connections()

    bodies = fetched_bodies([server.url(f"/{n}.css") for n in range(3)], connections)

    assert bodies == [b"kept"] * 3
    assert server.connections == 1
    assert [request.split(b"\r\n")[0] for request in server.requests] == [
        f"GET /{n}.css HTTP/1.1".encode() for n in range(3)]
    assert all(b"Connection:" not in request for request in server.requests)
    assert connections.idle == 1
    connections.close()
    assert connections.idle == 0


def test_without_connections_the_request_asks_to_close(
        keep_alive_server: Callable[..., KeepAliveServer]) -> None:
    server = keep_alive_server()
    fetch(server.url("/a.css"), LOCAL).close()
    assert b"\r\nConnection: close\r\n" in server.requests[0]


def test_a_connection_the_server_drops_as_it_is_used_is_replaced(
        keep_alive_server: Callable[..., KeepAliveServer]) -> None:
    server = keep_alive_server(answers=1, then="drop")

    bodies = fetched_bodies([server.url(f"/{n}.css") for n in range(3)], Connections())

    assert bodies == [b"kept"] * 3
    # Each reuse met a closing connection; the request went again on a new one.
    assert server.connections == 3
    assert len(server.requests) == 5


@pytest.mark.parametrize("last_words", [
    "HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    "the tail of some earlier answer\r\n\r\n",
], ids=["408", "no-answer"])
def test_a_kept_connection_that_gives_no_answer_to_the_request_is_replaced(
        keep_alive_server: Callable[..., KeepAliveServer], last_words: str) -> None:
    server = keep_alive_server(answers=1, then=last_words)

    bodies = fetched_bodies([server.url(f"/{n}.css") for n in range(3)], Connections())

    assert bodies == [b"kept"] * 3  # and each record holds its own answer alone
    assert server.connections == 3


def test_a_connection_the_server_closed_while_idle_is_replaced(
        keep_alive_server: Callable[..., KeepAliveServer]) -> None:
    server = keep_alive_server(answers=1, then="close")
    connections = Connections()
    fetched_bodies([server.url("/first.css")], connections)
    deadline = time.monotonic() + 5
    while not server.closed and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.closed == 1

    assert fetched_bodies([server.url("/next.css")], connections) == [b"kept"]
    assert server.connections == 2


def test_an_idle_connection_is_not_used_after_idle_seconds(
        keep_alive_server: Callable[..., KeepAliveServer]) -> None:
    server = keep_alive_server()
    now = [100.0]
    connections = Connections(idle_seconds=4.0, clock=lambda: now[0])
    fetched_bodies([server.url("/a.css")], connections)
    now[0] += 3.9
    fetched_bodies([server.url("/b.css")], connections)
    assert server.connections == 1
    now[0] += 4.0
    fetched_bodies([server.url("/c.css")], connections)
    assert server.connections == 2


def test_a_kept_connection_goes_only_to_an_address_checked_again() -> None:
    connections = Connections()
    here, there = socket.socketpair()
    with there:
        connections.give(("http", "example.org", 80), here, "93.184.215.14")
        # The host now resolves elsewhere: the kept connection is closed, not used.
        assert connections.take(("http", "example.org", 80), ["203.0.113.9"]) is None
        assert here.fileno() == -1
        assert connections.idle == 0


def test_idle_connections_are_capped_per_server_and_in_all() -> None:
    connections = Connections(per_server=2, total=3)
    pairs = [socket.socketpair() for _ in range(5)]
    for number, (mine, _theirs) in enumerate(pairs[:3]):
        connections.give(("http", "a.test", 80), mine, f"192.0.2.{number}")
    assert connections.idle == 2
    assert pairs[0][0].fileno() == -1  # the oldest was closed
    for number, (mine, _theirs) in enumerate(pairs[3:]):
        connections.give(("http", f"b{number}.test", 80), mine, "192.0.2.9")
    assert connections.idle == 3
    assert pairs[1][0].fileno() == -1
    connections.close()
    for mine, theirs in pairs:
        assert mine.fileno() == -1
        theirs.close()


@pytest.mark.parametrize(("raw", "truncate"), [
    (b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\nConnection: close\r\n\r\nkept", False),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\nConnection: Keep-Alive, Close\r\n\r\nkept",
     False),
    (b"HTTP/1.0 200 OK\r\nContent-Length: 4\r\n\r\nkept", False),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 40\r\n\r\n" + b"x" * 40, True),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nkeptand more", False),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nkept", False),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 9\r\n\r\n"
     b"4\r\nkept\r\n0\r\n\r\n", False),
    (b"HTTP/1.1 204 No Content\r\nContent-Length: 4\r\n\r\n", False),
], ids=["connection-close", "close-among-tokens", "http-1.0", "truncated", "bytes-after",
        "two-lengths", "length-and-chunks", "no-content-with-a-length"])
def test_a_connection_is_kept_only_after_an_answer_read_to_its_known_end(
        keep_alive_server: Callable[..., KeepAliveServer], raw: bytes, truncate: bool) -> None:
    server = keep_alive_server(raw)
    connections = Connections()
    settings = CaptureSettings(allow_private_addresses=True, timeout_seconds=5,
                               max_resource_bytes=10)
    fetch(server.url("/x"), settings, truncate=truncate, connections=connections).close()
    assert connections.idle == 0


def test_an_answer_that_ends_with_the_connection_is_not_kept(
        raw_server: Callable[..., RawServer]) -> None:
    server = raw_server(b"HTTP/1.1 200 OK\r\nContent-Type: text/css\r\n\r\nread to the end")
    connections = Connections()
    exchange = fetch(server.url("/no-length"), LOCAL, connections=connections)
    exchange.close()
    assert exchange.body == b"read to the end"
    assert connections.idle == 0


# TLS: a certificate made for the test, trusted only by the client the test gives it to.

def self_signed(folder: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "preserve test")])
    now = datetime.now(UTC)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - timedelta(minutes=5))
                   .not_valid_after(now + timedelta(days=1))
                   .add_extension(x509.SubjectAlternativeName(
                       [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
                   .add_extension(x509.BasicConstraints(ca=True, path_length=None),
                                  critical=True)
                   .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@pytest.fixture
def tls_site(tmp_path: Path) -> Iterator[tuple[LoopbackSite, ssl.SSLContext]]:
    """The loopback site over TLS, keeping connections, and a client context that trusts it."""
    cert, key = self_signed(tmp_path)
    site = LoopbackSite({"/a.css": Route(b"a{}", "text/css"),
                         "/b.css": Route(b"b{}" * 3000, "text/css")}, keep_alive=True)
    server_side = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_side.load_cert_chain(cert, key)
    site._server.socket = server_side.wrap_socket(site._server.socket, server_side=True)
    with site:
        yield site, ssl.create_default_context(cafile=str(cert))


def test_pages_over_tls_are_fetched_on_one_kept_connection(
        tls_site: tuple[LoopbackSite, ssl.SSLContext], monkeypatch: pytest.MonkeyPatch) -> None:
    site, trusting = tls_site
    monkeypatch.setattr(fetch_module, "_tls_context", lambda: trusting)
    connections = Connections()
    base = site.base_url.replace("http://", "https://")
    for path, body in [("/a.css", b"a{}"), ("/b.css", b"b{}" * 3000), ("/a.css", b"a{}")]:
        exchange = fetch(base + path, LOCAL, connections=connections)
        exchange.close()
        assert (exchange.status, exchange.body, exchange.ip) == (200, body, "127.0.0.1")
        time.sleep(0.05)  # the server's session tickets arrive meanwhile
    assert site.connections == 1
    connections.close()


def test_a_certificate_the_system_does_not_trust_is_a_fetch_error(
        tls_site: tuple[LoopbackSite, ssl.SSLContext]) -> None:
    site, _ = tls_site
    url = site.base_url.replace("http://", "https://") + "/a.css"
    with pytest.raises(FetchError, match="TLS failed: CERTIFICATE_VERIFY_FAILED"):
        fetch(url, LOCAL, connections=Connections())


@pytest.mark.parametrize(("keep_alive", "fit_for"), [
    ("timeout=3, max=100", 2.0),  # less a second for the way there
    ('max=5, timeout="10"', 4.0),  # never longer than the crawl's own limit
    ("timeout=1", None),  # no time to use it again: not kept
    ("max=100", 4.0),  # no timeout: the crawl's own limit
    ("timeout=" + "9" * 400, 4.0),  # absurd, as good as none (int would overflow a float)
    ("timeout=, timeout=-3, timeout=\uff15", 4.0),  # none of them a number of seconds
])
def test_a_server_that_says_its_keep_alive_timeout_is_taken_at_its_word(
        keep_alive_server: Callable[..., KeepAliveServer], keep_alive: str,
        fit_for: float | None) -> None:
    server = keep_alive_server(KEPT.replace(
        b"\r\n\r\n", f"\r\nKeep-Alive: {keep_alive}\r\n\r\n".encode(), 1))
    now = [100.0]
    connections = Connections(idle_seconds=4.0, clock=lambda: now[0])
    fetch(server.url("/a.css"), LOCAL, connections=connections).close()
    if fit_for is None:
        assert connections.idle == 0
        return
    now[0] += fit_for - 0.1
    fetch(server.url("/b.css"), LOCAL, connections=connections).close()
    assert server.connections == 1
    now[0] += fit_for + 0.1
    fetch(server.url("/c.css"), LOCAL, connections=connections).close()
    assert server.connections == 2
    connections.close()


@pytest.mark.parametrize(("url", "seed", "within"), [
    ("http://127.0.0.1:80/two", "http://127.0.0.1/", True),
    ("http://127.0.0.1/two", "http://127.0.0.1:80/", True),
    ("https://example.com/two", "http://example.com:80/", True),  # http to https: one host
    ("http://127.0.0.1:8080/two", "http://127.0.0.1/", False),
])
def test_a_scheme_s_own_port_written_out_is_the_same_host(url: str, seed: str,
                                                          within: bool) -> None:
    from preserve.capture.scope import Scope
    assert Scope(mode="host").allows(url, seed) is within
