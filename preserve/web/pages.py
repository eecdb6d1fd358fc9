"""The web pages: search, a URL's captures as a timeline, a snapshot, the audits.

Server-rendered from the templates beside this module, with one style sheet and
no JavaScript. They read what the API reads, through the same functions, with the
same roles and embargo; a browser signs in at ``/login`` with its token (kept in
the login cookie, see ``preserve.api.auth``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from itertools import groupby
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlencode

from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from markupsafe import Markup, escape
from sqlalchemy import Engine

from preserve import __version__, retrieve
from preserve.api.auth import COOKIE, Tokens, hidden_from, may, presented
from preserve.catalog import SearchFilters, SearchHit, stored_files
from preserve.config import Settings, Token
from preserve.errors import BadInput
from preserve.fixity import fixity_report, object_fixity, recent_runs
from preserve.numbers import is_digits

HERE = Path(__file__).parent
PAGE_SIZE = 20
REPLAY_COLLECTION = "replay"  # pywb's collection name under `preserve replay`
PAGES = ("/", "/login", "/logout", "/captures", "/snapshots", "/audits")
_MARKED = re.compile("«([^«»]*)»")


class SignInNeeded(Exception):
    """A page was asked for without a known token: the browser goes to /login."""


class PageError(Exception):
    """A page cannot be shown: its status and why, as a page."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def is_page(path: str) -> bool:
    """Is this path one of the web pages (whose errors are pages, not JSON)?"""
    return path == "/" or any(path == page or path.startswith(page + "/")
                              for page in PAGES[1:])


