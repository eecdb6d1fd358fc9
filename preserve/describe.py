"""HTML -> main text, title, publisher, author, dates, language, canonical URL and a
text simhash.

Main text and most metadata come from trafilatura, a maintained extraction
library; this module decides the title (without the site's name), the publisher
(JSON-LD ``publisher``, then ``og:site_name``, then other page metadata, then the
host name), the publication day (``_published``: the page's metadata read in its own
time zone, then its labelled or marked-up dates, then trafilatura's), the modified
date and canonical URL (page metadata), and the language
(the document's declared language, else detected from the text by py3langid),
which trafilatura leaves open.
"""

from __future__ import annotations

import copy
import itertools
import json
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from functools import cached_property
from importlib.metadata import version
from typing import Any
from urllib.parse import urljoin, urlsplit
from zoneinfo import ZoneInfo

from lxml import html as lxml_html

from preserve.fingerprint import sha256_text, simhash

EXTRACTOR = "trafilatura"
# Bumped whenever the rules in this module change what a page's description says, so
# that ``preserve redescribe`` knows which descriptions an older extractor made.
RULES = 3
EXTRACTOR_VERSION = f"{version('trafilatura')}+preserve.{RULES}"
# Page metadata giving the date a page was last modified, best first.
_MODIFIED_META = ("article:modified_time", "og:updated_time", "dcterms.modified",
                  "dc.date.modified", "last-modified", "date.modified")
# Words of text below which a detected language is a guess not worth recording, and
# the characters the detection reads (more tell no more, and cost time).
_DETECT_WORDS = 12
DETECT_CHARS = 3000

# Page metadata naming a publisher, after JSON-LD and og:site_name, best first.
_PUBLISHER_META = ("og:site_name", "publisher", "dc.publisher", "dcterms.publisher",
                   "citation_publisher", "application-name")
_UTF8 = lxml_html.HTMLParser(encoding="utf-8")
# What sits between a story's title and the site's name in a <title>.
_TITLE_PARTS = re.compile(r"\s+[|\-–—›»·:]{1,2}\s+")
# A timestamp's offset from UTC.
_OFFSET = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?([+-])(\d{2}):?(\d{2})$",
                     re.ASCII)
_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?([\w-]+)""", re.IGNORECASE)


@dataclass(frozen=True)
class Description:
    """What a page says about itself, and its main text."""

    text: str
    title: str | None
    publisher: str | None
    author: str | None
    published: str | None
    language: str | None
    modified: str | None = None
    canonical_url: str | None = None
    language_detected: bool = False  # True: the page does not declare it; it was detected

    @property
    def text_sha256(self) -> str:
        """SHA-256 of the main text's UTF-8 bytes."""
        return sha256_text(self.text)

    @property
    def text_simhash(self) -> str:
        """The main text's 64-bit simhash, in hex: near-identical texts have near ones."""
        return simhash(self.text)

    def as_dict(self) -> dict[str, Any]:
        """The description as the JSON ``preserve describe`` prints (and a metadata
        record holds), with the text's SHA-256 and simhash."""
        return {**asdict(self), "text_sha256": self.text_sha256,
                "text_simhash": self.text_simhash}


# Labels the WHATWG Encoding Standard decodes as windows-1252.
# (Not its ASCII labels: a page labelled ASCII that is not is most often UTF-8, which
# the next candidates try.)
_LATIN_LABELS = frozenset({"iso-8859-1", "iso8859-1", "iso_8859-1", "iso88591", "latin1",
                           "latin-1", "l1", "cp819", "ibm819", "windows-1252", "cp1252",
                           "x-cp1252"})
_WINDOWS_1252 = "cp1252"


def decode_html(data: bytes, content_type: str | None = None) -> str:
    """Decode HTML bytes: the HTTP charset, else a ``<meta charset>``, else UTF-8, else
    windows-1252 (what browsers fall back to for Western pages).

    As in browsers (the WHATWG Encoding Standard), the Latin-1 labels mean
    windows-1252: pages labelled ISO-8859-1 hold its quotes and dashes in 0x80-0x9F.
    """
    candidates = []
    if content_type and "charset=" in content_type.lower():
        candidates.append(content_type.lower().split("charset=")[1].split(";")[0].strip(" \"'"))
    if match := _CHARSET.search(data[:4096]):
        candidates.append(match.group(1).decode("ascii").lower())
    candidates.append("utf-8")
    for charset in candidates:
        try:
            return data.decode(_WINDOWS_1252 if charset in _LATIN_LABELS else charset)
        except (LookupError, UnicodeDecodeError):
            continue
    try:
        return data.decode(_WINDOWS_1252)
    except UnicodeDecodeError:  # one of the five bytes it leaves undefined
        return data.decode("latin-1")


