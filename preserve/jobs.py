"""Job functions: the work itself, whoever dispatches it (CLI now, scheduler and workers later).

``run_capture`` is the capture pipeline end to end: fetch pages and requisites
into a WARC in the work folder, describe HTML pages into metadata records,
seal the file, and hand it to :func:`preserve.ingest.ingest`. A capture that
fails before sealing leaves nothing behind: the unfinished WARC is deleted.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version
from typing import Any

from sqlalchemy import Engine

from preserve import __version__
from preserve.capture.crawl import Progress, Response, capture_pages
from preserve.capture.fetch import normalize_url
from preserve.capture.warc import WarcFile
from preserve.config import Settings
from preserve.errors import BadInput, ConfigError
from preserve.ingest import Ingested, ingest
from preserve.policy import Policy, check_collection
from preserve.storage import ObjectStore, open_stores

WARC_1_1 = "http://iipc.github.io/warc-specifications/specifications/warc-format/warc-1.1/"


@dataclass
class CaptureReport:
    """What ``preserve capture`` did; its JSON form is the command's ``--json`` output."""

    job: str
    collection: str
    pages: int
    records: int
    revisits: int
    bytes: int
    warcs: list[dict[str, Any]]
    responses: list[Response] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def warc_key(collection: str, job: str, moment: datetime) -> str:
    """Where a capture's WARC lives in every location."""
    stamp = moment.strftime("%Y%m%d%H%M%S%f")
    return f"warcs/{collection}/{moment:%Y/%m}/{collection}-{stamp}-{job[:8]}.warc.gz"


def stores_for(settings: Settings, names: Sequence[str]) -> list[ObjectStore]:
    """The object stores of the named locations (the settings' defaults when none are named)."""
    wanted = list(names) or list(settings.default_copies)
    for name in wanted:
        if name not in settings.locations:
            raise ConfigError(f"storage location {name!r} is not configured "
                              f"(configured: {', '.join(sorted(settings.locations))})")
    stores = open_stores(settings.locations)
    return [stores[name] for name in wanted]


def run_capture(urls: Sequence[str], *, settings: Settings, engine: Engine,
                collection: str | None = None, policy: Policy | None = None,
                progress: Progress | None = None,
                now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> CaptureReport:
    """Capture pages with their requisites; seal, store and catalogue the WARC.

    A policy supplies the collection (unless one is given), the copies, whether
    requisites are fetched, and capture limits not already set in ``settings``
    overrides the caller made.
    """
    copies: Sequence[str] = ()
    requisites = True
    policy_name = "ad hoc (command line)"
    if policy is not None:
        collection = collection or policy.collection
        copies = policy.preservation.copies
        requisites = policy.capture.requisites
        policy_name = f"{policy.name} ({policy.path})"
    if not collection:
        raise BadInput("capture: a collection is required (--collection, or a policy naming one)")
    check_collection(collection)
    seeds = list(dict.fromkeys(normalize_url(url) for url in urls))
    stores = stores_for(settings, copies)
    job = uuid.uuid4().hex
    key = warc_key(collection, job, now())
    path = settings.work_dir / key.rsplit("/", 1)[-1]
    warc = WarcFile(path, {
        "software": f"preserve/{__version__} (warcio/{version('warcio')})",
        "format": "WARC File Format 1.1",
        "conformsTo": WARC_1_1,
        "isPartOf": collection,
        "policy": policy_name,
        "operator": settings.operator,
        "job": job,
        "http-header-user-agent": settings.capture.user_agent,
    })
    try:
        crawled = capture_pages(seeds, settings.capture, warc, requisites_too=requisites,
                                progress=progress)
        sealed = warc.seal()
    except BaseException:
        warc.discard()
        raise
    try:
        stored: Ingested = ingest(sealed, key=key, collection=collection, source="capture",
                                  engine=engine, stores=stores, actor=settings.operator, now=now)
    finally:
        path.unlink(missing_ok=True)
    return CaptureReport(
        job=job, collection=collection, pages=crawled.pages, records=stored.records,
        revisits=0, bytes=crawled.bytes,
        warcs=[{"key": stored.key, "sha256": stored.sha256, "size": stored.size,
                "locations": list(stored.locations)}],
        responses=crawled.responses, errors=crawled.errors,
    )
