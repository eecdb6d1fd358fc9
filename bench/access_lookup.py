"""Access at scale: nearest-capture lookup, a TimeMap and full-text search over a large catalog.

Issue 7's speed targets. A catalog is made as the product makes one
(``open_engine``, which migrates it: SQLite in a scratch folder), then filled
with ``--captures`` synthetic captures by bulk inserts (executemany, one
transaction per ``--batch`` captures) into the real tables: ``warc_files`` and
``copies`` (a file per collection every ``--per-warc`` records), ``captures``
and ``descriptions``, whose insert trigger (migration 0008) fills the FTS5
search index. The data is generated from one seed:

- hosts of unequal size (Zipf), in five collections, with article, section
  and resource URLs (SURT keys by ``preserve.index.surt_key``); captures per URL
  from a Pareto tail (most once, some hundreds of times), at whole seconds over
  ten years, responses and revisits by payload digest as a crawler records them;
- one home page with exactly ``--timemap-captures`` captures, for the TimeMap;
- a description for every HTML page answered 200 (the revisits of one payload
  share its text): ``--words`` words drawn from a generated vocabulary of
  ``--vocabulary`` words with a Zipf distribution (frequent words short), a
  title, the site's publisher, an author, a date.

Then, on a fresh engine (SQLite's own cache the default; the database file read
through once first, so that it is in the OS page cache as on a warm server),
it times the functions the HTTP API calls, one call each, after a few calls of
warm-up, with the SURT cache emptied (each lookup computes its key):

- ``retrieve.find_snapshot(engine, url, at)`` (the TimeGate and mementos) for
  ``--lookups`` random URLs of the catalog at random times;
- ``retrieve.list_snapshots(engine, url)`` (the Memento TimeMaps) for the URL with
  ``--timemap-captures`` captures, ``--timemaps`` times; and the same TimeMap
  rendered by the HTTP app (``GET /timemap/link/URL`` through FastAPI's TestClient);
- ``retrieve.search(engine, words, SearchFilters(), limit=20, offset=0)`` (``GET
  /api/search``) for ``--searches`` queries of 1 to 3 words, each word drawn by
  frequency (common) or uniformly from the vocabulary (mostly rare). Its p50
  depends on that mix, so the timings are also given by how many descriptions
  the query matched: with a vocabulary this small the most common words are in
  nearly every description, as stop words are.

When pywb is installed in ``--tools`` (``make test`` or ``make bench`` puts it in
``.venv-tools``), the same captures are written as a sorted CDXJ file and pywb's
own index lookup (``SimpleAggregator`` over a ``FileIndexSource``, the CDX
``closest`` query with limit 1, and the exact-URL query a pywb TimeMap makes)
answers the same lookups in a subprocess; its answers are compared with ours.
pywb has no full-text search, so search has no peer here.

    .venv/bin/python bench/access_lookup.py [--captures 1000000] [--lookups 2000]
        [--timemaps 100] [--searches 300] [--home DIR] [--tools .venv-tools/bin]

With ``--home DIR`` the catalog is built there and kept; a later run with the
same settings reuses it instead of building it again.

Prints the build time, the catalog's size (by table, where SQLite has ``dbstat``),
p50 and p99 of each kind of query in milliseconds (nearest rank) beside its
target (lookup p50 under 2 ms, TimeMap under 50 ms, judged on its p50, search
p50 under 100 ms) and whether it is met, and the ratios of our p50s to pywb's.
A million captures take about 3.5 minutes to build on two cores and 1.5 GB of disk
(and 0.35 GB more for the CDXJ file).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import random
import secrets
import shutil
import sqlite3
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from itertools import accumulate
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, bindparam, insert, update

from preserve import retrieve
from preserve.catalog import SearchFilters, open_engine
from preserve.catalog.schema import captures, copies, descriptions, warc_files
from preserve.config import Token, load_settings
from preserve.index import surt_key

TARGETS_MS = {"lookup": 2.0, "timemap": 50.0, "search": 100.0}
START = int(datetime(2015, 1, 1, tzinfo=UTC).timestamp())
END = int(datetime(2025, 1, 1, tzinfo=UTC).timestamp())
COLLECTIONS = ("news", "government", "science", "culture", "web")
TLDS = ("com",) * 8 + ("org", "org", "net", "de", "fr", "co.uk", "gov", "edu", "io", "info")
SECTIONS = ("world", "politics", "business", "science", "culture", "sport", "opinion", "tech")
RESOURCES = (("css", "text/css"), ("js", "application/javascript"), ("jpg", "image/jpeg"),
             ("jpg", "image/jpeg"), ("png", "image/png"), ("webp", "image/webp"))
LOCATIONS = ("local", "offsite")


# --- what the catalog will hold --------------------------------------------------------------

class Vocabulary:
    """Generated words, ranked: word r is drawn with weight 1 / (r + 1) (Zipf)."""

    def __init__(self, size: int, rng: random.Random) -> None:
        onsets = [*"bcdfghjklmnprstvwz", "br", "ch", "st", "tr", "sh", "pl", "gr", "th", "qu"]
        vowels = ["a", "e", "i", "o", "u", "ai", "ea", "ou", "y"]
        codas = ["", "", "", "n", "r", "s", "t", "l", "nd", "st", "m"]
        found: dict[str, None] = {}  # in the order made (a set's would vary between runs)
        while len(found) < size:
            found["".join(rng.choice(onsets) + rng.choice(vowels) + rng.choice(codas)
                          for _ in range(rng.choice((1, 1, 2, 2, 2, 3, 3, 4))))] = None
        # Frequent words are short, as in a language: by length, with noise.
        self.words = sorted(found, key=lambda word: len(word) + rng.random() * 4)
        self.cum_weights = list(accumulate(1 / (rank + 1) for rank in range(size)))

    def draw(self, rng: random.Random, count: int) -> list[str]:
        return rng.choices(self.words, cum_weights=self.cum_weights, k=count)


@dataclass(frozen=True)
class Site:
    host: str
    collection: str
    publisher: str


@dataclass(frozen=True)
class Url:
    url: str
    surt: str
    site: int
    mime: str  # text/html for pages


@dataclass
class Plan:
    """The URLs, each URL's capture times (whole seconds), and what the queries need."""

    sites: list[Site]
    urls: list[Url]
    times: list[list[int]]
    timemap_url: str
    vocabulary: Vocabulary
    descriptions: int = 0
    warc_files: int = 0

    @property
    def captures(self) -> int:
        return sum(len(times) for times in self.times)