def describe(html: str, url: str | None = None) -> Description:
    """Extract the main text and metadata of one HTML document."""
    import trafilatura  # here, not above: a crawl that defers description never needs it

    document = trafilatura.bare_extraction(
        html, url=url, with_metadata=True, include_comments=False, include_tables=True,
        favor_precision=True,
    )
    found: dict[str, Any] = {} if document is None else (
        document if isinstance(document, dict) else document.as_dict())
    page = _Page(_parse(html), url)
    text = (found.get("text") or "").strip()
    language = _language(page)
    detected = language is None and (language := _detected_language(text)) is not None
    return Description(
        text=text,
        title=_title(found.get("title"), page),
        publisher=_publisher(page),
        author=_author(found.get("author"), page),
        published=_published(found.get("date"), page),
        language=language,
        modified=_modified(page),
        canonical_url=page.canonical or _clean(found.get("url")),
        language_detected=detected,
    )


class _Page:
    """A parsed page (its tree None where it does not parse) and what several rules read
    from it, each read once: its meta tags, its JSON-LD objects, the site's names."""

    def __init__(self, tree: Any, url: str | None) -> None:
        self.tree = tree
        self.url = url

    @cached_property
    def metas(self) -> dict[str, str]:
        """``<meta>`` content by lower-case property or name (the first of each)."""
        values: dict[str, str] = {}
        for meta in self.tree.xpath("//meta[@content]") if self.tree is not None else []:
            key = (meta.get("property") or meta.get("name") or "").strip().lower()
            content = _clean(meta.get("content"))
            if key and content:
                values.setdefault(key, content)
        return values

    @cached_property
    def json_ld(self) -> list[dict[str, Any]]:
        """Every object of the page's JSON-LD scripts (what does not parse left out)."""
        nodes: list[dict[str, Any]] = []
        scripts = (self.tree.xpath('//script[@type="application/ld+json"]')
                   if self.tree is not None else [])
        for script in scripts:
            try:
                nodes += _walk(json.loads(script.text_content()))
            except ValueError:
                continue
        return nodes

    @cached_property
    def canonical(self) -> str | None:
        """Its canonical URL (see :func:`_canonical`), asked by several rules."""
        return _canonical(self)

    @cached_property
    def local_offset(self) -> timedelta | None:
        """The offset from UTC of the first time the page gives with an offset other
        than UTC's (in its meta tags, its JSON-LD, its ``<time>`` elements): the time
        zone the page keeps."""
        values = list(self.metas.values())
        values += [value for node in self.json_ld for value in node.values()
                   if isinstance(value, str)]
        values += [element.get("datetime") or "" for element in
                   (self.tree.iter("time") if self.tree is not None else [])]
        for value in values:
            match = _OFFSET.match(value.strip())
            # Offsets run from -12:00 to +14:00; "+99:00" is not one.
            if match and match.group(2, 3) != ("00", "00") and int(match.group(2)) <= 14 \
                    and int(match.group(3)) < 60:
                sign = 1 if match.group(1) == "+" else -1
                return sign * timedelta(hours=int(match.group(2)), minutes=int(match.group(3)))
        return None

    @cached_property
    def publishers(self) -> list[str]:
        """The names JSON-LD gives its ``publisher``s."""
        names = []
        for node in self.json_ld:
            publisher = node.get("publisher")
            for candidate in publisher if isinstance(publisher, list) else [publisher]:
                name = candidate.get("name") if isinstance(candidate, dict) else candidate
                if isinstance(name, str) and (cleaned := _clean(name)):
                    names.append(cleaned)
        return names

    @cached_property
    def sites(self) -> set[str]:
        """The site's names, as letters: its publisher metadata, its host and each name
        in the host."""
        sites = {_letters(self.metas[key]) for key in _PUBLISHER_META if self.metas.get(key)}
        sites |= {_letters(name) for name in self.publishers}
        if self.url:
            host = (urlsplit(self.url).hostname or "").removeprefix("www.")
            sites |= {_letters(host), _letters(host.rsplit(".", 1)[0])}
            # and each name in it: "literaturgefluester" of literaturgefluester.wordpress.com
            sites |= {_letters(label) for label in host.split(".")[:-1] if len(label) >= 4}
        return sites - {""}


def _parse(html: str) -> Any:
    try:
        # As UTF-8 bytes, said to be UTF-8: lxml takes no str with an encoding
        # declaration, and bytes without one it reads as Latin-1.
        return lxml_html.document_fromstring(html.encode("utf-8"), parser=_UTF8)
    except (ValueError, lxml_html.etree.ParserError):
        return None


