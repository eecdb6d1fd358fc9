"""Job functions: the work itself, whoever dispatches it (CLI now, scheduler and workers later).

``run_capture`` is the capture pipeline end to end: crawl pages and their
requisites into WARC files in the work folder, describing HTML pages into
metadata records; every file, once full or at the end, is sealed and handed to
:func:`preserve.ingest.ingest`. A capture that fails leaves its open file
behind nowhere: it is deleted, and only files already sealed are kept.
"""

from __future__ import annotations

import json
import os
import shlex
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine

from preserve import __version__, ledger, retrieve
from preserve.capture.crawl import (
    CrawlOptions,
    Progress,
    Response,
    Seed,
    crawl,
    description_document,
)
from preserve.capture.fetch import normalize_url
from preserve.capture.scope import Scope
from preserve.capture.warc import Revisit, WarcFile, warc_date
from preserve.catalog import PayloadFinder, Snapshot, pages_to_describe
from preserve.config import CaptureSettings, Settings
from preserve.describe import EXTRACTOR_VERSION, decode_html
from preserve.errors import BadInput, ConfigError, PreserveError, restated
from preserve.index import surt_key
from preserve.ingest import Ingested, ingest
from preserve.policy import CaptureOptions, Policy, check_collection
from preserve.processes import process_pool
from preserve.storage import ObjectStore, expect_copies, open_stores
from preserve.workdir import held

WARC_1_1 = "http://iipc.github.io/warc-specifications/specifications/warc-format/warc-1.1/"


@dataclass
class CaptureReport:
    """What ``preserve capture`` did; its JSON form is the command's ``--json`` output."""

    job: str
    collection: str
    pages: int
    resources: int
    records: int
    revisits: int
    bytes_saved: int
    bytes: int
    status_codes: dict[str, int]
    robots_refusals: int
    out_of_scope: int
    start_pages_failed: int
    duration_seconds: float
    warcs: list[dict[str, Any]]
    log: str
    responses: list[Response] = field(default_factory=list)  # the first REPORTED
    errors: list[str] = field(default_factory=list)  # the first REPORTED
    responses_omitted: int = 0  # in the log only
    errors_omitted: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class CaptureOverrides:
    """What the command line said about a capture; None means it said nothing."""

    scope: str | None = None
    depth: int | None = None
    max_pages: int | None = None
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    delay_seconds: float | None = None
    host_connections: int | None = None
    obey_robots: bool | None = None
    describe: bool = True
    warc_size: int | None = None


def years_later(moment: datetime, years: int) -> datetime:
    """The same moment ``years`` calendar years on (29 February becomes the 28th)."""
    try:
        return moment.replace(year=moment.year + years)
    except ValueError:
        return moment.replace(year=moment.year + years, day=28)


def warc_key(collection: str, job: str, moment: datetime, serial: int = 1) -> str:
    """Where a capture's WARC lives in every location."""
    stamp = moment.strftime("%Y%m%d%H%M%S%f")
    return (f"warcs/{collection}/{moment:%Y/%m}/"
            f"{collection}-{stamp}-{job[:8]}-{serial:05d}.warc.gz")


def stores_for(settings: Settings, names: Sequence[str], engine: Engine) -> list[ObjectStore]:
    """The object stores of the named locations (the settings' defaults when none are
    named), to write to: each that the catalog holds copies in must be found in place."""
    wanted = list(names) or list(settings.default_copies)
    for name in wanted:
        if name not in settings.locations:
            raise ConfigError(f"storage location {name!r} is not configured "
                              f"(configured: {', '.join(sorted(settings.locations))})")
    stores = open_stores(settings.locations)
    chosen = [stores[name] for name in wanted]
    expect_copies(engine, chosen)
    return chosen