def make_plan(captures_total: int, hosts: int, timemap_captures: int, vocabulary_size: int,
              seed: int) -> Plan:
    rng = random.Random(seed)
    vocabulary = Vocabulary(vocabulary_size, rng)
    common = vocabulary.words[:200]
    names: set[str] = set()
    sites: list[Site] = []
    while len(sites) < hosts:
        first, second = rng.choice(vocabulary.words), rng.choice(vocabulary.words)
        host = f"{first}{second}.{rng.choice(TLDS)}"
        if host in names:
            continue
        names.add(host)
        sites.append(Site(("www." if rng.random() < 0.5 else "") + host,
                          COLLECTIONS[len(sites) % len(COLLECTIONS)],
                          f"The {first.title()} {second.title()}"))
    site_weights = list(accumulate(1 / (rank + 1) ** 0.9 for rank in range(hosts)))
    site_ids = range(hosts)
    urls: list[Url] = []
    times: list[list[int]] = []
    seen: set[str] = set()
    left = captures_total - timemap_captures
    if left < 0:
        raise SystemExit("--captures must be at least --timemap-captures")
    while left > 0:
        site_id = rng.choices(site_ids, cum_weights=site_weights)[0]
        site = sites[site_id]
        scheme = "https" if rng.random() < 0.8 else "http"
        kind = rng.random()
        if kind < 0.45:  # an article
            slug = "-".join(rng.choices(common, k=rng.randint(3, 7)))
            path = (f"/{rng.choice(SECTIONS)}/{rng.randint(2015, 2024)}/"
                    f"{rng.randint(1, 12):02d}/{slug}-{rng.randint(1, 99999)}")
            mime = "text/html"
        elif kind < 0.5:  # a section page, or a listing of one
            path = f"/{rng.choice(SECTIONS)}/" + (f"?page={rng.randint(2, 50)}"
                                                 if rng.random() < 0.7 else "")
            mime = "text/html"
        else:  # a resource
            extension, mime = rng.choice(RESOURCES)
            if extension in ("css", "js"):
                path = f"/static/{rng.choice(common)}.{extension}?v={rng.randint(1, 400)}"
            else:
                path = f"/images/{rng.getrandbits(64):016x}.{extension}"
        url = f"{scheme}://{site.host}{path}"
        if url in seen:
            continue
        seen.add(url)
        count = min(left, 500, int(rng.paretovariate(1.3)))
        urls.append(Url(url, surt_key(url), site_id, mime))
        times.append(_moments(rng, count))
        left -= count
    home = sites[0]  # the largest site's home page
    timemap_url = f"https://{home.host}/"
    urls.append(Url(timemap_url, surt_key(timemap_url), 0, "text/html"))
    times.append(_moments(rng, timemap_captures, everywhen=True))
    return Plan(sites, urls, times, timemap_url, vocabulary)