def _clean(value: Any) -> str | None:
    if value is None:
        return None
    text = " ".join(str(value).split())
    return text or None


def _title(found: Any, page: _Page) -> str | None:
    """The page's own title.

    The longest of its headings (without kicker, topic label or date) that the
    ``<title>`` or ``og:title`` holds, as these add the site's name, a section, a
    slogan; else trafilatura's title without the parts that name the site (``Story |
    Site``, ``Site - Story``), or the ``<title>``'s where trafilatura's is only the
    site's name or a section's ("Allgemein"); and a heading that says more than what
    that kept ("Cake: simply delicious!" for "Cake").
    """
    title = _clean(found)
    if page.tree is None:
        return title
    url, sites = page.url, page.sites
    element = _clean(page.tree.findtext(".//title"))
    whole = [_comparable(text) for text in (element, page.metas.get("og:title")) if text]
    h1s = [text for text in (_heading(h) for h in page.tree.xpath("//h1")[:5]) if text]
    held = [text for text in h1s if len(text) >= 8 and any(_comparable(text) in t for t in whole)
            and _without_site(text, sites, url) == text]
    if held:
        return max(held, key=len)
    if title is None:
        return element
    stripped = _without_site(title, sites, url)
    # A section's name: short, no heading, not in the <title>.
    section = (len(title.split()) <= 2 and element is not None and title not in h1s
               and _comparable(title) not in _comparable(element))
    if element and (stripped is None or section):
        return _without_site(element, sites, url) or element
    result = stripped or title
    longer = [text for text in h1s if text != result and _says_more(text, result)]
    return max(longer, key=len) if longer else result


def _says_more(heading: str, title: str) -> bool:
    """Does the heading begin with the title and go on (not with a separator and a site's
    name), or hold the title's words in their order with a few small ones between?"""
    plain, short = _comparable(heading), _comparable(title)
    if plain.startswith(short):
        return not _TITLE_PARTS.match(plain[len(short):])
    words, more = short.split(), plain.split()
    if not words or len(more) > len(words) + 3 or len(more) == len(words):
        return False
    found = iter(more)
    return all(word in found for word in words) and all(
        len(word) <= 4 for word in more if word not in words)


def _heading(element: Any) -> str | None:
    """A heading's text without its kicker (``<span class="kicker">Klimaschutz</span>``,
    a topic label, an overline) and text hidden from sight, soft hyphens dropped."""
    def marked(root: Any) -> list[Any]:
        return [child for child in root.iterdescendants()
                if isinstance(child.tag, str) and (child.tag in ("time", "small") or
                                                   _KICKER.search(child.get("class") or ""))]

    if marked(element):
        element = copy.deepcopy(element)
        for child in marked(element):
            child.drop_tree()
    return _clean(element.text_content().replace("\xad", "").strip(" \t\r\n:|-–—·"))


# What a heading holds besides the title: a kicker, a topic, a date, hidden text (by
# class; and <time>, <small> elements).
_KICKER = re.compile(r"kicker|topic|overline|super-?title|dachzeile|roofline|topline|"
                     r"subtitle|(?<![a-z])date|visually-hidden|sr-only|screen-reader",
                     re.IGNORECASE)


def _comparable(text: str) -> str:
    """A title as compared with headings: dashes and quotes alike, spaces single."""
    return " ".join(text.translate(_PLAIN_PUNCTUATION).split())


_PLAIN_PUNCTUATION = str.maketrans({"–": "-", "—": "-", "„": '"', "“": '"', "”": '"',
                                    "‘": "'", "’": "'", "«": '"', "»": '"'})


def _without_site(title: str, sites: set[str], url: str | None) -> str | None:
    """A title without its parts that name the site (as it is where none does; None where
    every part does)."""
    # Each part with where it lies, so that what is kept keeps its own separators.
    spans, at = [], 0
    for separator in [*_TITLE_PARTS.finditer(title), None]:
        end = separator.start() if separator else len(title)
        if title[at:end].strip():
            spans.append((at, end))
        at = separator.end() if separator else at
    parts = [title[start:end] for start, end in spans]
    host = (urlsplit(url).hostname or "").removeprefix("www.") if url else ""
    label = _letters(host.rsplit(".", 1)[0])

    def names_the_site(part: str) -> bool:
        letters = _letters(part)
        if not letters:
            return False
        if letters in sites or letters == label:
            return True
        # "Solarserver" on www.solarserver.de, "heise online" on heise.de; never by a
        # few letters that any word may hold.
        return len(letters) >= 4 and len(label) >= 4 and (
            letters in _letters(host) or label in letters)

    if len(parts) == 1:  # a title of one part names the site only when it is its name
        return None if _letters(title) in sites else title
    kept = [number for number, part in enumerate(parts) if not names_the_site(part)]
    if not kept:
        return None
    if kept == list(range(kept[0], kept[-1] + 1)):  # the site named at the start or end
        return title[spans[kept[0]][0]:spans[kept[-1]][1]].strip()
    return " - ".join(parts[number] for number in kept)


