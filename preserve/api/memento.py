"""Memento (RFC 7089): TimeGate, TimeMaps (link-format and JSON) and mementos.

URLs follow pywb's layout, so that Memento clients and aggregators find what
they expect: ``/timegate/{url}``, ``/timemap/link/{url}``, ``/timemap/json/{url}``
and ``/web/{14-digit timestamp}id_/{url}`` (``id_``: the original bytes, not
rewritten). A memento asked for at a time the archive has no capture for is
redirected to the nearest capture's own memento URL.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from sqlalchemy import Engine

from preserve import retrieve
from preserve.catalog import Hidden, Snapshot
from preserve.errors import BadInput, NotFound
from preserve.storage import ObjectStore

LINK_FORMAT = "application/link-format"


def memento_routes(engine: Engine, stores: dict[str, ObjectStore], visible: Any) -> APIRouter:
    """The Memento routes over one catalog; ``visible`` is the dependency that checks the
    reader's token and says what an embargo hides from them."""
    router = APIRouter(tags=["memento"])

    @router.api_route("/timegate/{target:path}", methods=["GET", "HEAD"])
    def timegate(request: Request, hidden: Hidden | None = visible) -> Response:
        """The memento nearest to ``Accept-Datetime`` (default: the latest), as a 302."""
        url = _target(request, "/timegate/")
        asked = request.headers.get("Accept-Datetime")
        at = _http_date(asked) if asked else None
        chosen = retrieve.find_snapshot(engine, url, at, hidden)
        base = _base(request)
        return RedirectResponse(
            _memento_uri(base, chosen), status_code=302,
            headers={"Vary": "accept-datetime",
                     "Link": ", ".join([f'<{url}>; rel="original"',
                                        f'<{base}/timemap/link/{url}>; rel="timemap"; '
                                        f'type="{LINK_FORMAT}"',
                                        _memento_link(base, chosen, "memento")])})

    @router.api_route("/timemap/link/{target:path}", methods=["GET", "HEAD"])
    def timemap_link(request: Request, hidden: Hidden | None = visible) -> Response:
        """Every memento of a URL in ``application/link-format``, oldest first."""
        url = _target(request, "/timemap/link/")
        found = _mementos(engine, url, hidden)
        base = _base(request)
        lines = [f'<{url}>; rel="original"',
                 f'<{base}/timegate/{url}>; rel="timegate"',
                 f'<{base}/timemap/link/{url}>; rel="self"; type="{LINK_FORMAT}"; '
                 f'from="{_http(found[0].capture_time)}"; until="{_http(found[-1].capture_time)}"']
        for index, snapshot in enumerate(found):
            rel = " ".join(word for word, on in (("first", index == 0),
                                                 ("last", index == len(found) - 1)) if on)
            lines.append(_memento_link(base, snapshot, f"{rel} memento".strip()))
        return Response(",\n".join(lines) + "\n", media_type=LINK_FORMAT)

    @router.api_route("/timemap/json/{target:path}", methods=["GET", "HEAD"])
    def timemap_json(request: Request, hidden: Hidden | None = visible) -> Response:
        """The same TimeMap as JSON (the form Memento aggregators read)."""
        url = _target(request, "/timemap/json/")
        found = _mementos(engine, url, hidden)
        base = _base(request)
        listed = [{"datetime": _iso(s.capture_time), "uri": _memento_uri(base, s)}
                  for s in found]
        return JSONResponse({
            "original_uri": url,
            "timegate_uri": f"{base}/timegate/{url}",
            "timemap_uri": {"link_format": f"{base}/timemap/link/{url}",
                            "json_format": f"{base}/timemap/json/{url}"},
            "mementos": {"first": listed[0], "last": listed[-1], "list": listed},
        })

    @router.api_route("/web/{timestamp}id_/{target:path}", methods=["GET", "HEAD"])
    def memento(request: Request, timestamp: str, hidden: Hidden | None = visible) -> Response:
        """The original bytes of the capture at that time, with ``Memento-Datetime``."""
        url = _target(request, f"/web/{timestamp}id_/")
        # The middle of the named second: a capture within it wins over one just before.
        at = _timestamp(timestamp) + timedelta(milliseconds=500)
        chosen = retrieve.find_snapshot(engine, url, at, hidden)
        base = _base(request)
        if _stamp(chosen.capture_time) != timestamp:
            return RedirectResponse(_memento_uri(base, chosen), status_code=302)
        body = retrieve.read_payload(retrieve.payload_record(engine, stores, chosen))
        headers = {
            # In the headers as it was: as media_type, text/* would gain a charset.
            **body.entity_headers(),
            "Memento-Datetime": _http(chosen.capture_time),
            "Link": ", ".join([f'<{url}>; rel="original"',
                               f'<{base}/timegate/{url}>; rel="timegate"',
                               f'<{base}/timemap/link/{url}>; rel="timemap"; '
                               f'type="{LINK_FORMAT}"']),
        }
        return StreamingResponse(retrieve.chunks_then_close(body.body), headers=headers)

    return router


def _target(request: Request, prefix: str) -> str:
    """The archived URL in the request's path, with its query: as it was sent, its
    percent-escapes kept (the decoded path would not be a URL)."""
    path = request.scope.get("raw_path", b"").decode("latin-1") or request.url.path
    url = path[path.index(prefix) + len(prefix):]
    for scheme in ("http:/", "https:/"):  # a proxy that merged the URL's two slashes
        if url.startswith(scheme) and not url.startswith(scheme + "/"):
            url = scheme + "/" + url[len(scheme):]
    query = request.url.query
    return f"{url}?{query}" if query else url


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _mementos(engine: Engine, url: str, hidden: Hidden | None) -> list[Snapshot]:
    found = retrieve.list_snapshots(engine, url, hidden)
    if not found:
        raise NotFound(f"{url}: no capture of this URL in the catalog")
    return found


def _memento_uri(base: str, snapshot: Snapshot) -> str:
    return f"{base}/web/{_stamp(snapshot.capture_time)}id_/{snapshot.url}"


def _memento_link(base: str, snapshot: Snapshot, rel: str) -> str:
    return (f'<{_memento_uri(base, snapshot)}>; rel="{rel}"; '
            f'datetime="{_http(snapshot.capture_time)}"')


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%d%H%M%S")


def _http(moment: datetime) -> str:
    return format_datetime(moment.astimezone(UTC), usegmt=True)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _http_date(value: str) -> datetime:
    """An ``Accept-Datetime`` (RFC 1123); :class:`BadInput` when it is not one."""
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError) as exc:
        raise BadInput(f"Accept-Datetime {value!r} is not an RFC 1123 date "
                       "(such as 'Sat, 28 Nov 2026 06:00:00 GMT')") from exc
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _timestamp(value: str) -> datetime:
    try:
        return retrieve.timestamp_datetime(value)
    except ValueError as exc:
        raise BadInput(f"timestamp {value!r}: use 4 to 14 digits, YYYYMMDDhhmmss") from exc