def _moments(rng: random.Random, count: int, everywhen: bool = False) -> list[int]:
    """count distinct whole seconds: since a random first capture (most URLs) or over the
    whole span (a URL captured often)."""
    first = START if everywhen or count > 20 else rng.randint(START, END - 86_400)
    found: set[int] = set()
    while len(found) < count:
        found.add(rng.randint(first, END))
    return sorted(found)


# --- building the catalog --------------------------------------------------------------------

@dataclass
class WarcFile:
    id: int
    key: str
    opened: datetime
    records: int = 0
    size: int = 0


@dataclass
class Batch:
    files: list[dict[str, Any]] = field(default_factory=list)
    copies: list[dict[str, Any]] = field(default_factory=list)
    closed: list[dict[str, Any]] = field(default_factory=list)
    captures: list[dict[str, Any]] = field(default_factory=list)
    descriptions: list[dict[str, Any]] = field(default_factory=list)


def _uuid(rng: random.Random) -> str:
    return f"<urn:uuid:{uuid.UUID(int=rng.getrandbits(128), version=4)}>"


def _digest(url_id: int, version: int) -> str:
    raw = hashlib.sha1(f"{url_id}:{version}".encode(), usedforsecurity=False).digest()
    return "sha1:" + base64.b32encode(raw).decode()


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y%m%d%H%M%S")