def _letters(text: str) -> str:
    """Letters and digits only, lower case: how a site's name is compared."""
    return re.sub(r"\W|_", "", text.lower())


def _publisher(page: _Page) -> str | None:
    if page.publishers:
        return page.publishers[0]
    for key in _PUBLISHER_META:
        if value := page.metas.get(key):
            return value
    if page.url:
        host = urlsplit(page.url).hostname or ""
        return host.removeprefix("www.") or None
    return None


def _walk(data: Any) -> Iterator[dict[str, Any]]:
    if isinstance(data, dict):
        yield data
        for value in data.values():
            if isinstance(value, dict | list):
                yield from _walk(value)
    elif isinstance(data, list):
        for item in data:
            yield from _walk(item)


def _language(page: _Page) -> str | None:
    tree = page.tree
    if tree is None:
        return None
    declared = tree.get("lang") or tree.get("{http://www.w3.org/XML/1998/namespace}lang")
    if not declared:
        for meta in tree.xpath("//meta[@http-equiv][@content]"):
            if meta.get("http-equiv", "").lower() == "content-language":
                declared = meta.get("content").split(",")[0]
                break
    if not declared:
        declared = page.metas.get("og:locale", "").replace("_", "-")
    return (declared or "").strip() or None


def _detected_language(text: str) -> str | None:
    """The language of a text (ISO 639-1), when it has words enough to tell."""
    if len(text.split()) < _DETECT_WORDS:
        return None
    import py3langid  # here, not above: its model takes a moment to load

    language, _score = py3langid.classify(text[:DETECT_CHARS])
    return str(language) or None


def _modified(page: _Page) -> str | None:
    """When the page says it was last modified: JSON-LD ``dateModified``, then meta tags."""
    for node in page.json_ld:
        if isinstance(value := node.get("dateModified"), str) and (found := _clean(value)):
            return found
    return next((page.metas[key] for key in _MODIFIED_META if page.metas.get(key)), None)


def _canonical(page: _Page) -> str | None:
    """The page's canonical URL (``<link rel=canonical>``, then ``og:url``), absolute."""
    if page.tree is None:
        return None
    links = [link.get("href") for link in page.tree.xpath("//link[@href]")
             if "canonical" in (link.get("rel") or "").lower().split()]
    found = _clean(links[0]) if links else page.metas.get("og:url")
    if not found:
        return None
    try:
        return urljoin(page.url, found) if page.url else found
    except ValueError:  # such as "http://[oops/": not a URL
        return None


# Page metadata naming the author, after JSON-LD, best first.
_AUTHOR_META = ("author", "article:author", "dc.creator", "dcterms.creator", "parsely-author",
                "sailthru.author", "citation_author", "byl")
_NOT_NAMES = {"noauthor", "admin", "administrator", "anonymous", "unknown", "name",
              "human", "posted", "postedon", "nameerforderlich", "von", "by", "datum", "date",
              "veröffentlichtam", "publishedon", "text", "wordpressadmin", "veröffentlicht",
              "autor", "author"}


def _author(found: Any, page: _Page) -> str | None:
    """The author(s), ``; ``-separated: trafilatura's, spelled as the page's bylines or
    metadata spell them (trafilatura respells names), else the page's metadata (it
    drops one-word names), else its first byline; a byline's name where trafilatura
    found only the site's. A site named beside a person is left out (a site that
    names itself alone is the author); a placeholder ("No Author") always is."""
    stated = [name for name in map(_name, _page_authors(page)) if name]
    bylines = _bylines(page.tree)
    spelled = {_letters(part): part.strip() for name in [*bylines, *stated]
               for part in [name, *re.split(r"[,;]", name)] if part.strip()}
    names = [spelled.get(_letters(part), part) for part in (
        _name(piece) for piece in str(found or "").split(";")) if part]
    names = names or stated or bylines[:1]
    sites = page.sites
    if names and bylines and all(_letters(name) in sites for name in names):
        names = [byline for byline in bylines if _letters(byline) not in sites][:1] or names
    kept = [name.strip(" -–|,") for name in dict.fromkeys(names) if _a_name(name)]
    people = [name for name in kept if _letters(name) not in sites]
    return "; ".join(people or kept) or None  # the site beside a person is not an author


