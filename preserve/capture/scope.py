"""Which URLs a crawl may visit: scope mode, depth, page budget, include/exclude patterns.

Modes, each relative to the seed a URL was found from:

- ``page``: the seed itself only (its requisites are still fetched);
- ``prefix``: URLs on the seed's host whose path starts with the seed's folder;
- ``host``: URLs on the seed's host (``www.`` is the same host);
- ``domain``: the seed's host and every host under it.

``exclude`` patterns (regular expressions searched in the URL) win over
everything; ``include`` patterns admit URLs outside the mode. Requisites of
in-scope pages are not subject to scope: a page is archived with what it needs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import SplitResult, urlsplit

from preserve.errors import BadInput

SCOPES = ("page", "prefix", "host", "domain")

# Each scheme's own port: a URL that names it is the same URL as one that does not.
DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class Scope:
    """A crawl's limits."""

    mode: str = "page"
    depth: int = 0
    max_pages: int | None = None
    include: tuple[re.Pattern[str], ...] = field(default=())
    exclude: tuple[re.Pattern[str], ...] = field(default=())

    @classmethod
    def build(cls, mode: str = "page", depth: int = 0, max_pages: int | None = None,
              include: tuple[str, ...] | list[str] = (),
              exclude: tuple[str, ...] | list[str] = ()) -> Scope:
        """A scope from plain values; bad modes and patterns are :class:`BadInput`."""
        if mode not in SCOPES:
            raise BadInput(f"scope {mode!r} is not one of {', '.join(SCOPES)}")
        if depth < 0 or (max_pages is not None and max_pages < 1):
            raise BadInput("depth must be 0 or more and max_pages 1 or more")
        return cls(mode, depth, max_pages, _compile(include, "include"),
                   _compile(exclude, "exclude"))

    def excluded(self, url: str) -> bool:
        """True when an exclude pattern matches: never fetched, requisite or not."""
        return any(pattern.search(url) for pattern in self.exclude)

    def allows(self, url: str, seed: str) -> bool:
        """May a page at url, found from seed, be crawled?"""
        if self.excluded(url):
            return False
        if any(pattern.search(url) for pattern in self.include):
            return True
        return _within(self.mode, url, seed)


def _within(mode: str, url: str, seed: str) -> bool:
    target, origin = urlsplit(url), urlsplit(seed)
    host, seed_host = _host(target.hostname), _host(origin.hostname)
    if mode == "domain":
        return host == seed_host or host.endswith("." + seed_host)
    same_host = host == seed_host and _port(target) == _port(origin)
    if mode == "host":
        return same_host
    if mode == "prefix":
        folder = origin.path[: origin.path.rfind("/") + 1] or "/"
        return same_host and (target.path or "/").startswith(folder)
    return same_host and (target.path or "/") == (origin.path or "/") and (
        target.query == origin.query)


def _port(parts: SplitResult) -> int | None:
    """The port a URL names, None for its scheme's own (http://h:80/ is http://h/, and
    both are on the host of https://h/)."""
    return None if parts.port in (None, DEFAULT_PORTS.get(parts.scheme)) else parts.port


def _host(name: str | None) -> str:
    return (name or "").lower().removeprefix("www.")


def _compile(patterns: tuple[str, ...] | list[str], what: str) -> tuple[re.Pattern[str], ...]:
    compiled = []
    for pattern in patterns:
        try:
            compiled.append(re.compile(pattern))
        except re.error as exc:
            raise BadInput(f"{what} pattern {pattern!r} is not a valid regular expression: "
                           f"{exc}") from exc
    return tuple(compiled)