class Builder:
    """Turns the plan's captures, in time order, into rows (and CDXJ lines)."""

    def __init__(self, plan: Plan, words: int, per_warc: int, seed: int,
                 cdxj: list[str] | None) -> None:
        self.plan, self.words, self.per_warc = plan, words, per_warc
        self.rng = random.Random(seed + 1)
        self.cdxj = cdxj
        self.versions = [0] * len(plan.urls)  # of each URL's payload; 0: none yet
        self.open: dict[str, WarcFile] = {}
        self.capture_id = self.description_id = self.file_id = 0

    def _file(self, collection: str, moment: datetime, batch: Batch) -> WarcFile:
        current = self.open.get(collection)
        if current is not None and current.records < self.per_warc:
            return current
        if current is not None:
            self._close(current, batch)
        self.file_id += 1
        key = (f"warcs/{collection}/{moment:%Y/%m}/{collection}-{moment:%Y%m%d%H%M%S%f}-"
               f"{self.rng.getrandbits(32):08x}-00001.warc.gz")
        opened = WarcFile(self.file_id, key, moment)
        self.open[collection] = opened
        batch.files.append({"id": opened.id, "key": key, "collection": collection,
                            "sha256": f"{self.rng.getrandbits(256):064x}", "size": 0,
                            "records": 0, "source": "capture", "created_at": moment})
        batch.copies.extend({"warc_file_id": opened.id, "location": location,
                             "verified_at": moment} for location in LOCATIONS)
        return opened

    @staticmethod
    def _close(warc: WarcFile, batch: Batch) -> None:
        batch.closed.append({"file_id": warc.id, "size": warc.size, "records": warc.records})

    def rows(self, events: Sequence[tuple[int, int]], last: bool) -> Batch:
        """The rows for captures (second, url id), in time order."""
        batch = Batch()
        rng, plan = self.rng, self.plan
        for second, url_id in events:
            target = plan.urls[url_id]
            site = plan.sites[target.site]
            moment = datetime.fromtimestamp(second, UTC)
            warc = self._file(site.collection, moment, batch)
            page = target.mime == "text/html"
            status = 200 if rng.random() < (0.93 if page else 0.98) else rng.choice(
                (301, 302, 404, 404, 500, 503))
            version = self.versions[url_id]
            if status != 200:
                record_type, digest = "response", _digest(url_id, -status)
                length = rng.randint(400, 1500)
            elif version == 0 or rng.random() < (0.6 if page else 0.1):
                version = self.versions[url_id] = version + 1
                record_type, digest = "response", _digest(url_id, version)
                length = rng.randint(6_000, 60_000) if page else rng.randint(800, 400_000)
            else:
                record_type, digest = "revisit", _digest(url_id, version)
                length = rng.randint(600, 1200)
            self.capture_id += 1
            offset = warc.size + rng.randint(400, 1500)  # after the request record
            batch.captures.append({
                "id": self.capture_id, "warc_file_id": warc.id, "collection": site.collection,
                "url": target.url, "surt": target.surt, "capture_time": moment,
                "record_type": record_type, "record_id": _uuid(rng), "status": status,
                "mime": target.mime, "payload_digest": digest, "offset": offset,
                "length": length})
            warc.size = offset + length
            warc.records += 2
            if page and status == 200:
                warc.size += self._describe(url_id, version, site, moment, warc.size, batch)
                warc.records += 1
            if self.cdxj is not None:
                self.cdxj.append(f"{target.surt} {_stamp(moment)} " + json.dumps({
                    "url": target.url, "mime": target.mime if record_type == "response"
                    else "warc/revisit", "status": str(status), "digest": digest[5:],
                    "length": str(length), "offset": str(offset),
                    "filename": warc.key.rsplit("/", 1)[1]}))
        if last:
            for warc in self.open.values():
                self._close(warc, batch)
            self.open.clear()
        return batch

    def _describe(self, url_id: int, version: int, site: Site, moment: datetime, offset: int,
                  batch: Batch) -> int:
        """A description of the page's payload (its revisits say the same); its length."""
        words = random.Random(url_id * 1_000_003 + version)
        vocabulary = self.plan.vocabulary
        title = " ".join(vocabulary.draw(words, words.randint(4, 12))).capitalize()
        body = vocabulary.draw(words, self.words)
        for at in range(0, len(body), 17):  # sentences
            body[at] = body[at].capitalize()
            body[min(at + 16, len(body) - 1)] += "."
        text = " ".join(body)
        author = (None if words.random() < 0.3 else
                  " ".join(word.title() for word in words.choices(vocabulary.words, k=2)))
        length = 900 + len(text) // 3
        self.description_id += 1
        self.plan.descriptions += 1
        batch.descriptions.append({
            "id": self.description_id, "capture_id": self.capture_id,
            "record_id": _uuid(self.rng), "offset": offset, "length": length, "title": title,
            "publisher": site.publisher, "author": author,
            "published": f"{moment - timedelta(days=words.randint(0, 20)):%Y-%m-%d}",
            "language": "en", "text": text,
            "text_sha256": hashlib.sha256(text.encode()).hexdigest(),
            "extractor": "preserve.describe", "extractor_version": "1"})
        return length