def _a_name(text: str) -> bool:
    """Not a placeholder ("No Author", "admin") nor a comment's signature ("Ann says")."""
    return _letters(text) not in _NOT_NAMES and not text.lower().rstrip(" :").endswith(
        (" says", " sagt", " schreibt", " wrote"))


def _name(text: str) -> str | None:
    """A name as a byline gives it, without the words around it: "Von X am 3. Mai",
    "Autor: X", "Zeige alle Beiträge von X", "X Alle Artikel"; None for a placeholder."""
    text = _BYLINE_LABEL.sub("", _clean(text) or "")
    if (match := _BYLINE_MARK.match(text)) and set(match.group(1).lower().split()) <= _LEAD_INS:
        text = match.group(2)  # not "Christoph von Ritter"
    text = _BYLINE_AFTER.sub("", text).strip(" ,;:-–—|'\"")
    words = text.split()
    if len(words) % 2 == 0 and words[:len(words) // 2] == words[len(words) // 2:]:
        text = " ".join(words[:len(words) // 2])  # "jesusfreak jesusfreak"
    return text if text and _a_name(text) else None


# A byline's words before and after the name: "Von X am 8.12.2022", "Autor: X".
_BYLINE_LABEL = re.compile(r"^(?:autor(?:/in)?|auteur|author(?:\(s\))?|interview|"
                           r"text(?: & fotos)?|redaktion|written by|posted by)\s*:?\s+",
                           re.IGNORECASE)
_BYLINE_MARK = re.compile(r"^(.*?)\s*\b(?:von|vom|by|par)\s+(\S.*)$", re.IGNORECASE)
# Words a byline puts before "von", "by": "Zeige alle Beiträge von", "Ein Beitrag von".
_LEAD_INS = {"zeige", "alle", "beiträge", "beitrag", "ein", "eine", "blog", "artikel", "text",
             "zum", "profil", "posted", "veröffentlicht", "geschrieben", "written",
             "published", "disko", "foto", "fotos", "story", "interview", "pressemitteilung",
             "verfasst", "erstellt", "publié", "article"}
_BYLINE_AFTER = re.compile(r"\s+(?:(?:am|on|stand:?|\||-|–|—|alle artikel|kontakt)(?:\s.*)?|"
                           r"(?:\S+\s+)?(?:staff|staff writer|contributor|correspondent))$",
                           re.IGNORECASE)


def _bylines(tree: Any) -> list[str]:
    """Names in the page's bylines (``class="author"``, ``byline``, ``rel="author"``,
    ``itemprop="author"``), without "By", "Von", "Autor:" and the date after them;
    what does not look like a name (digits, a comment's "says:", many words) left out."""
    if tree is None:
        return []
    found = []
    marked = (element for element in tree.xpath("//*[@class or @rel or @itemprop]")
              if any(name in (element.get("class") or "").lower() for name in _BYLINE_CLASSES)
              or element.get("rel") == "author" or element.get("itemprop") == "author")
    for element in itertools.islice(marked, 8):
        text = _name(element.text_content())
        if text and len(text) <= 60 and len(text.split()) <= 5 and not _DIGIT.search(text):
            found.append(text)
    return list(dict.fromkeys(found))


_BYLINE_CLASSES = ("author", "byline", "auteur", "autor", "contributor", "writer",
                   "verfasser")
_DIGIT = re.compile(r"\d")


def _page_authors(page: _Page) -> list[str]:
    for node in page.json_ld:
        if found := _names(node.get("author")):
            return found
    for key in _AUTHOR_META:
        value = page.metas.get(key)
        if value and not value.startswith(("http://", "https://", "/")):
            return [value]
    return []


def _names(author: Any) -> list[str]:
    """Names from a JSON-LD ``author``: a string, a Person, or a list of them."""
    items = author if isinstance(author, list) else [author]
    names = []
    for item in items:
        name = item.get("name") if isinstance(item, dict) else item
        if isinstance(name, str) and (cleaned := _clean(name)) and not cleaned.startswith(
                ("http://", "https://")):
            names.append(cleaned)
    return names


# Page metadata stating when the page was published, after JSON-LD, best first.
_PUBLISHED_META = ("article:published_time", "og:article:published_time")
# A timestamp with its local time zone: its day is the day where it was published.
_LOCAL_TIME = re.compile(r"(\d{4}-\d{2}-\d{2})[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?"
                         r"(?!\+00:?00)[+-]\d{2}:?\d{2}$", re.ASCII)
_ISO_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}", re.ASCII)
# A time without a zone, which HTML's <time> takes for the page's local time.
_ZONELESS = re.compile(r"(\d{4}-\d{2}-\d{2})[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?$", re.ASCII)
_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)
# A UTC hour whose day is the same day from UTC-8 (the Americas' west coast) to UTC+10
# (Australia's east): from 08:00 to 13:59.
_SAME_DAY_HOURS = range(8, 14)
# The time zone of most of a country's sites, by its country-code domain, for a page
# that gives its times in UTC only. Domains sold to all comers (.co, .io, .me, .tv...)
# and countries of several zones whose sites do not mostly share one are left out.
_COUNTRY_ZONES = {
    "de": "Europe/Berlin", "at": "Europe/Vienna", "ch": "Europe/Zurich",
    "li": "Europe/Vaduz", "fr": "Europe/Paris", "it": "Europe/Rome", "es": "Europe/Madrid",
    "nl": "Europe/Amsterdam", "be": "Europe/Brussels", "lu": "Europe/Luxembourg",
    "pl": "Europe/Warsaw", "cz": "Europe/Prague", "sk": "Europe/Bratislava",
    "hu": "Europe/Budapest", "si": "Europe/Ljubljana", "hr": "Europe/Zagreb",
    "dk": "Europe/Copenhagen", "no": "Europe/Oslo", "se": "Europe/Stockholm",
    "uk": "Europe/London", "ie": "Europe/Dublin", "pt": "Europe/Lisbon",
    "fi": "Europe/Helsinki", "ee": "Europe/Tallinn", "lv": "Europe/Riga",
    "lt": "Europe/Vilnius", "gr": "Europe/Athens", "ro": "Europe/Bucharest",
    "bg": "Europe/Sofia", "tr": "Europe/Istanbul", "il": "Asia/Jerusalem",
    "jp": "Asia/Tokyo", "kr": "Asia/Seoul", "cn": "Asia/Shanghai", "in": "Asia/Kolkata",
    "nz": "Pacific/Auckland", "za": "Africa/Johannesburg", "br": "America/Sao_Paulo",
    "ar": "America/Argentina/Buenos_Aires", "bo": "America/La_Paz", "cl": "America/Santiago",
    "pe": "America/Lima", "ve": "America/Caracas", "mx": "America/Mexico_City",
    "uy": "America/Montevideo", "py": "America/Asuncion", "ec": "America/Guayaquil",
}
# A date as an address gives it: /2017/7/12/.
_URL_DAY = re.compile(r"/((?:19|20)\d{2})/(\d{1,2})/(\d{1,2})(?:/|$)", re.ASCII)
# Days after an address's date from which a stated date is taken for a later stamp.
_MOVED_DAYS = 30
# A class naming the publication date, and the elements a page's own date is not in.
_PUBLISH_CLASS = re.compile(r"pub(?:lish(?:ed)?)?[-_]?date|date[-_]?pub", re.IGNORECASE)
_ELSEWHERE = {"li", "aside", "nav", "footer"}
_SHORT = 100  # characters: a date with its byline, not a paragraph
# Dates as people write them, to find in a line of text.
_WRITTEN_DATE = re.compile(r"\d{1,2}\.\d{1,2}\.\d{4}|\d{4}-\d{2}-\d{2}"
                           r"|\d{1,2}\.?\s+\w+\.?\s+\d{4}|\w+\s+\d{1,2},\s+\d{4}")
# A day and month written with spaces ("4. 2. 2022"), which htmldate does not read.
_SPACED_DAY = re.compile(r"\b(\d{1,2})\.\s+(\d{1,2})\.\s+(\d{4})\b")
# A date written after words saying it is when the page was published.
_PUBLISHED_LABEL = re.compile(
    r"\b(?:erschienen|veröffentlicht|publiziert|erstellt|published|posted|created|publié"
    r"|publicado|pubblicato|gepubliceerd|publicerad|publiceret|publisert|julkaistu"
    r"|opublikowano|datum|date)(?:\s+(?:am|on|le|el|il|em|op|den|dne))?\s*:?\s*"
    r"(\d{1,2}\.\s?\d{1,2}\.\s?\d{4}|\d{4}-\d{2}-\d{2}|\d{1,2}\.?\s+\w+\.?\s+\d{4}"
    r"|\w+\s+\d{1,2},\s+\d{4})", re.IGNORECASE)
# Labels that name no event: "date" and "datum" say a publication's only when the word
# before them does not make them another's, a change's ("Last modified date:"), a
# release's, an event's, a deadline's... (a date in a short element whose class names
# the publication date is refused after such a word too: "Updated 3.4.2021").
_GENERIC_LABELS = {"date", "datum"}
_NOT_PUBLISHED = re.compile(
    r"\b(?:modifi|updat|chang|geändert|änderung|aktualisi|revis|release|due|start|end|event"
    r"|deadline|expir|birth|geburt|ablauf|termin|copyright)\w*[\s:]*$", re.IGNORECASE)
# A day written in numbers, day first ("29.04.2020"), read here: htmldate reads a part
# of an impossible one ("31.2.2021" as 2021-02-01).
_NUMERIC_DAY = re.compile(r"\b(\d{1,2})\.(\d{1,2})\.(\d{4})\b", re.ASCII)
# Candidates _classed_day looks at, and the characters of an element it reads, at most.
_CLASSED_CANDIDATES = 20
_READ_CHARS = 4096
# The earliest publication day believed: the web's first news sites. Before it, and
# after today, a date is a placeholder ("1970-01-01") or a mistake.
_EARLIEST = datetime(1995, 1, 1)


def _published(found: Any, page: _Page) -> str | None:
    """The publication day as the page states it, on the day where it was published.

    First its structured metadata: JSON-LD ``datePublished`` (``dateCreated`` where no
    object has one), then ``article:published_time``. A timestamp with its own offset
    gives its day as written. One in UTC is read in the page's time zone, which is the
    offset the page gives its other times, else its country's (by its domain); where
    neither is known, its day is taken only when it is the same day across the
    Americas, Europe, Africa and most of Asia and Australia. A page without such
    metadata: a date labelled as the publication's ("Published on", "Erschienen am"),
    then the first ``<time>`` of its article, then an element whose class names the
    publication date. Else, and where the page's metadata disagrees with itself,
    trafilatura's (htmldate's), which weighs the whole page. Whichever it is, a day
    its address gives (``/2017/7/12/``) a month or more earlier stands instead."""
    stated = [node["datePublished"] for node in page.json_ld
              if isinstance(node.get("datePublished"), str)]
    if not stated:
        stated = [node["dateCreated"] for node in page.json_ld
                  if isinstance(node.get("dateCreated"), str)]
    stated += [page.metas[key] for key in _PUBLISHED_META if page.metas.get(key)]
    days = [_stated_day(value, page) for value in stated]
    if len(known := set(days) - {None}) == 1:
        day = known.pop()
    elif not stated:
        day = _labelled_day(page) or _article_time_day(page) or _classed_day(page)
    else:
        day = None
    return _addressed_first(day or _clean(found), page)


def _addressed_first(day: str | None, page: _Page) -> str | None:
    """The day the page's address gives it (``/2017/7/12/``) where ``day`` is a month or
    more later: an address is given when a page first appears, and a later stamp is a
    move to a new system, which stamps every page it takes in."""
    try:
        match = _URL_DAY.search(urlsplit(page.url or page.canonical or "").path)
    except ValueError:
        return day
    if match is None or day is None:
        return day
    addressed = _believable("{}-{:02d}-{:02d}".format(*map(int, match.groups())))
    stated = _believable(day[:10])
    if addressed is not None and stated is not None and (
            datetime.fromisoformat(stated) - datetime.fromisoformat(addressed)
    ).days >= _MOVED_DAYS:
        return addressed
    return day


def _stated_day(value: str, page: _Page) -> str | None:
    """The day of a stated date or timestamp where the page was published, when that can
    be known and is believable."""
    value = value.strip()
    if match := _LOCAL_TIME.match(value):
        return _believable(match.group(1))
    if _ISO_DAY.fullmatch(value):  # a day, without a time: as it is written
        return _believable(value)
    return _believable(_local_day(value, page))


def _believable(day: str | None) -> str | None:
    """A day (YYYY-MM-DD) that is one, from ``_EARLIEST`` to tomorrow; else None."""
    if day is None or not _ISO_DAY.fullmatch(day):
        return None
    try:
        when = datetime.fromisoformat(day)
    except ValueError:  # "2020-13-45", "0000-00-00"
        return None
    return day if _EARLIEST <= when <= datetime.now() + timedelta(days=1) else None


def _local_day(value: str, page: _Page) -> str | None:
    """The day of a timestamp with a time zone where the page was published, when that
    can be known."""
    try:
        when = (datetime.fromisoformat(value) if _ISO_TIME.match(value)
                else parsedate_to_datetime(value))  # an e-mail date: "Wed, 04 May 2022 ..."
    except (ValueError, TypeError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        return None
    # The page's own URL, else the one it names as its canonical (a file described alone)
    try:
        host = urlsplit(page.url or page.canonical or "").hostname or ""
    except ValueError:  # such as "http://[oops/": no host to tell a country by
        host = ""
    try:
        if (offset := page.local_offset) is not None:
            return when.astimezone(timezone(offset)).date().isoformat()
        if zone := _COUNTRY_ZONES.get(host.rsplit(".", 1)[-1]):
            return when.astimezone(ZoneInfo(zone)).date().isoformat()
        utc = when.astimezone(UTC)
    except OverflowError:  # the year 1 or 9999, moved out of the calendar
        return None
    return utc.date().isoformat() if utc.hour in _SAME_DAY_HOURS else None


def _labelled_day(page: _Page) -> str | None:
    """The first date of the page's text that words label as its publication's."""
    body = page.tree.find("body") if page.tree is not None else None
    if body is None:
        return None
    # What the page shows (not its scripts), each piece of text apart: "14:49:39<br>
    # Erschienen am" is not one word.
    text = " ".join(" ".join(body.xpath(".//text()[not(ancestor::script or ancestor::style)]"))
                    .split())
    for match in _PUBLISHED_LABEL.finditer(text):
        generic = match.group(0).split()[0].rstrip(":").lower() in _GENERIC_LABELS
        if generic and _NOT_PUBLISHED.search(text, max(0, match.start() - 30), match.start()):
            continue
        if day := _written_day(match.group(1)):
            return day
    return None


def _article_time_day(page: _Page) -> str | None:
    """The day of the first ``<time>`` in the page's article; an article that is an
    item of a list (related stories, teasers) is not the page's."""
    for element in page.tree.iter("time") if page.tree is not None else []:
        articles = [parent for parent in element.iterancestors() if parent.tag == "article"]
        if not articles or any(parent.tag == "li" for parent in articles[0].iterancestors()):
            continue
        # Its datetime, where its day can be told (without a zone, it is the page's local
        # time: its day as written); else its text, as the page shows it.
        stamp = (element.get("datetime") or "").strip()
        zoneless = _ZONELESS.match(stamp)
        if day := (_believable(zoneless.group(1)) if zoneless else _stated_day(stamp, page)
                   ) or _written_day(" ".join(element.text_content().split())):
            return day
    return None


def _classed_day(page: _Page) -> str | None:
    """The date of the first short element whose class names the publication date
    (``pubdate``, ``publish-date``, ``date-published``), outside lists, asides,
    navigation and footers."""
    if page.tree is None:
        return None
    candidates = (element for element in page.tree.xpath(
        '//body//*[contains(translate(@class, "DATE", "date"), "date")]')
        if _PUBLISH_CLASS.search(element.get("class") or ""))
    for element in itertools.islice(candidates, _CLASSED_CANDIDATES):
        text = _short_text(element)
        if text is None or any(parent.tag in _ELSEWHERE for parent in element.iterancestors()):
            continue
        text = _SPACED_DAY.sub(r"\1.\2.\3", text)
        for written in _WRITTEN_DATE.finditer(text):
            if _NOT_PUBLISHED.search(text, max(0, written.start() - 30), written.start()):
                continue  # "Updated 3.4.2021 · first published 1.2.2020"
            if day := _written_day(written.group(0)):
                return day
    return None


def _short_text(element: Any) -> str | None:
    """An element's text, spaces made one, when it is at most ``_SHORT`` characters (read
    no further than needed to tell)."""
    pieces, read = [], 0
    for piece in element.itertext():
        read += len(piece)
        if read > _READ_CHARS:
            return None
        pieces.append(piece)
    text = " ".join(" ".join(pieces).split())
    return text if len(text) <= _SHORT else None


def _written_day(text: str) -> str | None:
    """A date as people write it ("29.04.2020", "4. 2. 2022", "3. Februar 2022", "May 3,
    2021"), read by htmldate (trafilatura's), in any of the languages it knows."""
    from htmldate.extractors import try_date_expr

    if not text:
        return None
    text = _SPACED_DAY.sub(r"\1.\2.\3", text)
    if numeric := _NUMERIC_DAY.search(text):
        day, month, year = map(int, numeric.groups())
        try:
            datetime(year, month, day)
        except ValueError:  # "31.2.2021": no day
            return None
        return _believable(f"{year:04d}-{month:02d}-{day:02d}")
    found = try_date_expr(text, "%Y-%m-%d", False, _EARLIEST, datetime.now())
    return _believable(found if isinstance(found, str) else None)
