"""The HTTP API (FastAPI): retrieval for researchers, captures and jobs for archivists.

Every route but ``/api/health`` and the API's own description (``/docs``,
``/openapi.json``) takes ``Authorization: Bearer TOKEN``; a token
is known by its SHA-256 in the settings (``auth.tokens``), with a role.
Researchers read; archivists and auditors also read, archivists capture; admins
do everything. No token is 401, a token without the role 403, and every error,
whatever raised it, is ``{"ok": false, "error": "...", "status": N}``.
OpenAPI documentation is at ``/docs``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field
from sqlalchemy import Engine
from starlette.exceptions import HTTPException as StarletteHTTPException

from preserve import __version__, retrieve
from preserve.api.auth import Tokens, hidden_from, may, presented
from preserve.api.cdx import cdx_routes
from preserve.api.memento import memento_routes
from preserve.capture.fetch import normalize_url
from preserve.capture.scope import SCOPES
from preserve.catalog import Hidden, SearchFilters, Snapshot
from preserve.config import Settings, Token
from preserve.errors import BadInput, NotFound, PreserveError
from preserve.fixity import object_fixity
from preserve.policy import check_collection
from preserve.schedule import create_capture_job, get_job
from preserve.storage import open_stores
from preserve.web.pages import add_pages, is_page
from preserve.workers import Dispatcher

MATCHES = ("exact", "prefix", "host")
# Only so that the OpenAPI description (and /docs) shows the bearer scheme; ``presented``
# reads the header.
_BEARER = HTTPBearer(auto_error=False)


class CaptureRequest(BaseModel):
    """What ``POST /api/captures`` takes: a URL, its collection, and how far to crawl."""

    url: str
    collection: str
    scope: str = "page"
    depth: int = Field(0, ge=0)
    max_pages: int | None = Field(None, gt=0)


def create_app(settings: Settings, engine: Engine,
               dispatcher: Dispatcher | None = None) -> FastAPI:
    """The API over one catalog; ``dispatcher`` runs the jobs it creates (None: queued only,
    for a scheduler elsewhere to hand out)."""
    app = FastAPI(title="preserve", version=__version__,
                  description="Archival ingest and preservation: find and retrieve "
                              "preserved snapshots, ask for captures.")
    stores = open_stores(settings.locations)
    tokens = Tokens(settings.tokens)

    def role(least: str) -> Callable[..., Token]:
        def check(request: Request,
                  _documented: Annotated[HTTPAuthorizationCredentials | None,
                                         Depends(_BEARER)] = None) -> Token:
            secret = presented(request)
            if secret is None:
                raise HTTPException(401, "a bearer token is required "
                                         "(Authorization: Bearer TOKEN)",
                                    headers={"WWW-Authenticate": "Bearer"})
            token = tokens.find(secret)
            if token is None:
                raise HTTPException(401, "this token is not known",
                                    headers={"WWW-Authenticate": "Bearer"})
            if not may(token, least):
                raise HTTPException(403, f"{token.name} is {token.role}: this needs {least}")
            return token
        return check

    researcher = Depends(role("researcher"))
    archivist = Depends(role("archivist"))
    embargoes = retrieve.Embargoes(settings.policies_dir)

    def readable(token: Token = researcher) -> Hidden | None:
        return hidden_from(token, embargoes)

    visible = Depends(readable)

    error_page = add_pages(app, settings, engine, tokens, embargoes)

    def error(request: Request, status: int, message: str,
              headers: dict[str, str] | None = None) -> Response:
        """The one JSON error shape, or, for the web pages, an error page."""
        if is_page(request.url.path):
            return error_page(request, status, message)
        return _error(status, message, headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        return error(request, exc.status_code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first.get("loc", ()) if part != "body")
        return error(request, 400, f"{where}: {first.get('msg', 'not valid')}")

    @app.exception_handler(PreserveError)
    async def preserve_error(request: Request, exc: PreserveError) -> Response:
        status = 404 if isinstance(exc, NotFound) else 400 if isinstance(exc, BadInput) else 500
        return error(request, status, " ".join(str(exc).split()))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        # Whatever went wrong, the answer keeps the one error shape (and no traceback).
        return error(request, 500,
                     f"internal error ({type(exc).__name__}); the server's log has more")

    app.include_router(memento_routes(engine, stores, visible))
    app.include_router(cdx_routes(engine, visible))

    @app.get("/api/health")
    def health() -> dict[str, Any]:
        """Is the service up (no token needed)."""
        return {"ok": True, "version": __version__}

    @app.get("/api/captures")
    def captures(url: str,
                 match: Annotated[str, Query(pattern=f"^({'|'.join(MATCHES)})$")] = "exact",
                 from_: Annotated[datetime | None, Query(alias="from")] = None,
                 to: datetime | None = None, hidden: Hidden | None = visible) -> dict[str, Any]:
        """Captures of a URL (or, with ``match``, of every URL under its path or on its
        host), oldest first, between ``from`` and ``to``."""
        found = retrieve.search_snapshots(engine, url, match, _utc(from_), _utc(to),
                                          hidden=hidden)
        return {"captures": [retrieve.snapshot_json(snapshot) for snapshot in found]}

    @app.get("/api/search")
    def search(q: str, collection: str | None = None, publisher: str | None = None,
               from_: Annotated[datetime | None, Query(alias="from")] = None,
               to: datetime | None = None, status: int | None = None, mime: str | None = None,
               limit: Annotated[int, Query(gt=0, le=1000)] = 20,
               offset: Annotated[int, Query(ge=0)] = 0,
               hidden: Hidden | None = visible) -> dict[str, Any]:
        """Full-text search over extracted text, titles and publishers, best first, each
        result with a snippet (the matched words between « and »)."""
        total, hits = retrieve.search(
            engine, q, SearchFilters(collection, publisher, _utc(from_), _utc(to), status, mime),
            limit, offset, hidden)
        return {"total": total, "results": [retrieve.hit_json(hit) for hit in hits]}

    @app.get("/api/captures/nearest")
    def nearest(url: str, at: datetime | None = None,
                hidden: Hidden | None = visible) -> dict[str, Any]:
        """The capture of a URL nearest to ``at`` (default: the latest)."""
        return _with_copies(engine, retrieve.find_snapshot(engine, url, _utc(at), hidden))

    @app.get("/api/snapshots/{snapshot_id}")
    def snapshot(snapshot_id: int, hidden: Hidden | None = visible) -> dict[str, Any]:
        """A snapshot's metadata and description, and where its copies are."""
        return _with_copies(engine, retrieve.get_snapshot(engine, snapshot_id, hidden))

    @app.get("/api/snapshots/{snapshot_id}/text", response_class=PlainTextResponse)
    def text(snapshot_id: int, hidden: Hidden | None = visible) -> str:
        """The main text extracted from the snapshot's page."""
        return retrieve.get_snapshot(engine, snapshot_id, hidden).text or ""

    @app.get("/api/snapshots/{snapshot_id}/payload")
    def payload(snapshot_id: int, hidden: Hidden | None = visible) -> Response:
        """The original response body, with its original content type (read from a
        verified copy)."""
        found = retrieve.get_snapshot(engine, snapshot_id, hidden)
        body = retrieve.read_payload(retrieve.payload_record(engine, stores, found))
        return StreamingResponse(retrieve.chunks_then_close(body.body),
                                 headers=body.entity_headers())

    @app.get("/api/snapshots/{snapshot_id}/record")
    def record(snapshot_id: int, hidden: Hidden | None = visible) -> Response:
        """The snapshot's WARC record, as stored (one gzip member, read by range)."""
        found = retrieve.get_snapshot(engine, snapshot_id, hidden)
        return Response(retrieve.read_record(engine, stores, found),
                        media_type="application/warc",
                        headers={"Content-Disposition": f'attachment; filename="{snapshot_id}'
                                                        '.warc.gz"'})

    @app.post("/api/captures", status_code=202)
    def capture(asked: CaptureRequest, token: Token = archivist) -> dict[str, Any]:
        """Capture a URL now (as ``preserve capture`` does); the job to follow."""
        url = normalize_url(asked.url)
        check_collection(asked.collection)
        if asked.scope not in SCOPES:
            raise BadInput(f"scope: must be one of {', '.join(SCOPES)}, not {asked.scope!r}")
        params = asked.model_dump(exclude={"url"}, exclude_none=True)
        job_id = create_capture_job(engine, url, params, datetime.now(UTC))
        if dispatcher is not None:
            dispatcher.dispatch([job_id])
        return {"ok": True, "job": job_id, "asked_by": token.name}

    @app.get("/api/jobs/{job_id}", dependencies=[archivist])
    def job(job_id: str) -> dict[str, Any]:
        """A job's state, attempts, error and result."""
        return get_job(engine, job_id).as_dict()

    return app


def _with_copies(engine: Engine, snapshot: Snapshot) -> dict[str, Any]:
    data = retrieve.snapshot_detail(engine, snapshot)
    data["warc"]["fixity"] = object_fixity(engine, snapshot.warc_key)
    return data


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"ok": False, "error": message, "status": status}, status_code=status,
                        headers=headers)