def build(engine: Engine, plan: Plan, words: int, per_warc: int, batch_size: int, seed: int,
          cdxj: list[str] | None) -> None:
    events = sorted((second, url_id) for url_id, seconds in enumerate(plan.times)
                    for second in seconds)
    builder = Builder(plan, words, per_warc, seed, cdxj)
    started = time.perf_counter()
    # Each transaction takes the write lock at once (BEGIN IMMEDIATE), as write_transaction's.
    with engine.execution_options(preserve_write=True).connect() as connection:
        sqlite = connection.connection.driver_connection  # for PRAGMAs, outside a transaction
        assert sqlite is not None
        sqlite.execute("PRAGMA cache_size = -1000000")  # bulk loading only; 1 GB, this one
        for first in range(0, len(events), batch_size):
            batch = builder.rows(events[first:first + batch_size],
                                 last=first + batch_size >= len(events))
            with connection.begin():
                if batch.files:
                    connection.execute(insert(warc_files), batch.files)
                    connection.execute(insert(copies), batch.copies)
                if batch.closed:
                    connection.execute(
                        update(warc_files).where(warc_files.c.id == bindparam("file_id"))
                        .values(size=bindparam("size"), records=bindparam("records")),
                        batch.closed)
                connection.execute(insert(captures), batch.captures)
                if batch.descriptions:
                    connection.execute(insert(descriptions), batch.descriptions)
            done = min(first + batch_size, len(events))
            print(f"  {done:>10,} captures, {plan.descriptions:>9,} descriptions, "
                  f"{builder.file_id:>6,} WARC files  {time.perf_counter() - started:7.1f} s",
                  flush=True)
        sqlite.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    plan.warc_files = builder.file_id


# --- measuring -------------------------------------------------------------------------------

