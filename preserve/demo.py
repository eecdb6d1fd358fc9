"""The offline walk-through behind ``make run`` (an interface, like the CLI), and its site.

:class:`LoopbackSite` serves a fixed set of routes on 127.0.0.1 (the bundled
reference news page with its stylesheets, script and images). Tests use the
same server. Each answer is sent in one write, so clients do not stall on
delayed ACKs, with ``Connection: close`` unless the site keeps connections
alive (as most real servers do; the crawl benchmarks ask for that).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any

from preserve import retrieve
from preserve.catalog import open_engine
from preserve.config import Settings
from preserve.fixity import run_fixity
from preserve.jobs import run_capture
from preserve.policy import CaptureOptions, Policy
from preserve.storage import open_stores
from preserve.warc_digests import check_record_digests

DEMO_PORT = 8737  # a fixed port, so the walk-through's URL is the same run after run
# Our own loopback server: no pause between requests is needed.
DEMO_POLICY = Policy(name="demo walk-through", path=Path(__file__), collection="demo",
                     capture=CaptureOptions(delay_seconds=0.0))
REFERENCE_PATH = "/post/bachelet-ends-term-as-un-rights-chief-by-blasting-china-s-uyghur-genocide"
_TYPES = {".css": "text/css", ".js": "text/javascript", ".png": "image/png",
          ".jpg": "image/jpeg", ".html": "text/html; charset=utf-8"}


@dataclass(frozen=True)
class Route:
    """One answer the site gives."""

    body: bytes
    content_type: str = "text/html; charset=utf-8"
    status: int = 200
    headers: tuple[tuple[str, str], ...] = ()
    delay_seconds: float = 0.0  # stands in for a network round trip, or a slow server


def reference_site() -> dict[str, Route]:
    """The bundled reference page at :data:`REFERENCE_PATH` and every file it uses."""
    site = resources.files("preserve") / "demo_site"
    routes = {REFERENCE_PATH: Route((site / "post.html").read_bytes())}
    for folder in ("static", "media"):
        for item in (site / folder).iterdir():
            suffix = "." + item.name.rsplit(".", 1)[-1]
            routes[f"/{folder}/{item.name}"] = Route(item.read_bytes(), _TYPES[suffix])
    return routes


class LoopbackSite:
    """A threaded HTTP server on 127.0.0.1 answering from a route table; 404 otherwise."""

    def __init__(self, routes: Mapping[str, Route], port: int = 0,
                 keep_alive: bool = False) -> None:
        self.routes = dict(routes)
        self.keep_alive = keep_alive
        self.connections = 0  # connections accepted
        self._counting = threading.Lock()
        self.requests: list[str] = []
        handler = _handler_for(self)
        try:
            self._server = ThreadingHTTPServer(("127.0.0.1", port), handler)
        except OSError:  # the port is taken: any free one will do
            self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def url(self, path: str) -> str:
        return self.base_url + path

    def __enter__(self) -> LoopbackSite:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def _handler_for(site: LoopbackSite) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "preserve-demo"

        def setup(self) -> None:
            with site._counting:
                site.connections += 1
            super().setup()

        def do_GET(self) -> None:
            site.requests.append(self.path)
            route = site.routes.get(self.path) or Route(b"<h1>Not found</h1>", status=404)
            if route.delay_seconds:
                time.sleep(route.delay_seconds)
            head = [f"HTTP/1.1 {route.status} {self.responses.get(route.status, ('',))[0]}",
                    f"Content-Type: {route.content_type}",
                    f"Content-Length: {len(route.body)}",
                    *([] if site.keep_alive else ["Connection: close"]),
                    *(f"{name}: {value}" for name, value in route.headers)]
            self.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + route.body)
            if not site.keep_alive:
                self.close_connection = True

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


def walkthrough(settings: Settings, say: Callable[[str], None]) -> tuple[int, dict[str, Any]]:
    """Serve the reference page on loopback, archive it, describe, retrieve and audit it.

    Narrates each step through ``say``; returns the exit status and a summary
    (the ``--json`` output). Every claim it prints is one it has just checked.
    """
    say(f"preserve walk-through: home is {settings.home}")
    say(f"catalog: {settings.database_url}\n")
    # Our own site on 127.0.0.1: the private-address guard is lifted for this capture only.
    local = settings.with_capture(allow_private_addresses=True)
    engine = open_engine(settings.database_url)
    try:
        with LoopbackSite(reference_site(), port=DEMO_PORT) as site:
            url = site.url(REFERENCE_PATH)
            say(f"1. capture  serving the reference news page at {url}")
            report = run_capture([url], settings=local, engine=engine, policy=DEMO_POLICY)
        warc = report.warcs[0]
        stores = open_stores(settings.locations)
        with stores[warc["locations"][0]].open(warc["key"]) as stream:
            records = check_record_digests(stream, warc["key"])
        say(f"   fetched {report.pages} page and {report.resources} resources (and robots.txt), "
            f"{report.bytes} bytes, into {report.records} WARC records")
        if report.revisits:
            say(f"   {report.revisits} payloads were already preserved: written as revisit "
                f"records, {report.bytes_saved} bytes not stored again")
        say(f"   stored {warc['key']}")
        say(f"   in {settings.locations[warc['locations'][0]].path}: {warc['size']} bytes "
            f"(gzip per record), verified in: {', '.join(warc['locations'])}")
        say(f"   sha256 {warc['sha256']}")
        say("   record digests re-read as `warcio check` does: "
            + ("all pass" if records.passed else "; ".join(records.problems)) + "\n")

        snapshot = retrieve.find_snapshot(engine, url)
        say("2. describe  the metadata record written beside the page, as catalogued:")
        for name in ("title", "publisher", "author", "published", "language"):
            say(f"   {name:<10} {getattr(snapshot, name)}")
        text = snapshot.text or ""
        say(f"   text       {len(text)} characters, begins: {text[:90]}...\n")

        record = retrieve.payload_record(engine, stores, snapshot)
        body = retrieve.read_payload(record).body.read()
        identical = body == site.routes[REFERENCE_PATH].body
        say(f"3. retrieve  `preserve get {url} --payload`")
        say(f"   {len(body)} bytes, {'identical to' if identical else 'DIFFERENT from'} "
            "what the server sent")
        say(f"   WARC record: {snapshot.warc_key} offset {snapshot.offset} "
            f"length {snapshot.length} (read by range)\n")

        result = run_fixity(engine, stores)
        say("4. fixity  `preserve fixity run` re-hashes every stored copy:")
        say(f"   {result.summary()}")
        for finding in result.findings:
            say(f"   {finding}")
    finally:
        engine.dispose()
    say("\nTry these (in a clone, the command is .venv/bin/preserve):")
    say(f"  preserve list {url}")
    say(f"  preserve get {url} --text")
    say(f"  preserve get {url} --record | warcio check /dev/stdin")
    passed = records.passed and identical and result.passed
    summary = {"passed": passed, "url": url, "capture": report.as_dict(),
               "record_digests": {"records": records.records, "problems": records.problems},
               "description": {name: getattr(snapshot, name) for name in
                               ("title", "publisher", "author", "published", "language")},
               "payload_identical": identical, "fixity": result.as_dict()}
    return (0 if passed else 1), summary
