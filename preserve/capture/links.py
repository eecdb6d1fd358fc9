"""Find the embedded resources and the hyperlinks of HTML pages, and what stylesheets use.

Page requisites are what a browser loads to show a page: stylesheets, scripts,
images (``src`` and ``srcset``), media sources, icons, and everything a
stylesheet pulls in with ``url()`` or ``@import``, in ``<style>`` elements and
``style`` attributes too. Hyperlinks to other pages are not requisites. What
``<noscript>`` holds counts (a lazy-loading page's real image is often only
there), and so does a ``<template>``'s content, which scripts put on the page.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass
from typing import Any
from urllib.parse import urldefrag, urljoin, urlsplit

from selectolax.lexbor import LexborHTMLParser, SelectolaxError

# The elements that can name a link, chosen by lexbor's selector engine (in C, in
# document order), so Python sees only those: on the extraction benchmark's 109
# news pages, 227 of their 745 elements each. lexbor parses as the HTML standard
# says browsers do (what follows </html> included) in a third of libxml2's time;
# links of a page took 2.4 ms with lxml and a walk of every element, 1.6 ms so.
_LINKING = ("a[href], area[href], base[href], link[href], [src], object[data], [poster], "
            "[srcset], body[background], [style], style")
# lexbor checks the elements still open at every tag, as the HTML standard says, so a
# document nesting tens of thousands of elements (broken or hostile) takes seconds to
# minutes: 25,000 unclosed <ul><li> took 2.9 s, 50,000 took 15 s, 10,000 <div> 0.14 s.
# A page nesting more than this is archived but not read for links, and says so.
MAX_NESTING = 10_000
# Elements that never stay open (void), or that the next of their kind closes.
_NOT_NESTING = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta",
                "param", "source", "track", "wbr", "p", "li", "dt", "dd", "option", "optgroup",
                "tr", "td", "th", "thead", "tbody", "tfoot", "colgroup", "caption", "rb", "rt",
                "rp", "image", "frame", "keygen"}
_TAG = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)")

# rel values of <link> whose href a browser loads to render the page.
_REQUISITE_RELS = {"stylesheet", "icon", "shortcut", "apple-touch-icon", "preload",
                   "modulepreload", "manifest", "mask-icon"}
_SRC_TAGS = {"img", "script", "input", "source", "video", "audio", "track", "embed", "iframe",
             "frame"}
_CSS_URL = re.compile(r"""url\(\s*(?:"([^"]*)"|'([^']*)'|([^)'"\s]*))\s*\)""", re.IGNORECASE)
_CSS_IMPORT = re.compile(r"""@import\s+(?:"([^"]*)"|'([^']*)')""", re.IGNORECASE)
_CSS_COMMENT = re.compile(r"/\*.*?\*/", re.DOTALL)
# A srcset image candidate: separators, then the URL (a run of non-space); after
# it the descriptors, which end at a comma that is not inside parentheses.
_SRCSET_URL = re.compile(r"[\s,]*(\S*)")
_SRCSET_DESCRIPTORS = re.compile(r"(?:[^,(]++|\([^)]*+\)?)*+")
# A path from the root, or an absolute http(s) URL, with no dot segments,
# backslashes, parameters, fragment or empty query: urljoin would give the base's
# origin followed by the path, or the URL as it is.
_PLAIN_PATH = re.compile(r"/(?!/)[^\\#;\s]*")
_PLAIN_URL = re.compile(r"https?://[^/?#;\\\s@\[\]]+(?:[/?][^\\#;\s]*)?")


def css_links(css: str, base: str) -> list[str]:
    """Absolute URLs of everything a stylesheet imports or references."""
    return _absolute(_css_references(css), base)


@dataclass(frozen=True)
class PageLinks:
    """What an HTML page points at: what it needs to render, and where it leads.
    ``unread`` says why the page was not read for links, when it was not."""

    requisites: list[str]
    outlinks: list[str]
    unread: str | None = None


def html_links(html: str, base: str) -> PageLinks:
    """Absolute URLs of a page's requisites and of its hyperlinks (``a``, ``area``)."""
    if (depth := _nesting(html)) > MAX_NESTING:
        return PageLinks([], [], f"not read for links: it nests {depth} elements deep "
                                 f"(more than {MAX_NESTING})")
    parser = _RequisiteParser()
    try:
        parser.feed(html)
    except SelectolaxError as exc:
        return PageLinks([], [], f"not read for links: the HTML parser failed ({exc})")
    if parser.base_href:
        base = urljoin(base, parser.base_href)
    return PageLinks(_absolute(parser.found, base), _absolute(parser.outlinks, base))