def capture_settings(settings: Settings, policy: Policy | None, *,
                     timeout_seconds: float | None = None,
                     max_resource_bytes: int | None = None) -> Settings:
    """The settings a capture runs with: limits given, else the policy's, else the settings'."""
    limits = {"timeout_seconds": timeout_seconds, "max_resource_bytes": max_resource_bytes}
    if policy is not None:
        limits["timeout_seconds"] = limits["timeout_seconds"] or policy.capture.timeout_seconds
        limits["max_resource_bytes"] = (limits["max_resource_bytes"]
                                        or policy.capture.max_resource_bytes)
    return settings.with_capture(**{k: v for k, v in limits.items() if v is not None})


def plan_seeds(urls: Sequence[str], policy: Policy | None,
               overrides: CaptureOverrides) -> list[Seed]:
    """The crawl's seeds: the URLs given, else the policy's targets, each with its scope."""
    if urls:
        scope = Scope.build(overrides.scope or "page", overrides.depth or 0,
                            overrides.max_pages, overrides.include, overrides.exclude)
        return [Seed(url, scope) for url in dict.fromkeys(normalize_url(url) for url in urls)]
    if policy is None or not policy.targets:
        raise BadInput("capture: name a URL, or a policy with targets")
    return [Seed(normalize_url(target.url), Scope.build(
        overrides.scope or target.scope,
        target.depth if overrides.depth is None else overrides.depth,
        overrides.max_pages or target.max_pages,
        (*target.include, *overrides.include), (*target.exclude, *overrides.exclude)))
        for target in policy.targets]


def crawl_options(settings: CaptureSettings, policy: Policy | None,
                  overrides: CaptureOverrides) -> CrawlOptions:
    """How the crawl behaves: the command line, else the policy, else the defaults."""
    # A policy's capture options and CrawlOptions share these names; each has its defaults.
    fallback: CaptureOptions | CrawlOptions = policy.capture if policy else CrawlOptions()

    def pick(said: Any, name: str) -> Any:
        return getattr(fallback, name) if said is None else said

    return CrawlOptions(
        retries=settings.retries, backoff_seconds=settings.retry_backoff_seconds,
        requisites=fallback.requisites,
        describe=overrides.describe,
        obey_robots=pick(overrides.obey_robots, "obey_robots"),
        delay_seconds=pick(overrides.delay_seconds, "delay_seconds"),
        host_connections=pick(overrides.host_connections, "host_connections"),
        concurrency=settings.concurrency,
    )