def percentile(samples: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile of samples."""
    ordered = sorted(samples)
    return ordered[max(0, min(len(ordered) - 1, round(fraction * len(ordered)) - 1))]


def timed(action: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = action()
    return time.perf_counter() - started, result


def lookups(plan: Plan, count: int, rng: random.Random) -> list[tuple[str, datetime]]:
    """Random URLs of the catalog (each URL as likely), at random times."""
    return [(plan.urls[rng.randrange(len(plan.urls))].url,
             datetime.fromtimestamp(rng.randint(START, END), UTC)) for _ in range(count)]


def search_words(plan: Plan, count: int, rng: random.Random) -> list[str]:
    """1 to 3 words each, each drawn by frequency (common) or from the whole vocabulary."""
    vocabulary = plan.vocabulary
    return [" ".join(vocabulary.draw(rng, 1)[0] if rng.random() < 0.5
                     else rng.choice(vocabulary.words) for _ in range(rng.randint(1, 3)))
            for _ in range(count)]


PYWB = r"""
import json, sys, time
from pywb.warcserver.index.aggregator import SimpleAggregator
from pywb.warcserver.index.indexsource import FileIndexSource

job = json.load(open(sys.argv[1]))
index = SimpleAggregator({"bench": FileIndexSource(job["cdxj"])})

def closest(url, stamp):
    found, _errors = index({"url": url, "closest": stamp, "limit": 1})
    return [cdx["timestamp"] for cdx in found]

def timemap(url):
    found, _errors = index({"url": url})
    return [cdx["timestamp"] for cdx in found]

for url, stamp in job["lookups"][:50]:
    closest(url, stamp)
timemap(job["timemap"])
out = {"lookup": [], "answers": [], "timemap": [], "timemap_count": 0}
for url, stamp in job["lookups"]:
    started = time.perf_counter()
    found = closest(url, stamp)
    out["lookup"].append(time.perf_counter() - started)
    out["answers"].append(found[0] if found else None)
for _ in range(job["timemaps"]):
    started = time.perf_counter()
    found = timemap(job["timemap"])
    out["timemap"].append(time.perf_counter() - started)
    out["timemap_count"] = len(found)
print(json.dumps(out))
"""


def read_through(path: Path) -> None:
    """Read a file once, so that its pages are in the OS cache when the timing starts (the
    kernel may have reclaimed them since it was written)."""
    with path.open("rb") as stream:
        while stream.read(1 << 24):
            pass


def run_pywb(python: Path, cdxj: Path, queries: list[tuple[str, datetime]], timemap_url: str,
             timemaps: int, scratch: Path) -> dict[str, Any]:
    job = scratch / "pywb-job.json"
    job.write_text(json.dumps({"cdxj": str(cdxj), "timemap": timemap_url, "timemaps": timemaps,
                               "lookups": [[url, _stamp(at)] for url, at in queries]}))
    done = subprocess.run([str(python), "-c", PYWB, str(job)], check=True,
                          capture_output=True, text=True)
    result: dict[str, Any] = json.loads(done.stdout)
    return result


@contextmanager
def http_client(home: Path, engine: Engine) -> Iterator[Callable[[str], int]]:
    """GET through the HTTP app, as a researcher: the path's status code."""
    from fastapi.testclient import TestClient

    from preserve.api.app import create_app

    secret = secrets.token_urlsafe(16)
    settings = replace(load_settings({"PRESERVE_HOME": str(home),
                                      "PRESERVE_POLICIES": str(home / "policies")}),
                       tokens=(Token("bench", "researcher",
                                     hashlib.sha256(secret.encode()).hexdigest()),))
    with TestClient(create_app(settings, engine)) as client:
        headers = {"Authorization": f"Bearer {secret}"}
        yield lambda path: client.get(path, headers=headers).status_code


def catalog_size(database: Path) -> tuple[int, dict[str, int]]:
    """Bytes of the database file (and its WAL), and of each table with its indexes."""
    total = sum(path.stat().st_size for path in
                (database, database.with_name(database.name + "-wal")) if path.exists())
    parts: dict[str, int] = {}
    try:
        with sqlite3.connect(database) as connection:
            rows = connection.execute(
                "SELECT coalesce(tbl_name, s.name), sum(pgsize) FROM dbstat s "
                "LEFT JOIN sqlite_master m ON m.name = s.name GROUP BY 1").fetchall()
        for table, size in rows:
            name = "descriptions_search (FTS5)" if str(table).startswith(
                "descriptions_search") else str(table)
            parts[name] = parts.get(name, 0) + int(size)
    except sqlite3.Error:
        pass  # an SQLite built without the dbstat table: the total only
    return total, parts


def row(label: str, samples: Sequence[float], target: str | None = None,
        met: bool | None = None, extra: str = "") -> None:
    p50, p99 = percentile(samples, 0.5) * 1000, percentile(samples, 0.99) * 1000
    verdict = "" if met is None else ("yes" if met else "NO")
    print(f"  {label:<44} {len(samples):>6} {p50:9.2f} {p99:9.2f}  {target or '':<15} "
          f"{verdict:<4}{extra}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--captures", type=int, default=1_000_000)
    parser.add_argument("--hosts", type=int, default=0,
                        help="sites (default: one per 50 captures)")
    parser.add_argument("--timemap-captures", type=int, default=1000,
                        help="captures of the URL whose TimeMap is timed")
    parser.add_argument("--vocabulary", type=int, default=5000, help="words in the vocabulary")
    parser.add_argument("--words", type=int, default=200, help="words of text per description")
    parser.add_argument("--per-warc", type=int, default=1000, help="records per WARC file")
    parser.add_argument("--batch", type=int, default=50_000, help="captures per transaction")
    parser.add_argument("--lookups", type=int, default=2000)
    parser.add_argument("--timemaps", type=int, default=100)
    parser.add_argument("--searches", type=int, default=300)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--home", type=Path,
                        help="build the catalog here and keep it (reused when built with "
                             "the same settings); default: a scratch folder")
    parser.add_argument("--tools", type=Path, default=Path(".venv-tools/bin"),
                        help="where pywb is installed (the comparison is skipped when not)")
    args = parser.parse_args()
    hosts = args.hosts or max(10, args.captures // 50)
    settings = {name: getattr(args, name) for name in (
        "captures", "timemap_captures", "vocabulary", "words", "per_warc", "seed")}
    settings["hosts"] = hosts
    pywb = args.tools / "python"
    with_pywb = pywb.exists() and subprocess.run(
        [str(pywb), "-c", "import pywb.warcserver.index.aggregator"],
        capture_output=True).returncode == 0
    scratch = None
    if args.home is None:
        scratch = tempfile.mkdtemp(prefix="preserve-bench-")
        home = Path(scratch)
    else:
        home = args.home.absolute()
        home.mkdir(parents=True, exist_ok=True)
    try:
        measure(args, home, settings, hosts, pywb if with_pywb else None)
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


def measure(args: argparse.Namespace, home: Path, settings: dict[str, Any], hosts: int,
            pywb: Path | None) -> None:
    database = home / "catalog.db"
    cdxj_path = home / "captures.cdxj"
    marker = home / "bench-settings.json"
    started = time.perf_counter()
    plan = make_plan(args.captures, hosts, args.timemap_captures, args.vocabulary, args.seed)
    planned = time.perf_counter() - started
    settings["plan"] = hashlib.sha256("\n".join(
        target.url for target in plan.urls[:1000]).encode()).hexdigest()[:16]
    reuse = (marker.exists() and json.loads(marker.read_text()).get("settings") == settings
             and database.exists())
    if reuse:
        built = json.loads(marker.read_text())
        plan.descriptions, plan.warc_files = built["descriptions"], built["warc_files"]
        print(f"access at scale: reusing the catalog in {home} (built in "
              f"{built['build_seconds']:.0f} s)")
        build_seconds = float(built["build_seconds"])
    else:
        for stale in (marker, cdxj_path, database, database.with_name("catalog.db-wal"),
                      database.with_name("catalog.db-shm")):
            stale.unlink(missing_ok=True)
        print(f"access at scale: building a catalog of {args.captures:,} captures in {home}",
              flush=True)
        engine = open_engine(f"sqlite:///{database}")
        cdxj: list[str] | None = [] if pywb is not None else None
        started = time.perf_counter()
        build(engine, plan, args.words, args.per_warc, args.batch, args.seed, cdxj)
        engine.dispose()
        build_seconds = time.perf_counter() - started + planned
        if cdxj is not None:
            cdxj.sort()  # byte order, as pywb's binary search expects (the keys are ASCII)
            cdxj_path.write_text("\n".join(cdxj) + "\n")
            del cdxj
        marker.write_text(json.dumps({"settings": settings, "descriptions": plan.descriptions,
                                      "warc_files": plan.warc_files,
                                      "build_seconds": build_seconds}))
    total, parts = catalog_size(database)
    print(f"catalog: {plan.captures:,} captures of {len(plan.urls):,} URLs on {hosts:,} hosts, "
          f"{plan.descriptions:,} descriptions ({args.words} words each, vocabulary "
          f"{args.vocabulary:,}), {plan.warc_files:,} WARC files")
    print(f"  built in {build_seconds:.0f} s (of which generating the URLs {planned:.0f} s); "
          f"SQLite file {total / 1e9:.2f} GB"
          + (": " + ", ".join(f"{name} {size / 1e9:.2f}" for name, size in
                              sorted(parts.items(), key=lambda item: -item[1])
                              if size > total / 100) if parts else ""))

    engine = open_engine(f"sqlite:///{database}")  # fresh connections, default cache
    read_through(database)
    rng = random.Random(args.seed + 2)
    queries = lookups(plan, args.lookups, rng)
    searches = search_words(plan, args.searches, rng)
    for url, at in queries[:50]:  # warm-up, not counted
        retrieve.find_snapshot(engine, url, at)
    retrieve.list_snapshots(engine, plan.timemap_url)
    for words in searches[:5]:
        retrieve.search(engine, words, SearchFilters(), limit=20, offset=0, hidden=None)
    surt_key.cache_clear()  # each lookup computes its URL's SURT key, as a server's first would

    lookup_times, answers = [], []
    for url, at in queries:
        seconds, snapshot = timed(partial(retrieve.find_snapshot, engine, url, at))
        lookup_times.append(seconds)
        answers.append(_stamp(snapshot.capture_time))
        assert surt_key(snapshot.url) == surt_key(url), (snapshot.url, url)  # http = https
    timemap_times: list[float] = []
    http_times: list[float] = []
    with http_client(home, engine) as get:
        path = f"/timemap/link/{plan.timemap_url}"
        get(path)
        for round_ in range(args.timemaps):  # turn about, so that drift hits both alike
            for over_http in (False, True) if round_ % 2 == 0 else (True, False):
                if over_http:
                    seconds, status = timed(partial(get, path))
                    http_times.append(seconds)
                    assert status == 200, status
                else:
                    seconds, found = timed(partial(retrieve.list_snapshots, engine,
                                                   plan.timemap_url))
                    timemap_times.append(seconds)
                    assert len(found) == args.timemap_captures, len(found)
    search_times, matches = [], []
    for words in searches:
        seconds, (count, _hits) = timed(partial(
            retrieve.search, engine, words, SearchFilters(), limit=20, offset=0, hidden=None))
        search_times.append(seconds)
        matches.append(count)
    engine.dispose()

    peer = None
    if pywb is not None:
        read_through(cdxj_path)
        peer = run_pywb(pywb, cdxj_path, queries, plan.timemap_url, args.timemaps, home)

    print("\naccess timings (ms), one call each, after warm-up; the file read through first:")
    print(f"  {'':<44} {'calls':>6} {'p50':>9} {'p99':>9}  {'target':<15} met")
    p50 = {name: percentile(samples, 0.5) * 1000 for name, samples in
           (("lookup", lookup_times), ("timemap", timemap_times), ("search", search_times))}
    row("nearest capture: retrieve.find_snapshot", lookup_times, "p50 < 2 ms",
        p50["lookup"] < TARGETS_MS["lookup"])
    row(f"TimeMap of {args.timemap_captures:,}: retrieve.list_snapshots", timemap_times,
        "p50 < 50 ms", p50["timemap"] < TARGETS_MS["timemap"],
        f"  (p99 {'under' if percentile(timemap_times, 0.99) * 1000 < 50 else 'over'} too)")
    row("  the same over HTTP: GET /timemap/link/URL", http_times)
    row("full-text search: retrieve.search, 20 hits", search_times, "p50 < 100 ms",
        p50["search"] < TARGETS_MS["search"])
    buckets = (("fewer than 1,000", 0, 1000), ("1,000 to 100,000", 1000, 100_000),
               ("100,000 or more", 100_000, 1 << 62))
    for label, low, high in buckets:
        chosen = [seconds for seconds, count in zip(search_times, matches, strict=True)
                  if low <= count < high]
        if chosen:
            row(f"  queries matching {label}", chosen)
    print(f"  matches per search query: median {statistics.median(matches):,.0f}, "
          f"max {max(matches):,}")
    if peer is None:
        print("\npywb: not installed in " + str(args.tools) + "; no comparison")
        return
    agree = sum(ours == theirs for ours, theirs in zip(answers, peer["answers"], strict=True))
    print(f"\npywb 2 CDXJ index (FileIndexSource, sorted {cdxj_path.stat().st_size / 1e6:.0f} MB "
          f"file) on the same queries, in its own process:")
    row("closest capture: CDX closest=, limit=1", peer["lookup"],
        extra=f"  same capture as ours: {agree}/{len(answers)}")
    row(f"TimeMap query: all {peer['timemap_count']:,} captures of the URL", peer["timemap"])
    ratios = {name: p50[name] / (percentile(peer[name], 0.5) * 1000)
              for name in ("lookup", "timemap")}
    print(f"  ours / pywb's p50: lookup {ratios['lookup']:.2f}x, TimeMap "
          f"{ratios['timemap']:.2f}x (below 1: ours is faster); pywb has no full-text search")


if __name__ == "__main__":
    main()
