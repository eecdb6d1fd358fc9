"""Capture pages with their requisites into one open WARC file.

Each page is fetched (following redirects, each hop recorded as its own
exchange), described if it is HTML, and then every resource it needs to
render is fetched too: stylesheets, scripts, images, and what the stylesheets
import or reference. One fetch per URL per capture.

A page that cannot be fetched at all is bad input and stops the capture (the
caller discards the WARC). A requisite that cannot be fetched is noted in
``errors`` and the capture goes on. An HTTP error answer (404, 500) is not a
failure: archives keep error answers like any other response.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin

from preserve.capture.fetch import HTML_TYPES, Exchange, fetch, normalize_url
from preserve.capture.links import css_links, html_requisites
from preserve.capture.warc import WarcFile, warc_date
from preserve.config import CaptureSettings
from preserve.describe import EXTRACTOR, EXTRACTOR_VERSION, decode_html, describe
from preserve.errors import BadInput, PreserveError

MAX_REDIRECTS = 10
# Requisites of requisites: a page's stylesheet (1), what it imports (2), and what
# that references (3). Deeper chains, and more than MAX_REQUISITES fetches per
# capture, are cut off and reported, so a hostile page cannot fill the disk.
MAX_REQUISITE_DEPTH = 3
MAX_REQUISITES = 1000


@dataclass(frozen=True)
class Response:
    """One response that went into the WARC."""

    url: str
    status: int
    mime: str
    bytes: int
    role: str  # "page", "redirect" or "requisite"


@dataclass
class CrawlResult:
    """What a capture wrote, and what it could not fetch."""

    pages: int = 0
    responses: list[Response] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    progress: Progress | None = field(default=None, repr=False)

    def add(self, response: Response) -> None:
        self.responses.append(response)
        if self.progress is not None:
            self.progress(response)

    @property
    def bytes(self) -> int:
        return sum(response.bytes for response in self.responses)


Progress = Callable[[Response], None]


def capture_pages(seeds: Iterable[str], settings: CaptureSettings, warc: WarcFile,
                  requisites_too: bool = True, progress: Progress | None = None) -> CrawlResult:
    """Fetch each seed page (and, unless told otherwise, its requisites) into ``warc``.

    ``progress`` is called with every response as soon as it is in the WARC.
    """
    result = CrawlResult(progress=progress)
    seen: set[str] = set()
    requisites: deque[tuple[str, int]] = deque()
    for seed in seeds:
        page, response_id = _fetch_following(seed, settings, warc, result, seen, role="page")
        result.pages += 1
        try:
            found = _links(page, response_id, warc, result)
        finally:
            page.close()
        if requisites_too:
            requisites.extend((url, 1) for url in found)
    fetched = 0
    while requisites:
        url, depth = requisites.popleft()
        try:
            url = normalize_url(url)
        except PreserveError as exc:
            result.errors.append(str(exc))
            continue
        if url in seen:
            continue
        if fetched == MAX_REQUISITES:
            left = len({u for u, _ in requisites} | {url})
            result.errors.append(f"requisite limit of {MAX_REQUISITES} reached: "
                                 f"{left} more queued, not fetched")
            break
        fetched += 1
        try:
            resource, response_id = _fetch_following(url, settings, warc, result, seen,
                                                     role="requisite")
        except PreserveError as exc:
            result.errors.append(str(exc))
            continue
        try:
            found = _links(resource, response_id, warc, result)
        finally:
            resource.close()
        if depth < MAX_REQUISITE_DEPTH:
            requisites.extend((child, depth + 1) for child in found)
        else:
            result.errors.extend(
                f"{child}: not fetched, more than {MAX_REQUISITE_DEPTH} requisites deep"
                for child in found if child not in seen)
    return result


def description_document(exchange: Exchange, html: str) -> dict[str, Any]:
    """The JSON of a page's ``metadata`` record."""
    described = describe(html, exchange.url)
    return {
        "url": exchange.url,
        "capture_time": warc_date(exchange.date),
        **described.as_dict(),
        "text_sha256": described.text_sha256,
        "extractor": EXTRACTOR,
        "extractor_version": EXTRACTOR_VERSION,
    }


def _fetch_following(url: str, settings: CaptureSettings, warc: WarcFile, result: CrawlResult,
                     seen: set[str], role: str) -> tuple[Exchange, str]:
    """Fetch url and follow redirects, writing every hop.

    Returns the last exchange and its response record ID. A redirect to a URL
    this capture already holds is not followed again.
    """
    url = normalize_url(url)
    for _hop in range(MAX_REDIRECTS + 1):
        seen.add(url)
        exchange = fetch(url, settings)
        response_id = warc.write_exchange(exchange)
        target = exchange.location
        result.add(Response(url, exchange.status, exchange.mime, exchange.response_size,
                            "redirect" if target else role))
        if target is None:
            return exchange, response_id
        try:
            next_url = normalize_url(urljoin(url, target))
        except PreserveError:
            return exchange, response_id  # a redirect to ftp: or mailto: ends here, archived
        if next_url in seen:
            return exchange, response_id
        exchange.close()
        url = next_url
    raise BadInput(f"{url}: more than {MAX_REDIRECTS} redirects")


def _links(exchange: Exchange, response_id: str, warc: WarcFile,
           result: CrawlResult) -> list[str]:
    """Requisites of an HTML page (after writing its description) or of a stylesheet."""
    if exchange.body is None:
        return []
    if exchange.mime == "text/css":
        return css_links(exchange.body.decode("utf-8", errors="replace"), exchange.url)
    if exchange.mime not in HTML_TYPES:
        return []
    html = decode_html(exchange.body, exchange.header("Content-Type"))
    if 200 <= exchange.status < 300:
        try:
            document = description_document(exchange, html)
        except Exception as exc:  # an extractor failing on odd HTML must not lose the capture
            result.errors.append(f"{exchange.url}: not described ({type(exc).__name__}: {exc})")
        else:
            warc.write_metadata(exchange.url, exchange.date, response_id, document)
    return html_requisites(html, exchange.url)