def run_capture(urls: Sequence[str], *, settings: Settings, engine: Engine,
                collection: str | None = None, policy: Policy | None = None,
                overrides: CaptureOverrides = CaptureOverrides(),
                progress: Progress | None = None,
                now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> CaptureReport:
    """Crawl, write, seal, store and catalogue; each WARC is ingested as soon as it is sealed.

    A policy supplies the collection (unless one is given), the targets (when
    no URL is), the copies, and crawl behaviour the command line did not set.
    If the crawl fails, the open WARC is discarded; files already sealed stay
    preserved and catalogued.
    """
    if policy is not None:
        collection = collection or policy.collection
    if not collection:
        raise BadInput("capture: a collection is required (--collection, or a policy naming one)")
    check_collection(collection)
    seeds = plan_seeds(urls, policy, overrides)
    # The frontier's file beside the open WARC, not in a /tmp that may be memory.
    options = replace(crawl_options(settings.capture, policy, overrides),
                      frontier_dir=settings.work_dir)
    stores = stores_for(settings, policy.preservation.copies if policy else (), engine)
    job = uuid.uuid4().hex
    started = time.monotonic()
    log_path = settings.home / "logs" / f"{job}.jsonl"
    retention_years = policy.preservation.retention_years if policy else None
    series = _WarcSeries(settings, collection, job, stores, engine, now,
                         overrides.warc_size or settings.capture.warc_size,
                         policy_name=f"{policy.name} ({policy.path})" if policy
                         else "ad hoc (command line)",
                         retain_until=(years_later(now(), retention_years)
                                       if retention_years else None))
    try:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("a", encoding="utf-8") as log_file:
            def log(line: dict[str, Any]) -> None:
                log_file.write(json.dumps({"time": datetime.now(UTC).isoformat(), **line},
                                          default=str) + "\n")

            payloads = _CatalogPayloads(engine, collection)
            try:
                crawled = crawl(seeds, settings.capture, series, options,
                                known_payload=payloads, progress=progress, log=log)
            finally:
                payloads.close()
        series.finish()
    except OSError as exc:
        series.discard()
        raise ConfigError(f"{log_path}: cannot write the crawl log: {exc.strerror}") from exc
    except BaseException:
        series.discard()
        raise
    finally:  # what was ingested, its ledger entries reach storage
        ledger.checkpoint(engine, open_stores(settings.locations))
    return CaptureReport(
        job=job, collection=collection, pages=crawled.pages,
        resources=crawled.resources,
        records=sum(stored.records for stored in series.sealed),
        revisits=crawled.revisits, bytes_saved=crawled.bytes_saved, bytes=crawled.bytes,
        status_codes=crawled.status_codes, robots_refusals=crawled.robots_refusals,
        out_of_scope=crawled.out_of_scope, start_pages_failed=crawled.start_pages_failed,
        duration_seconds=round(time.monotonic() - started, 3),
        warcs=[{"key": stored.key, "sha256": stored.sha256, "size": stored.size,
                "locations": list(stored.locations), "missing": stored.missing,
                "retention": stored.retention}
               for stored in series.sealed],
        log=str(log_path), responses=crawled.responses, errors=crawled.errors,
        responses_omitted=crawled.responses_omitted, errors_omitted=crawled.errors_omitted,
    )


class _CatalogPayloads:
    """Payloads earlier captures in the collection preserved, as the crawler asks for them."""

    def __init__(self, engine: Engine, collection: str) -> None:
        self._finder = PayloadFinder(engine, collection)

    def __call__(self, digest: str) -> Revisit | None:
        original = self._finder(digest)
        if original is None:
            return None
        return Revisit(original.url, warc_date(original.capture_time), original.record_id)

    def close(self) -> None:
        self._finder.close()


# A WARC file is also sealed once it holds this many records: the index of the open
# file (what ingest catalogs) is kept in memory, about 400 bytes a record, and a file
# of small pages would reach a million records before 1 GiB.
WARC_RECORD_LIMIT = 100_000


class _WarcSeries:
    """The capture's WARC files: one open at a time, sealed and ingested when full
    (``warc_size`` bytes, or WARC_RECORD_LIMIT records)."""

    def __init__(self, settings: Settings, collection: str, job: str,
                 stores: list[ObjectStore], engine: Engine, now: Callable[[], datetime],
                 limit: int, policy_name: str, source: str = "capture",
                 retain_until: datetime | None = None) -> None:
        self.settings = settings
        self.collection = collection
        self.job = job
        self.stores = stores
        self.engine = engine
        self.now = now
        self.limit = limit
        self.policy_name = policy_name
        self.source = source
        self.retain_until = retain_until
        self.sealed: list[Ingested] = []
        self._started = now()
        self._serial = 0
        self._key = ""
        self._warc = self._open()

    @property
    def warc(self) -> WarcFile:
        return self._warc

    def full(self) -> bool:
        return self._warc.size >= self.limit or self._warc.records >= WARC_RECORD_LIMIT

    def checkpoint(self) -> None:
        if self.full():
            self._seal()
            self._warc = self._open()
        else:  # a process killed now leaves its pages whole in the file (preserve.workdir)
            self._warc.flush()

    def finish(self) -> None:
        if self._warc.records <= 1:  # its warcinfo alone (a rollover just before the end)
            self._warc.discard()
        else:
            self._seal()

    def discard(self) -> None:
        self._warc.discard()

    def _open(self) -> WarcFile:
        self._serial += 1
        self._key = warc_key(self.collection, self.job, self._started, self._serial)
        return WarcFile(self.settings.work_dir / self._key.rsplit("/", 1)[-1], {
            "software": f"preserve/{__version__}",
            "format": "WARC File Format 1.1",
            "conformsTo": WARC_1_1,
            "isPartOf": self.collection,
            "policy": self.policy_name,
            "operator": self.settings.operator,
            "job": self.job,
            "http-header-user-agent": self.settings.capture.user_agent,
        })

    def _seal(self) -> None:
        sealed = self._warc.seal()
        with held(sealed.path):
            try:
                ingested = ingest(sealed, key=self._key, collection=self.collection,
                                  source=self.source, engine=self.engine, stores=self.stores,
                                  actor=self.settings.operator, now=self.now,
                                  backoff_seconds=self.settings.capture.retry_backoff_seconds,
                                  retain_until=self.retain_until)
            except PreserveError as exc:
                # What it holds was fetched once and may not be there to fetch again: the
                # sealed file stays in the work folder, for an import once that is mended.
                path = shlex.quote(str(sealed.path))
                raise restated(exc, f"{exc}; the sealed file is kept: `preserve import {path} "
                                    f"--collection {self.collection}` preserves it once that "
                                    "is mended") from exc
        sealed.path.unlink(missing_ok=True)
        self.sealed.append(ingested)


@dataclass
class RedescribeReport:
    """What ``preserve redescribe`` did."""

    job: str
    described: int
    warcs: list[dict[str, Any]]
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def run_redescribe(*, settings: Settings, engine: Engine, collection: str | None = None,
                   url: str | None = None, warc_key: str | None = None, every: bool = False,
                   progress: Callable[[int, int], None] | None = None,
                   now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> RedescribeReport:
    """Describe, with the current extractor, the HTML pages captured without description
    (``capture --no-describe``, and imports; ``warc_key``: only those in that WARC file)
    and those an older extractor version described (``every``: all pages).

    Nothing stored is touched: each collection gets a new WARC of ``metadata`` records
    that refer to the responses (``WARC-Refers-To``), ingested like any other. The
    catalog shows the newest description of a page; the older ones stay in the archive.
    """
    with engine.connect() as connection:
        pages = pages_to_describe(connection, collection, surt_key(url) if url else None,
                                  warc_key, current_version=EXTRACTOR_VERSION, every=every)
    job = uuid.uuid4().hex
    stores = open_stores(settings.locations)
    copies = stores_for(settings, (), engine)
    errors: list[str] = []
    series: dict[str, _WarcSeries] = {}
    described = 0
    workers = min(os.cpu_count() or 1, max(1, len(pages)))
    pool = process_pool(workers) if len(pages) > 1 else None
    try:
        jobs: list[tuple[Snapshot, Future[dict[str, Any]] | dict[str, Any]]] = []
        for snapshot in pages:
            try:
                record = retrieve.payload_record(engine, stores, snapshot)
                html = decode_html(retrieve.read_content(record))
            except PreserveError as exc:
                errors.append(f"{snapshot.url}: not described ({exc})")
                continue
            moment = warc_date(snapshot.capture_time)
            jobs.append((snapshot, pool.submit(description_document, snapshot.url, moment, html)
                         if pool else description_document(snapshot.url, moment, html)))
        for number, (snapshot, pending) in enumerate(jobs, start=1):
            try:
                document = pending.result() if isinstance(pending, Future) else pending
            except Exception as exc:
                errors.append(f"{snapshot.url}: not described ({type(exc).__name__}: {exc})")
                continue
            if snapshot.collection not in series:
                series[snapshot.collection] = _WarcSeries(
                    settings, snapshot.collection, job, copies, engine, now,
                    settings.capture.warc_size, policy_name="redescribe", source="redescribe")
            target = series[snapshot.collection]
            target.warc.write_metadata(snapshot.url, snapshot.capture_time,
                                       snapshot.record_id, document, relation="WARC-Refers-To")
            target.checkpoint()
            described += 1
            if progress is not None:
                progress(number, len(jobs))
        for open_series in series.values():
            open_series.finish()
    except BaseException:
        for open_series in series.values():
            open_series.discard()
        raise
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
        ledger.checkpoint(engine, stores)
    return RedescribeReport(
        job=job, described=described,
        warcs=[{"key": stored.key, "sha256": stored.sha256, "size": stored.size,
                "locations": list(stored.locations), "missing": stored.missing,
                "retention": stored.retention}
               for open_series in series.values() for stored in open_series.sealed],
        errors=errors)
