"""Replay through pywb, from our storage, through our CDX index (``preserve replay``).

We do not write a rewriting engine: pywb (the replay engine archives already
run) replays, and takes everything from us. ``preserve replay`` serves, on a
loopback port only pywb uses, the CDX server (the same route as the API's
``/cdx``) and the WARC files by name with ranged reads (``/warcs/NAME``, each read
from a location holding a verified copy, S3 or filesystem alike). It writes a
pywb configuration whose one collection, ``replay``, takes its index and its
records from there, and runs pywb's ``wayback`` in front. pywb then answers
``/replay/TIMESTAMP/URL`` with the page as captured, its images and styles
from the archive.

Replay shows what a researcher may see: captures under embargo stay hidden.
pywb has no sign-in of its own; put it behind the same front door as the API
when it faces the Internet.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path

import uvicorn
import yaml
from fastapi import Depends, FastAPI, Header, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from sqlalchemy import Engine, select

from preserve import retrieve
from preserve.api import listening_socket
from preserve.api.cdx import cdx_routes
from preserve.catalog import Hidden, stored_files
from preserve.catalog.schema import warc_files
from preserve.config import Settings
from preserve.errors import BadInput, ConfigError, NotFound, PreserveError
from preserve.storage import ObjectStore, open_stores
from preserve.web.pages import REPLAY_COLLECTION

_RANGE = re.compile(r"bytes=(\d+)-(\d*)")


def index_app(settings: Settings, engine: Engine) -> FastAPI:
    """What pywb reads: ``/cdx`` (as the API's, as a researcher sees it) and ``/warcs/NAME``
    (a WARC file by the name the CDX lines give, with HTTP ranges)."""
    app = FastAPI(title="preserve replay index", openapi_url=None)
    stores = open_stores(settings.locations)
    embargoes = retrieve.Embargoes(settings.policies_dir)

    def researcher_view() -> Hidden | None:
        return embargoes.hidden(datetime.now(UTC))

    app.include_router(cdx_routes(engine, Depends(researcher_view)))

    @lru_cache(maxsize=4096)
    def key_named(name: str) -> str:
        with engine.connect() as connection:
            keys = connection.execute(select(warc_files.c.key).where(
                (warc_files.c.key == name)
                | warc_files.c.key.endswith("/" + name, autoescape=True))).scalars().all()
        if len(keys) != 1:
            raise NotFound(f"no single catalogued WARC file is named {name} "
                           f"({len(keys)} are)")
        return str(keys[0])

    @app.exception_handler(PreserveError)
    async def failed(_request: Request, exc: PreserveError) -> JSONResponse:
        status = 404 if isinstance(exc, NotFound) else 416 if isinstance(exc, BadInput) else 502
        return JSONResponse({"ok": False, "error": str(exc), "status": status},
                            status_code=status)

    @app.api_route("/warcs/{name}", methods=["GET", "HEAD"])
    def warc(name: str, range_: str | None = Header(None, alias="range")) -> Response:
        key = key_named(name)
        with engine.connect() as connection:
            (stored,) = stored_files(connection, key=key)
        if range_ is None:
            store = _first_store(stored.locations, stores, key)
            return StreamingResponse(retrieve.chunks_then_close(store.open(key)),
                                     media_type="application/warc",
                                     headers={"Content-Length": str(stored.size)})
        found = _RANGE.fullmatch(range_.strip())
        if found is None or int(found.group(1)) >= stored.size:
            raise BadInput(f"{name}: range {range_!r} is not one range of its "
                           f"{stored.size} bytes")
        start = int(found.group(1))
        end = min(int(found.group(2)) if found.group(2) else stored.size - 1, stored.size - 1)
        data = retrieve.read_range(stores, stored.locations, key, start, end - start + 1)
        return Response(data, status_code=206, media_type="application/warc", headers={
            "Content-Range": f"bytes {start}-{end}/{stored.size}",
            "Accept-Ranges": "bytes"})

    return app


def _first_store(locations: tuple[str, ...], stores: Mapping[str, ObjectStore],
                 key: str) -> ObjectStore:
    for location in locations:
        if location in stores:
            return stores[location]
    raise NotFound(f"{key}: no configured location holds a copy")


def find_wayback(settings: Settings) -> str:
    """pywb's ``wayback`` command: the setting, then PATH, then the project's .venv-tools."""
    candidates = [settings.replay.wayback] if settings.replay.wayback else [
        shutil.which("wayback"), str(Path(".venv-tools/bin/wayback").absolute())]
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise ConfigError("replay: pywb's wayback command was not found"
                      + (f" at {settings.replay.wayback}" if settings.replay.wayback else
                         " on PATH or in .venv-tools/bin")
                      + "; install pywb (in its own environment: python -m venv V && "
                        "V/bin/pip install pywb) and set replay.wayback or PRESERVE_WAYBACK")


def pywb_config(index_url: str) -> dict[str, object]:
    """pywb's config.yaml: one collection whose index and records come from ``index_url``."""
    return {
        "collections": {REPLAY_COLLECTION: {
            "index": f"cdx+{index_url}/cdx",
            "archive_paths": f"{index_url}/warcs/",
        }},
        "framed_replay": True,
        "enable_memento": True,
    }


def run_replay(settings: Settings, engine: Engine, host: str, port: int,
               stop: threading.Event | None = None) -> int:
    """Serve the index on a loopback port, run pywb on ``host:port`` in front of it, until
    pywb ends or SIGTERM/Ctrl-C (or ``stop``); pywb's exit status."""
    wayback = find_wayback(settings)
    with listening_socket(host, port, "replay"):
        pass  # the public port is free: say so now, in one line, rather than in pywb's log
    listening = socket.create_server(("127.0.0.1", 0))
    index_url = f"http://127.0.0.1:{listening.getsockname()[1]}"
    server = uvicorn.Server(uvicorn.Config(index_app(settings, engine), log_level="warning"))
    serving = threading.Thread(target=server.run, kwargs={"sockets": [listening]},
                               name="replay-index", daemon=True)
    serving.start()
    folder = Path(tempfile.mkdtemp(prefix="preserve-replay-"))
    ended = stop or threading.Event()
    try:
        (folder / "config.yaml").write_text(yaml.safe_dump(pywb_config(index_url)))
        pywb = subprocess.Popen([wayback, "-b", host, "-p", str(port)], cwd=folder)
        previous = signal.signal(signal.SIGTERM, lambda *_: ended.set()) \
            if threading.current_thread() is threading.main_thread() else None
        print(f"replay: http://{host}:{port}/{REPLAY_COLLECTION}/TIMESTAMP/URL "
              f"(pywb, index and records from {index_url})", flush=True)
        try:
            while pywb.poll() is None and not ended.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
        finally:
            if pywb.poll() is None:
                pywb.terminate()
                try:
                    pywb.wait(10)
                except subprocess.TimeoutExpired:
                    pywb.kill()
                    pywb.wait()
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)
        return 0 if ended.is_set() else (pywb.returncode or 0)
    finally:
        server.should_exit = True
        serving.join(10)
        listening.close()
        shutil.rmtree(folder, ignore_errors=True)
