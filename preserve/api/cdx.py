"""A CDX server API as pywb's: ``GET /cdx?url=U[&matchType=&from=&to=&limit=&output=json]``.

Tools that speak pywb's CDX server (replay, analysis) can use the catalog as
their index. The lines are what ``cdxj-indexer`` writes for the same WARC
records (response and revisit records; a revisit's ``mime`` is
``warc/revisit``): ``urlkey timestamp {json}``, or with ``output=json`` one JSON
object per line. ``url`` may carry pywb's wildcards (``http://example.com/path/*``
for ``prefix``, ``*.example.com`` for ``domain``); ``from`` and ``to`` take 1-14
digit timestamps, padded to the earliest and the latest moment they can mean.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse
from sqlalchemy import Engine

from preserve.catalog import Hidden, index_entries
from preserve.errors import BadInput
from preserve.index import surt_key
from preserve.numbers import is_digits

MATCH_TYPES = ("exact", "prefix", "host", "domain")


def cdx_routes(engine: Engine, visible: Any) -> APIRouter:
    """The CDX server route over one catalog; ``visible`` checks the reader's token and
    says what an embargo hides from them."""
    router = APIRouter(tags=["cdx"])

    @router.get("/cdx")
    def cdx(url: str, match_type: str = Query("exact", alias="matchType"),
            from_: str | None = Query(None, alias="from"), to: str | None = None,
            limit: int | None = Query(None, gt=0), output: str = "cdxj",
            sort: str | None = None, closest: str | None = None,
            hidden: Hidden | None = visible) -> StreamingResponse:
        """Index lines of the captures of a URL, or of a prefix, host or domain
        (``sort=closest&closest=TS``: nearest that time first, as pywb asks when it
        replays; ``sort=reverse``: newest key and time first)."""
        if output not in ("cdxj", "json"):
            raise BadInput(f"output must be cdxj or json, not {output!r}")
        if match_type not in MATCH_TYPES:
            raise BadInput(f"matchType must be one of {', '.join(MATCH_TYPES)}, "
                           f"not {match_type!r}")
        if sort not in (None, "", "closest", "reverse"):
            raise BadInput(f"sort must be closest or reverse, not {sort!r}")
        if sort == "closest" and not closest:
            raise BadInput("sort=closest needs closest=TIMESTAMP")
        key, match = _key_and_match(url, match_type)
        with engine.connect() as connection:
            found = index_entries(connection, key, match, _bound(from_, upper=False),
                                  _bound(to, upper=True), None if sort else limit, hidden)
        if sort == "closest" and (target := _bound(closest, upper=False)) is not None:
            # By whole seconds, as the timestamps are (pywb's own order; ties: the earlier).
            found.sort(key=lambda entry: abs(
                (entry.capture_time.replace(microsecond=0) - target).total_seconds()))
        elif sort == "reverse":
            found.reverse()
        found = found[:limit]
        lines = (entry.line(output) for entry in found)
        media = "application/x-ndjson" if output == "json" else "text/x-cdxj"
        return StreamingResponse(_encoded(lines), media_type=media)

    return router


def _key_and_match(url: str, match_type: str) -> tuple[str, str]:
    """The SURT key to look for, and how (``exact``, ``prefix`` or ``domain``)."""
    if url.startswith("*."):
        url, match_type = url[2:], "domain"
    elif url.endswith("*"):
        url, match_type = url[:-1], "prefix" if match_type == "exact" else match_type
    key = surt_key(url if "://" in url else f"http://{url}")
    if match_type == "host":
        return key.split(")", 1)[0] + ")/", "prefix"
    if match_type == "domain":
        return key.split(")", 1)[0], "domain"
    return key, match_type


def _bound(stamp: str | None, upper: bool) -> datetime | None:
    """A from/to timestamp, padded as pywb pads it: ``from`` to the earliest moment it can
    mean, ``to`` to the latest (``2014`` is 20140101000000, or 20141231235959); a day
    past the month's end is its last day."""
    if stamp is None:
        return None
    if not is_digits(stamp) or not 1 <= len(stamp) <= 14:
        raise BadInput(f"timestamp {stamp!r}: use up to 14 digits, YYYYMMDDhhmmss")
    padded = stamp + ("99991231235959" if upper else "10000101000000")[len(stamp):]
    year, month = max(int(padded[:4]), 1), min(max(int(padded[4:6]), 1), 12)
    day = min(max(int(padded[6:8]), 1), calendar.monthrange(year, month)[1])
    hour, minute, second = (min(int(padded[at:at + 2]), top)
                            for at, top in ((8, 23), (10, 59), (12, 59)))
    # Captures keep microseconds; a timestamp names a whole second.
    return datetime(year, month, day, hour, minute, second, 999_999 if upper else 0,
                    tzinfo=UTC)


def _encoded(lines: Iterator[str]) -> Iterator[bytes]:
    for line in lines:
        yield (line + "\n").encode("utf-8")