def add_pages(app: FastAPI, settings: Settings, engine: Engine, tokens: Tokens,
              embargoes: retrieve.Embargoes) -> Callable[[Request, int, str], Response]:
    """Add the pages to ``app``; return how a page shows an error (for the app's handlers)."""
    templates = Jinja2Templates(directory=HERE / "templates")
    templates.env.filters["marked"] = _marked
    templates.env.filters["when"] = _when
    templates.env.globals.update(version=__version__, replay_url=settings.replay.url,
                                 replay_collection=REPLAY_COLLECTION, quote=quote)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    def viewer(least: str) -> Callable[[Request], Token]:
        def check(request: Request) -> Token:
            secret = presented(request)
            token = tokens.find(secret) if secret else None
            if token is None:
                raise SignInNeeded()
            if not may(token, least):
                raise PageError(403, f"{token.name} is {token.role}: this page needs {least}")
            return token
        return check

    researcher = Depends(viewer("researcher"))
    auditor = Depends(viewer("auditor"))

    def render(request: Request, name: str, token: Token | None, code: int = 200,
               **context: Any) -> HTMLResponse:
        return templates.TemplateResponse(
            request, name, {"user": token, "auditor": token is not None and
                            may(token, "auditor"), **context}, status_code=code)

    def error_page(request: Request, status: int, message: str) -> Response:
        return render(request, "error.html", None, status, status=status, message=message)

    async def sign_in_needed(request: Request, _exc: Exception) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse("/login?" + urlencode({"next": target}), status_code=303)

    async def page_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, PageError)
        return error_page(request, exc.status, str(exc))

    app.add_exception_handler(SignInNeeded, sign_in_needed)
    app.add_exception_handler(PageError, page_error)

    @app.get("/login", response_class=HTMLResponse, include_in_schema=False)
    def login_form(request: Request, next: str = "/") -> HTMLResponse:
        return render(request, "login.html", None, next=_local(next), problem=None)

    @app.post("/login", include_in_schema=False)
    async def login(request: Request) -> Response:
        form = parse_qs((await request.body()).decode("utf-8", "replace"))
        secret = (form.get("token") or [""])[0].strip()
        target = _local((form.get("next") or ["/"])[0])
        token = tokens.find(secret) if secret else None
        if token is None:
            return render(request, "login.html", None, 401, next=target,
                          problem="This token is not known.")
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(COOKIE, secret, httponly=True, samesite="strict",
                            secure=request.url.scheme == "https", path="/")
        return response

    @app.post("/logout", include_in_schema=False)
    def logout() -> Response:
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE, path="/")
        return response

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def search_page(request: Request, token: Token = researcher,
                    offset: int = 0) -> HTMLResponse:
        """Search with filters (q, collection, publisher, from, to, status, mime)."""
        args = request.query_params
        asked = {key: args.get(key, "").strip() for key in
                 ("q", "collection", "publisher", "from", "to", "status", "mime")}
        total, hits, problem = 0, list[SearchHit](), None
        if asked["q"]:
            try:
                filters = SearchFilters(
                    asked["collection"] or None, asked["publisher"] or None,
                    _day(asked["from"], "from"), _day(asked["to"], "to", end=True),
                    _status(asked["status"]), asked["mime"] or None)
                total, hits = retrieve.search(engine, asked["q"], filters, PAGE_SIZE,
                                              max(offset, 0), hidden_from(token, embargoes))
            except BadInput as exc:
                problem = str(exc)
        pages = {"previous": offset - PAGE_SIZE if offset > 0 else None,
                 "next": offset + PAGE_SIZE if offset + PAGE_SIZE < total else None}
        return render(request, "search.html", token, asked=asked, total=total, hits=hits,
                      offset=max(offset, 0), pages=pages, problem=problem,
                      link=lambda at: "/?" + urlencode({**asked, "offset": at}))

    @app.get("/captures", response_class=HTMLResponse, include_in_schema=False)
    def timeline(request: Request, url: str = "", match: str = "exact",
                 token: Token = researcher) -> HTMLResponse:
        if match not in ("exact", "prefix", "host"):
            raise PageError(400, f"match must be exact, prefix or host, not {match!r}")
        found = (retrieve.search_snapshots(engine, url, match, hidden=hidden_from(token, embargoes))
                 if url.strip() else [])
        years = [(year, list(group)) for year, group in
                 groupby(found, key=lambda snapshot: snapshot.capture_time.year)]
        most = max((len(group) for _, group in years), default=1)
        return render(request, "timeline.html", token, url=url, match=match, found=found,
                      years=years, most=most)

    @app.get("/snapshots/{snapshot_id}", response_class=HTMLResponse, include_in_schema=False)
    def snapshot_page(request: Request, snapshot_id: int,
                      token: Token = researcher) -> HTMLResponse:
        snapshot = retrieve.get_snapshot(engine, snapshot_id, hidden_from(token, embargoes))
        verified, missing = retrieve.copies_of(engine, snapshot)
        checks = {check["location"]: check for check in object_fixity(engine,
                                                                       snapshot.warc_key)}
        stamp = snapshot.capture_time.astimezone(UTC).strftime("%Y%m%d%H%M%S")
        return render(request, "snapshot.html", token, snapshot=snapshot, verified=verified,
                      missing=missing, checks=checks, stamp=stamp)

    @app.get("/audits", response_class=HTMLResponse, include_in_schema=False)
    def audits(request: Request, token: Token = auditor) -> HTMLResponse:
        report = fixity_report(engine, since=datetime.now(UTC) - timedelta(days=30))
        with engine.connect() as connection:
            under = [stored for stored in stored_files(connection) if stored.missing]
        return render(request, "audits.html", token, report=report, runs=recent_runs(engine),
                      under=under)

    return error_page


def _local(target: str) -> str:
    """Where to go after signing in: a path on this site, never another site."""
    return target if target.startswith("/") and not target.startswith("//") else "/"


def _day(text: str, name: str, end: bool = False) -> datetime | None:
    """A date from a form (YYYY-MM-DD) as the first (or, for ``end``, the last) moment of
    that day in UTC."""
    if not text:
        return None
    try:
        day = date.fromisoformat(text)
    except ValueError as exc:
        raise BadInput(f"{name}: {text!r} is not a date (YYYY-MM-DD)") from exc
    return datetime.combine(day, time.max if end else time.min, tzinfo=UTC)


def _status(text: str) -> int | None:
    if not text:
        return None
    if not is_digits(text):
        raise BadInput(f"status: {text!r} is not an HTTP status")
    return int(text)


def _when(iso: str) -> str:
    """An ISO 8601 UTC time as people read it: ``2026-11-28 07:25:29 UTC``."""
    return iso[:19].replace("T", " ") + " UTC"


def _marked(snippet: str) -> Markup:
    """A search snippet with its matched words (between « and ») in ``<mark>``."""
    return Markup(_MARKED.sub(lambda match: f"<mark>{match.group(1)}</mark>",
                              str(escape(snippet))))