def _nesting(html: str) -> int:
    """How many elements a document leaves open at most, about: tags opened and not
    closed, counted by name only where the plain count of tags is already high."""
    closing = html.count("</")
    if html.count("<") - 2 * closing <= MAX_NESTING:
        return 0
    opened: dict[str, int] = {}
    for match in _TAG.finditer(html):
        name = match.group(2).lower()
        if name not in _NOT_NESTING:
            opened[name] = opened.get(name, 0) + (-1 if match.group(1) else 1)
    return sum(count for count in opened.values() if count > 0)


def html_requisites(html: str, base: str) -> list[str]:
    """Absolute URLs of the page requisites of an HTML document, in document order."""
    return html_links(html, base).requisites


def _css_references(css: str) -> list[str]:
    """The URLs a piece of CSS names, as written, imports first."""
    css = _CSS_COMMENT.sub("", css)
    return [next(group for group in match.groups() if group is not None)
            for pattern in (_CSS_IMPORT, _CSS_URL) for match in pattern.finditer(css)]


def _srcset(value: str) -> list[str]:
    """URLs of a srcset, parsed as the HTML standard does: a URL may itself hold commas."""
    urls = []
    pos = 0
    while (candidate := _SRCSET_URL.match(value, pos)) and candidate.group(1):
        url, pos = candidate.group(1), candidate.end()
        if url.endswith(","):
            url = url.rstrip(",")
        else:  # skip the descriptors, up to a comma outside parentheses
            descriptors = _SRCSET_DESCRIPTORS.match(value, pos)
            pos = descriptors.end() if descriptors else len(value)
        if url:
            urls.append(url)
    return urls


def _absolute(urls: list[str], base: str) -> list[str]:
    seen: dict[str, None] = {}
    parts = urlsplit(base)
    origin = f"{parts.scheme}://{parts.netloc}"
    for raw in urls:
        raw = raw.strip()
        if not raw or raw.startswith(("data:", "javascript:", "about:", "#", "blob:")):
            continue
        plain = "/." not in raw and not raw.endswith("?")
        if plain and _PLAIN_PATH.fullmatch(raw):
            url = origin + raw  # what urljoin gives, at a tenth of its cost
        elif plain and _PLAIN_URL.fullmatch(raw):
            url = raw
        else:
            try:
                url = urldefrag(urljoin(base, raw)).url
            except ValueError:  # such as an unclosed [ in an IPv6 host: not a link to follow
                continue
        if url.startswith(("http://", "https://")):
            seen.setdefault(url, None)
    return list(seen)


class _RequisiteParser:
    """Collects the links of a parsed page (parsed as forgiving as a browser is)."""

    def __init__(self) -> None:
        self.found: list[str] = []
        self.outlinks: list[str] = []
        self.base_href: str | None = None

    def feed(self, html: str) -> None:
        if not html.strip():
            return
        tree = LexborHTMLParser(html)
        for element in tree.css(_LINKING):
            self._element(element.tag or "", element)
        # A <template>'s content is outside the document tree. Scripts make elements
        # of it, so its links are followed too, after the document's own; a <base>
        # there is not the document's. Templates inside templates, however deep,
        # are walked one after another, not by recursion.
        fragments = deque(tree.template_fragments())
        while fragments:
            fragment = fragments.popleft()
            for element in fragment.css(_LINKING):
                if element.tag != "base":
                    self._element(element.tag or "", element)
            fragments.extend(fragment.template_fragments())

    def _element(self, tag: str, element: Any) -> None:
        values = element.attributes
        if tag in ("a", "area") and values.get("href"):
            self.outlinks.append(values["href"])
        elif tag == "base" and values.get("href") and self.base_href is None:
            self.base_href = values["href"]
        elif tag == "link":
            rels = set((values.get("rel") or "").lower().split())
            if rels & _REQUISITE_RELS and values.get("href"):
                self.found.append(values["href"])
        elif tag in _SRC_TAGS:
            is_image_button = tag != "input" or (values.get("type") or "").lower() == "image"
            if is_image_button and values.get("src"):
                self.found.append(values["src"])
        elif tag == "object" and values.get("data"):
            self.found.append(values["data"])
        elif tag == "style" and (css := element.text(deep=True)):
            # Inline CSS is relative to the page: resolved later against the same base.
            self.found.extend(_css_references(css))
        if tag == "video" and values.get("poster"):
            self.found.append(values["poster"])
        if values.get("srcset"):
            self.found.extend(_srcset(values["srcset"]))
        if tag == "body" and values.get("background"):
            self.found.append(values["background"])
        if values.get("style"):
            self.found.extend(_css_references(values["style"]))
