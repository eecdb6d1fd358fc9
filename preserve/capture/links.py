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
from dataclasses import dataclass
from typing import Any
from urllib.parse import urldefrag, urljoin, urlsplit

from selectolax.lexbor import LexborHTMLParser

# The elements that can name a link, chosen by lexbor's selector engine (in C, in
# document order), so Python sees only those: on the extraction benchmark's 109
# news pages, 227 of their 745 elements each. lexbor parses as the HTML standard
# says browsers do (what follows </html> included) in a third of libxml2's time;
# links of a page took 2.4 ms with lxml and a walk of every element, 1.6 ms so.
_LINKING = ("a[href], area[href], base[href], link[href], [src], object[data], [poster], "
            "[srcset], body[background], [style], style")

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
    """What an HTML page points at: what it needs to render, and where it leads."""

    requisites: list[str]
    outlinks: list[str]


def html_links(html: str, base: str) -> PageLinks:
    """Absolute URLs of a page's requisites and of its hyperlinks (``a``, ``area``)."""
    parser = _RequisiteParser()
    parser.feed(html)
    if parser.base_href:
        base = urljoin(base, parser.base_href)
    return PageLinks(_absolute(parser.found, base), _absolute(parser.outlinks, base))


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
        try:
            tree = LexborHTMLParser(html)
        except (ValueError, RuntimeError):  # text that is not Unicode, a parser that gave up
            return
        self._walk(tree)

    def _walk(self, tree: Any) -> None:
        for element in tree.css(_LINKING):
            self._element(element.tag, element)
        # A <template>'s content is outside the document tree. Scripts make elements
        # of it, so its links are followed too, after the document's own.
        for fragment in tree.template_fragments():
            self._walk(fragment)

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
