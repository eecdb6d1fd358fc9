"""Crawl: pages within scope, each with its requisites, into a series of WARC files.

For every page taken from the frontier the crawler fetches it (following
redirects, each hop its own record), describes it if it is HTML, fetches what
it needs to render (stylesheets, scripts, images, what stylesheets import or
reference; even from other hosts), and then queues its in-scope links. One
fetch per canonical (SURT) URL per crawl.

Along the way: robots.txt is asked before every fetch when the crawl obeys it
(and its decision logged); each host gets a delay between requests; timeouts,
connection errors, 429 and 5xx answers are retried with backoff (``Retry-After``
respected); a payload this crawl or the catalog already holds is written as a
``revisit`` record; a body over the size limit is cut (``WARC-Truncated``),
except a seed's, which is refused as bad input.

A seed that cannot be fetched at all stops the crawl (the caller discards the
open WARC). Anything else that fails is logged and counted, and the crawl goes on.
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parsedate_to_datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urljoin, urlsplit

from protego import Protego

from preserve.capture.fetch import (
    HTML_TYPES,
    ROBOTS_PATH,
    Connections,
    Exchange,
    fetch,
    normalize_url,
)
from preserve.capture.frontier import Fingerprints, Frontier
from preserve.capture.links import css_links, html_links
from preserve.capture.scope import Scope
from preserve.capture.warc import Revisit, WarcFile, warc_date
from preserve.config import CaptureSettings
from preserve.describe import EXTRACTOR, EXTRACTOR_VERSION, decode_html, describe
from preserve.errors import AddressRefused, BadInput, FetchError, PreserveError, UnsupportedURL
from preserve.index import surt_key
from preserve.numbers import is_digits
from preserve.processes import process_pool

MAX_REDIRECTS = 10
MAX_ROBOTS_REDIRECTS = 5  # RFC 9309: at least five followed
ROBOTS_BYTES = 512 * 1024  # RFC 9309: at least 500 KiB parsed
# Requisites of requisites: a page's stylesheet (1), what it imports (2), and what
# that references (3). Deeper chains, and more than MAX_REQUISITES fetches per
# page, are cut off and reported, so a hostile page cannot fill the disk.
MAX_REQUISITE_DEPTH = 3
MAX_REQUISITES = 1000
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
MAX_RETRY_WAIT_SECONDS = 60.0
MAX_CRAWL_DELAY_SECONDS = 60.0  # a robots.txt's Crawl-delay is kept up to this
# Responses and errors a crawl's report lists (the first of each); the log has all.
REPORTED = 10_000
# HTML waiting for the describing processes (queued with its page, in memory),
# beyond which the crawl waits for them: 16 Mi characters, up to 64 MiB.
DESCRIBE_BACKLOG_CHARS = 16 * 1024 * 1024


@dataclass(frozen=True)
class Seed:
    """Where a crawl starts, and how far from there it may go."""

    url: str
    scope: Scope = field(default_factory=Scope)

    def allows(self, url: str) -> bool:
        """May a page found from this seed be crawled?"""
        return self.scope.allows(url, self.url)


@dataclass(frozen=True)
class CrawlOptions:
    """How a crawl behaves, beyond the per-request limits in CaptureSettings."""

    requisites: bool = True
    describe: bool = True
    obey_robots: bool = True
    delay_seconds: float = 0.0
    host_connections: int = 2
    concurrency: int = 8
    retries: int = 2
    backoff_seconds: float = 1.0
    describe_workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    # Where the frontier's and the met URLs' temporary files go (None: the system's).
    frontier_dir: Path | None = None


@dataclass(frozen=True)
class Response:
    """One response that went into the WARC."""

    url: str
    status: int
    mime: str
    bytes: int
    role: str  # "page", "redirect", "requisite" or "robots"
    revisit: bool = False


class WarcSink(Protocol):
    """Where records go: the open WARC file, and a chance to roll over between pages."""

    @property
    def warc(self) -> WarcFile: ...

    def full(self) -> bool:
        """Would the next checkpoint roll over to a new file?"""

    def checkpoint(self) -> None:
        """Called after each page and its requisites are written: a safe place to roll over."""


PayloadLookup = Callable[[str], Revisit | None]
Progress = Callable[[Response], None]
LogLine = Callable[[dict[str, Any]], None]


@dataclass
class CrawlResult:
    """What a crawl wrote, refused, skipped and could not fetch.

    Counts cover the whole crawl; the responses and errors listed are the first
    REPORTED of each (the crawl's log has every one), so a crawl of millions of
    pages does not hold them all in memory.
    """

    pages: int = 0
    resources: int = 0
    bytes: int = 0
    responses: list[Response] = field(default_factory=list)
    responses_omitted: int = 0
    errors: list[str] = field(default_factory=list)
    errors_omitted: int = 0
    revisits: int = 0
    bytes_saved: int = 0
    robots_refusals: int = 0
    out_of_scope: int = 0
    # Start pages (of several) that could not be fetched at all: the others were crawled.
    start_pages_failed: int = 0
    progress: Progress | None = field(default=None, repr=False)
    _statuses: Counter[str] = field(default_factory=Counter, repr=False)

    def add(self, response: Response) -> None:
        self.resources += response.role == "requisite"
        self.bytes += response.bytes
        self._statuses[str(response.status)] += 1
        self.responses_omitted += not _listed(self.responses, response)
        if self.progress is not None:
            self.progress(response)

    def error(self, message: str) -> None:
        self.errors_omitted += not _listed(self.errors, message)

    @property
    def status_codes(self) -> dict[str, int]:
        return dict(sorted(self._statuses.items()))


def _listed(items: list[Any], item: Any) -> bool:
    """Add item to a report's list while it holds fewer than REPORTED; was it added?"""
    if len(items) < REPORTED:
        items.append(item)
        return True
    return False


@dataclass
class _Fetched:
    """An exchange, made ready on the fetching thread: digests taken, links found."""

    exchange: Exchange
    html: str | None = None  # the decoded document, for an HTML answer
    requisites: list[str] = field(default_factory=list)
    outlinks: list[str] = field(default_factory=list)
    parsed: bool = False  # HTML or CSS whose links were looked for
    unread: str | None = None  # why its links were not read, when they could not be


def _prepared(exchange: Exchange) -> _Fetched:
    """Hash the response and find its links: work that leaves the writing thread free.

    (hashlib, and lexbor while it parses, let go of the interpreter lock, so on
    the fetching threads they run beside the crawl loop.) A page whose links
    cannot be read is still archived; ``unread`` says why.
    """
    fetched = _Fetched(exchange)
    exchange.digests  # noqa: B018 (computed now, cached on the exchange)
    if exchange.body is None or exchange.location is not None:
        return fetched
    try:
        if exchange.mime == "text/css":
            fetched.requisites = css_links(exchange.body.decode("utf-8", errors="replace"),
                                           exchange.url)
            fetched.parsed = True
        elif exchange.mime in HTML_TYPES:
            fetched.html = decode_html(exchange.body, exchange.header("Content-Type"))
            links = html_links(fetched.html, exchange.url)
            fetched.requisites, fetched.outlinks = links.requisites, links.outlinks
            fetched.parsed = links.unread is None
            fetched.unread = links.unread
    except Exception as exc:  # odd bytes must not stop a crawl: the page is archived
        fetched.unread = f"not read for links ({type(exc).__name__}: {exc})"
    return fetched


@lru_cache(maxsize=65536)  # a crawl meets the same links on page after page
def _canonical(url: str) -> tuple[str, str]:
    """The URL as it is fetched, and its SURT key; :class:`UnsupportedURL` if it cannot be."""
    normalized = normalize_url(url)
    return normalized, surt_key(normalized)


def description_document(url: str, capture_time: str, html: str) -> dict[str, Any]:
    """The JSON of a page's ``metadata`` record (run in a worker process on real crawls)."""
    described = describe(html, url)
    return {
        "url": url,
        "capture_time": capture_time,
        **described.as_dict(),
        "extractor": EXTRACTOR,
        "extractor_version": EXTRACTOR_VERSION,
    }


def crawl(seeds: Iterable[Seed], settings: CaptureSettings, sink: WarcSink,
          options: CrawlOptions = CrawlOptions(), known_payload: PayloadLookup | None = None,
          progress: Progress | None = None, log: LogLine | None = None,
          sleep: Callable[[float], None] = time.sleep,
          clock: Callable[[], float] = time.monotonic) -> CrawlResult:
    """Crawl from the seeds into the sink's WARC files."""
    crawler = _Crawler(settings, sink, options, known_payload, log, sleep, clock)
    crawler.result.progress = progress
    try:
        crawler.run(list(seeds))
    finally:
        crawler.close()
    return crawler.result


class _Crawler:
    def __init__(self, settings: CaptureSettings, sink: WarcSink, options: CrawlOptions,
                 known_payload: PayloadLookup | None, log: LogLine | None,
                 sleep: Callable[[float], None], clock: Callable[[], float]) -> None:
        self.settings = settings
        self.sink = sink
        self.options = options
        self.known_payload = known_payload
        self._log = log or (lambda line: None)
        self._log_lock = threading.Lock()
        self.sleep = sleep
        self.clock = clock
        # Fetches run on worker threads, ahead of the main thread, which alone
        # writes records, parses and decides what comes next.
        self.pool = ThreadPoolExecutor(max_workers=options.concurrency,
                                       thread_name_prefix="fetch")
        self.pending: dict[str, Future[_Fetched]] = {}
        self.connections = Connections()  # kept open between requests to a server
        self.stopping = threading.Event()
        # Description costs far more CPU than fetching: on a real crawl it runs in
        # worker processes, one per core, and the main thread writes each metadata
        # record when its description is ready.
        self.describers: ProcessPoolExecutor | None = None
        self.descriptions: deque[tuple[str, datetime, str, int, Future[dict[str, Any]]]] = deque()
        self.describing = 0  # characters of HTML handed to the describers, not yet written
        self.host_lock = threading.Lock()
        self.host_slots: dict[str, threading.Semaphore] = {}
        self.result = CrawlResult()
        self._pages: Counter[int] = Counter()  # pages fetched, by the id() of their seed's scope
        self.seen = Fingerprints(options.frontier_dir)  # SURT keys of every URL met
        self.payloads: dict[str, Revisit] = {}
        self.robots: dict[str, Protego | None] = {}
        self.last_request: dict[str, float] = {}
        self.queued_outside = Fingerprints(options.frontier_dir)

    def log(self, line: dict[str, Any]) -> None:
        with self._log_lock:
            self._log(line)

    def _error(self, message: str) -> None:
        """Something not captured or not whole: in the report (the first REPORTED) and the log."""
        self.result.error(message)
        self.log({"error": message})

    def close(self) -> None:
        if self.describers is not None:
            self.describers.shutdown(wait=True, cancel_futures=True)
        for future in self.pending.values():
            future.cancel()
        self.stopping.set()  # fetches still in flight are cut short, not retried
        self.connections.stop()
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.seen.close()
        self.queued_outside.close()
        for future in self.pending.values():
            if future.done() and not future.cancelled() and future.exception() is None:
                future.result().exchange.close()
        self.pending.clear()

    def _prefetch(self, url: str, truncate: bool) -> None:
        """Start fetching url on a worker thread, if robots.txt allows it."""
        if url in self.pending or not self._robots_allow(url, quiet=True):
            return
        self.pending[url] = self.pool.submit(self._fetch_ready, url, truncate)

    def _fetch_ready(self, url: str, truncate: bool) -> _Fetched:
        return _prepared(self._attempts(url, truncate))

    def _describe(self, exchange: Exchange, response_id: str, html: str) -> None:
        """Describe a page now, or hand it to the worker processes on a real crawl."""
        moment = warc_date(exchange.date)
        if self.describers is None:
            try:
                document = description_document(exchange.url, moment, html)
            except Exception as exc:  # an extractor failing on odd HTML must not lose the page
                self._not_described(exchange.url, exc)
            else:
                self.sink.warc.write_metadata(exchange.url, exchange.date, response_id, document)
            return
        future = self.describers.submit(description_document, exchange.url, moment, html)
        self.descriptions.append((exchange.url, exchange.date, response_id, len(html), future))
        self.describing += len(html)
        # When description falls behind, the crawl waits for it rather than queue
        # pages without end: memory stays bounded whatever the site's size.
        while self.describing > DESCRIBE_BACKLOG_CHARS:
            self._write_description()

    def _write_descriptions(self, wait: bool) -> None:
        """Write the metadata records of descriptions that are ready (all, with ``wait``)."""
        while self.descriptions and (wait or self.descriptions[0][4].done()):
            self._write_description()

    def _write_description(self) -> None:
        """Write the oldest description's metadata record, once it is ready."""
        url, date, response_id, size, future = self.descriptions.popleft()
        self.describing -= size
        try:
            document = future.result()
        except Exception as exc:
            self._not_described(url, exc)
        else:
            self.sink.warc.write_metadata(url, date, response_id, document)

    def _not_described(self, url: str, exc: BaseException) -> None:
        self._error(f"{url}: not described ({type(exc).__name__}: {exc})")

    def _checkpoint(self) -> None:
        """After a page: write finished descriptions; before a rollover, all of them."""
        rolling = self.sink.full()
        self._write_descriptions(wait=rolling)
        if not rolling and self.sink.full():  # the descriptions just written filled it
            rolling = True
            self._write_descriptions(wait=True)
        self.sink.checkpoint()
        if rolling and self.known_payload is not None:
            # The sealed file is catalogued: the catalog now answers for its payloads,
            # and what the crawl keeps in memory stays bounded by one open file's.
            self.payloads.clear()

    def run(self, seeds: list[Seed]) -> None:
        if self.options.describe and self.options.describe_workers > 0 and (
                len(seeds) > 1 or any(seed.scope.depth > 0 for seed in seeds)):
            self.describers = process_pool(self.options.describe_workers)
        self._crawl(seeds)
        self._write_descriptions(wait=True)

    def _crawl(self, seeds: list[Seed]) -> None:
        frontier: Frontier[tuple[str, int, Seed, bool]] = Frontier(
            [(seed.url, 0, seed, True) for seed in seeds], self.options.frontier_dir)
        try:
            self._crawl_from(frontier, seeds)
        finally:
            frontier.close()

    def _crawl_from(self, frontier: Frontier[tuple[str, int, Seed, bool]],
                    seeds: list[Seed]) -> None:
        for seed in seeds:
            self.seen.add(surt_key(seed.url))
        # A page budget (max_pages) counts the pages of the seeds that share its scope:
        # the URLs of one command share one, each target of a policy has its own.
        scopes = {id(seed.scope): seed.scope for seed in seeds}
        while frontier:
            if all(self._spent(scope) for scope in scopes.values()):
                # Every seed's budget is spent: what waits is not fetched, said once.
                self.log({"outcome": f"max_pages reached: {len(frontier)} pages waiting "
                                     "were not fetched"})
                return
            # Keep the workers busy with the pages next in line.
            room = self.options.concurrency
            for next_url, _depth, next_seed, next_is_seed in frontier.next_in_line(room):
                if not self._spent(next_seed.scope, ahead=len(self.pending)):
                    self._prefetch(next_url, truncate=not next_is_seed)
            url, depth, seed, is_seed = frontier.popleft()
            if self._spent(seed.scope):
                self.log({"url": url, "outcome": "skipped: max_pages reached"})
                continue
            # A seed's redirects are followed wherever they go, and where it lands
            # becomes the seed (http to https, a new host name); other pages' only
            # within scope.
            try:
                fetched = self._fetch(url, "page", must=is_seed,
                                      follow=_anywhere if is_seed else seed.allows)
            except BadInput as exc:
                if len(seeds) == 1:  # the one thing asked for cannot be had: bad input
                    raise
                # One of several start pages (a policy's targets): the others go on.
                self.result.start_pages_failed += 1
                self._error(f"start page not fetched: {exc}")
                continue
            if fetched is None:
                if is_seed:
                    self.result.start_pages_failed += 1
                continue
            page, response_id = fetched
            if is_seed and page.exchange.url != seed.url:
                seed = Seed(page.exchange.url, seed.scope)
            # A redirect not followed (a loop, out of scope, met already) is no page.
            self.result.pages += page.exchange.location is None
            self._pages[id(seed.scope)] += 1
            try:
                self._parse(page, response_id)
            finally:
                page.exchange.close()
            if page.parsed:
                if self.options.requisites:
                    self._requisites(page.requisites, seed)
                if depth < seed.scope.depth:
                    for link in page.outlinks:
                        frontier.extend(self._admit(link, depth + 1, seed))
            self._checkpoint()

    def _spent(self, scope: Scope, ahead: int = 0) -> bool:
        """Has the scope's page budget been used up (by its pages, and ``ahead`` more)?"""
        return (scope.max_pages is not None
                and self._pages[id(scope)] + ahead >= scope.max_pages)

    def _admit(self, url: str, depth: int, seed: Seed) -> list[tuple[str, int, Seed, bool]]:
        try:
            url, key = _canonical(url)
        except UnsupportedURL:
            return []
        if key in self.seen:
            return []
        if not seed.scope.allows(url, seed.url):
            if key not in self.queued_outside:
                self.queued_outside.add(key)
                self.result.out_of_scope += 1
            return []
        self.seen.add(key)
        return [(url, depth, seed, False)]

    def _requisites(self, found: list[str], seed: Seed) -> None:
        """Fetch a page's requisites, and theirs, in waves fetched side by side."""
        wave, depth, fetched = found, 1, 0
        while wave:
            batch: list[str] = []
            cut = False
            for index, raw in enumerate(wave):
                try:
                    url, key = _canonical(raw)
                except PreserveError as exc:
                    self._error(str(exc))
                    continue
                if key in self.seen or seed.scope.excluded(url):
                    continue
                if fetched == MAX_REQUISITES:
                    self._error(f"requisite limit of {MAX_REQUISITES} reached: "
                                f"{len(wave) - index} more queued, not fetched")
                    cut = True
                    break
                self.seen.add(key)
                fetched += 1
                batch.append(url)
            children: list[str] = []
            ahead = 0
            for index, url in enumerate(batch):
                # Fetched ahead twice as far as there are fetching threads, so they stay
                # busy, and no further: every answer waiting to be written holds up to a
                # mebibyte in memory (fetch.SPOOL_IN_MEMORY), and a page may have a
                # thousand requisites (a page of 1,000 images of 1 MB peaked at 260-360
                # MB when all were fetched ahead; bench/large_body.py).
                while ahead < min(len(batch), index + 2 * self.options.concurrency):
                    self._prefetch(batch[ahead], truncate=True)
                    ahead += 1
                got = self._fetch(url, "requisite", must=False, follow=_anywhere)
                if got is None:
                    continue
                resource, response_id = got
                try:
                    self._parse(resource, response_id)
                finally:
                    resource.exchange.close()
                children.extend(resource.requisites)
            if cut:
                return
            if depth == MAX_REQUISITE_DEPTH:
                for child in dict.fromkeys(children):
                    if surt_key(child) not in self.seen:
                        self._error(f"{child}: not fetched, more than {MAX_REQUISITE_DEPTH} "
                                    "requisites deep")
                return
            wave, depth = children, depth + 1

    def _fetch(self, url: str, role: str, must: bool,
               follow: Callable[[str], bool]) -> tuple[_Fetched, str] | None:
        """Fetch url (robots, politeness, retries), following redirects; write every hop.

        Returns the last exchange and its response record ID, or None when
        nothing usable came back (then the reason is logged and counted). With
        ``must``, failing to fetch at all is :class:`BadInput`.
        """
        asked = url
        chain = [url]  # this fetch's hops, to tell a loop from a page met elsewhere
        for _hop in range(MAX_REDIRECTS + 1):
            if not self._robots_allow(url):
                self.result.robots_refusals += 1
                self.log({"url": url, "outcome": "refused by robots.txt"})
                if must:  # said in the report too: it is what was asked for
                    self._error(f"{url}: start page refused by robots.txt "
                                "(--ignore-robots, or the policy's obey_robots: false)")
                return None
            try:
                first = self.pending.pop(url, None)
                fetched = (first.result() if first
                           else self._fetch_ready(url, truncate=not must))
            except PreserveError as exc:
                if must:
                    raise
                self._error(str(exc))
                return None
            exchange = fetched.exchange
            target = exchange.location
            response_id = self._write(exchange, "redirect" if target else role)
            if fetched.unread:
                self._error(f"{exchange.url}: {fetched.unread}")
            if target is None:
                return fetched, response_id
            try:
                next_url, key = _canonical(urljoin(url, target))
            except PreserveError:
                return fetched, response_id  # a redirect to ftp: or mailto: ends here
            if next_url in chain:
                self._error(f"{asked}: redirect loop ({' -> '.join([*chain, next_url])})")
                self.result.start_pages_failed += must
                return fetched, response_id
            if key in self.seen:  # fetched, or waiting in the frontier: not twice
                return fetched, response_id
            if not follow(next_url):
                if key not in self.queued_outside:
                    self.queued_outside.add(key)
                    self.result.out_of_scope += 1
                return fetched, response_id
            self.seen.add(key)
            exchange.close()
            url = next_url
            chain.append(url)
        if must:
            raise BadInput(f"{asked}: more than {MAX_REDIRECTS} redirects (the last to {url})")
        self._error(f"{asked}: more than {MAX_REDIRECTS} redirects (the last to {url})")
        return None

    def _attempts(self, url: str, truncate: bool) -> Exchange:
        """Fetch with retries; every attempt logged. The last answer or error stands."""
        for attempt in range(1, self.options.retries + 2):
            try:
                with self._host_turn(url):
                    exchange = fetch(url, self.settings, truncate, self.connections)
            except (AddressRefused, UnsupportedURL):
                raise
            except FetchError as exc:
                self.log({"url": url, "attempt": attempt, "outcome": str(exc)})
                if attempt > self.options.retries or self.stopping.is_set():
                    raise
                self._pause(self._backoff(attempt, None) or 0.0)
                continue
            except PreserveError:
                raise
            except Exception as exc:  # odd bytes our reader fails on must not end the crawl
                problem = f"{url}: the answer could not be read ({type(exc).__name__}: {exc})"
                self.log({"url": url, "attempt": attempt, "outcome": problem})
                raise FetchError(problem) from exc
            self.log({"url": url, "attempt": attempt, "outcome": exchange.status,
                      "bytes": exchange.response_size, "truncated": exchange.truncated})
            if exchange.truncated == "disconnect" and attempt <= self.options.retries:
                exchange.close()  # cut short: asked again; the last attempt's part is kept
                self._pause(self._backoff(attempt, None) or 0.0)
                continue
            if exchange.status in RETRY_STATUSES and attempt <= self.options.retries:
                asked = exchange.header("Retry-After")
                wait = self._backoff(attempt, asked)
                if wait is None:
                    # Asked to come back later than a crawl waits: not sooner than asked.
                    self.log({"url": url, "outcome": f"not retried: Retry-After {asked} asks "
                                                     f"for more than {MAX_RETRY_WAIT_SECONDS:g} s"})
                    return exchange
                exchange.close()
                self._pause(wait)
                continue
            return exchange
        raise AssertionError("unreachable")

    def _pause(self, seconds: float) -> None:
        """Wait (politeness, backoff), but not past a stop: then FetchError."""
        if self.sleep is time.sleep:
            self.stopping.wait(seconds)
        else:
            self.sleep(seconds)
        if self.stopping.is_set():
            raise FetchError("the crawl is stopping")

    def _backoff(self, attempt: int, retry_after: str | None) -> float | None:
        """Seconds to wait before the next attempt; None when ``Retry-After`` asks for
        longer than a crawl waits (MAX_RETRY_WAIT_SECONDS): then there is none."""
        wait = min(float(self.options.backoff_seconds * 2 ** (attempt - 1)),
                   MAX_RETRY_WAIT_SECONDS)
        if retry_after:
            asked = _retry_after_seconds(retry_after)
            if asked > MAX_RETRY_WAIT_SECONDS:
                return None
            wait = max(wait, asked)
        return wait

    @contextmanager
    def _host_turn(self, url: str) -> Iterator[None]:
        """Wait for a free connection to the host and for its delay; hold it while fetching."""
        parts = urlsplit(url)
        host = parts.netloc
        delay = self._host_delay(f"{parts.scheme}://{host}")
        with self.host_lock:
            slots = self.host_slots.setdefault(
                host, threading.Semaphore(self.options.host_connections))
        with slots:
            with self.host_lock:
                now = self.clock()
                last = self.last_request.get(host)
                start = now if last is None else max(now, last + delay)
                self.last_request[host] = start
            if start > now:
                self._pause(start - now)
            yield

    def _host_delay(self, origin: str) -> float:
        """Seconds between requests to a host: the crawl's delay, or its robots.txt's
        ``Crawl-delay`` when the crawl obeys it and that is longer (a minute at most)."""
        rules = self.robots.get(origin) if self.options.obey_robots else None
        asked = rules.crawl_delay(self.settings.user_agent) if rules is not None else None
        if not asked:
            return self.options.delay_seconds
        return max(self.options.delay_seconds, min(float(asked), MAX_CRAWL_DELAY_SECONDS))

    def _write(self, exchange: Exchange, role: str) -> str:
        """Write an exchange, as a revisit when its payload is already preserved."""
        payload_size = exchange.response_size - exchange.header_size
        digest = exchange.digests[1]
        dedupable = exchange.status == 200 and payload_size > 0 and not exchange.truncated
        revisit = None
        if dedupable:
            revisit = self.payloads.get(digest) or (
                self.known_payload(digest) if self.known_payload else None)
        response_id = self.sink.warc.write_exchange(exchange, revisit=revisit)
        if revisit is not None:
            self.result.revisits += 1
            self.result.bytes_saved += payload_size
        elif dedupable:
            self.payloads[digest] = Revisit(exchange.url, warc_date(exchange.date), response_id)
        if exchange.truncated == "disconnect":
            self._error(f"{exchange.url}: the server closed the connection before the body's "
                        f"end, {self.options.retries + 1} times; what arrived is kept "
                        "(WARC-Truncated: disconnect)")
        elif exchange.truncated:
            self._error(
                f"{exchange.url}: cut at {self.settings.max_resource_bytes} bytes "
                "(WARC-Truncated: length)")
        self.result.add(Response(exchange.url, exchange.status, exchange.mime,
                                 exchange.response_size, role, revisit is not None))
        return response_id

    def _parse(self, fetched: _Fetched, response_id: str) -> None:
        """Describe a 2xx HTML page (its links were found on the fetching thread)."""
        exchange = fetched.exchange
        if fetched.html is not None and 200 <= exchange.status < 300 and self.options.describe:
            self._describe(exchange, response_id, fetched.html)

    def _robots_allow(self, url: str, quiet: bool = False) -> bool:
        if not self.options.obey_robots:
            return True
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        if origin not in self.robots:
            self.robots[origin] = self._fetch_robots(origin)
        rules = self.robots[origin]
        allowed = rules is None or rules.can_fetch(url, self.settings.user_agent)
        if not quiet:
            self.log({"url": url, "robots": "allowed" if allowed else "refused"})
        return allowed

    def _fetch_robots(self, origin: str) -> Protego | None:
        """The origin's robots.txt rules (archived too); None means everything is allowed.

        Redirects are followed, each hop archived, five at most (RFC 9309), and the
        rules read from the body with its content coding and chunks undone.
        """
        url = origin + ROBOTS_PATH
        self.seen.add(surt_key(url))
        for _hop in range(MAX_ROBOTS_REDIRECTS + 1):
            try:
                exchange = self._attempts(url, truncate=True)
            except PreserveError as exc:
                self.log({"url": url, "outcome": f"no robots.txt ({exc}): everything allowed"})
                return None
            try:
                self._write(exchange, "robots")
                if exchange.location is not None:
                    try:  # (where it leads is not marked met: it may be a page to crawl)
                        url = _canonical(urljoin(url, exchange.location))[0]
                    except PreserveError:
                        return None
                    continue
                if exchange.status >= 500:
                    # The server cannot say what it allows: take it as "nothing" (RFC 9309).
                    return Protego.parse("User-agent: *\nDisallow: /\n")
                if exchange.status != 200:
                    return None
                if exchange.body is not None:
                    text = exchange.body[:ROBOTS_BYTES].decode("utf-8", errors="replace")
                else:  # a coding we cannot undo: the bytes as they came
                    exchange.response.seek(exchange.header_size)
                    text = exchange.response.read(ROBOTS_BYTES).decode("utf-8", errors="replace")
                return Protego.parse(text)
            finally:
                exchange.close()
        self.log({"url": url, "outcome": f"robots.txt: more than {MAX_ROBOTS_REDIRECTS} "
                                         "redirects: everything allowed"})
        return None


def _anywhere(url: str) -> bool:
    return True


def _retry_after_seconds(value: str) -> float:
    value = value.strip()
    if is_digits(value):
        return float(value)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return 0.0
    return max(0.0, moment.timestamp() - time.time())
