"""Exports for researchers and other repositories.

``jsonl``: one line per described capture (a page whose text was extracted),
oldest first, with its metadata, its text, and where its record is: what text
mining wants. The lines stream from the catalog; a file is written whole or
not at all (into a temporary name, renamed at the end).

``bag``: a BagIt bag (RFC 8493) of a collection: its WARC files byte for byte,
each copied from a location whose copy hashes to the ingest digest, and the
JSON lines as ``metadata.jsonl``, with SHA-256 and SHA-512 manifests. The bag
is made under a temporary name beside ``out`` and renamed when it is whole.

``wacz``: a WACZ 1.1.1 package of a collection (what ReplayWeb.page and
pywb open): its WARC files in ``archive/`` (stored, not deflated, each copied
from a verified copy), ``indexes/index.cdxj`` (the lines the CDX server gives),
``pages/pages.jsonl`` (each described page with its title and text), and
``datapackage.json`` with every file's SHA-256 and size, itself digested in
``datapackage-digest.json``. Everything streams into the ZIP; it is written
under a temporary name and renamed when whole.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import bagit  # type: ignore[import-untyped]
from sqlalchemy import Engine

from preserve import __version__
from preserve.catalog import (
    Snapshot,
    StoredFile,
    collection_index,
    described_captures,
    stored_files,
)
from preserve.errors import BadInput, NotFound, PreserveError, StorageError
from preserve.fingerprint import sha256_copy
from preserve.retrieve import snapshot_json
from preserve.storage import ObjectStore


def export_jsonl(engine: Engine, out: Path | None, collection: str | None = None,
                 progress: Callable[[int], None] | None = None) -> int:
    """Write the JSON lines to ``out`` (None: standard output); how many lines."""
    if out is None:
        return _write_lines(engine, sys.stdout, collection, progress)
    folder = _folder_of(out)
    try:
        handle, name = tempfile.mkstemp(prefix=f".{out.name}.", dir=folder)
    except OSError as exc:
        raise PreserveError(f"export: cannot write in {folder}: {exc.strerror}") from exc
    with _whole_or_nothing(Path(name), out, _unlink), \
            os.fdopen(handle, "w", encoding="utf-8") as stream:
        return _write_lines(engine, stream, collection, progress)


def _write_lines(engine: Engine, stream: IO[str], collection: str | None,
                 progress: Callable[[int], None] | None) -> int:
    count = 0
    with engine.connect() as connection:
        for snapshot in described_captures(connection, collection):
            stream.write(json.dumps(snapshot_json(snapshot), ensure_ascii=False) + "\n")
            count += 1
            if progress is not None and count % 1000 == 0:
                progress(count)
    stream.flush()
    return count


def export_bag(engine: Engine, stores: Mapping[str, ObjectStore], collection: str, out: Path,
               progress: Callable[[int, int], None] | None = None) -> int:
    """Make the collection's bag at ``out`` (which must not exist); how many WARC files."""
    folder, files = _package_files(engine, collection, out, "folder")
    try:
        building = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=folder))
    except OSError as exc:
        raise PreserveError(f"export: cannot write in {folder}: {exc.strerror}") from exc
    with _whole_or_nothing(building, out, _remove_tree):
        for number, stored in enumerate(files, 1):
            _copy_verified(stored, stores, building / "warcs" / stored.key)
            if progress is not None:
                progress(number, len(files))
        with (building / "metadata.jsonl").open("w", encoding="utf-8") as stream:
            _write_lines(engine, stream, collection, None)
        bagit.make_bag(str(building), {
            "External-Description": f"The WARC files of collection {collection}, as preserve "
                                    "stores them, and their descriptions (metadata.jsonl).",
            "Bag-Software-Agent": f"preserve {__version__}",
        }, checksums=["sha256", "sha512"])
    return len(files)


def _folder_of(out: Path) -> Path:
    folder = out.parent if str(out.parent) else Path(".")
    if not folder.is_dir():
        raise BadInput(f"export: {folder} is not a folder")
    return folder


def _package_files(engine: Engine, collection: str, out: Path,
                   kind: str) -> tuple[Path, list[StoredFile]]:
    """Where a package of the collection is built (``out``'s folder), and its WARC files."""
    if out.exists():
        raise BadInput(f"export: {out} exists already; name a new {kind}")
    folder = _folder_of(out)
    with engine.connect() as connection:
        files = stored_files(connection, collection=collection)
    if not files:
        raise NotFound(f"export: collection {collection!r} has no stored WARC files")
    return folder, files


@contextmanager
def _whole_or_nothing(building: Path, out: Path,
                      remove: Callable[[Path], None]) -> Iterator[None]:
    """Rename ``building`` to ``out`` when the block ends well; otherwise remove it."""
    try:
        yield
        os.replace(building, out)
    except OSError as exc:
        remove(building)
        raise PreserveError(f"export: cannot write {out}: "
                            f"{(exc.strerror or str(exc)).lower()}") from exc
    except BaseException:
        remove(building)
        raise


def _unlink(path: Path) -> None:
    path.unlink(missing_ok=True)


def _remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


WACZ_VERSION = "1.1.1"


def export_wacz(engine: Engine, stores: Mapping[str, ObjectStore], collection: str, out: Path,
                progress: Callable[[int, int], None] | None = None) -> int:
    """Write the collection's WACZ package to ``out`` (which must not exist); how many
    WARC files it holds."""
    folder, files = _package_files(engine, collection, out, "file")
    names: dict[str, str] = {}
    for stored in files:
        name = stored.key.rsplit("/", 1)[-1]
        if name.endswith(".wacz"):
            raise PreserveError(f"export: {stored.key} is an imported WACZ; a WACZ of "
                                "collections holding one is not supported yet (export bag "
                                "copies it whole)")
        if name in names:
            raise PreserveError(f"export: {stored.key} and {names[name]} have the same name; "
                                "a WACZ holds its WARC files side by side")
        names[name] = stored.key
    try:
        handle, building = tempfile.mkstemp(prefix=f".{out.name}.", dir=folder)
        os.close(handle)
    except OSError as exc:
        raise PreserveError(f"export: cannot write in {folder}: {exc.strerror}") from exc
    with _whole_or_nothing(Path(building), out, _unlink), \
            zipfile.ZipFile(building, "w", zipfile.ZIP_STORED, allowZip64=True) as package:
        resources = []
        for number, stored in enumerate(files, 1):
            resources.append(_add_warc(package, stored, stores, folder))
            if progress is not None:
                progress(number, len(files))
        with engine.connect() as connection:
            resources.append(_add_lines(package, "indexes/index.cdxj", (
                entry.line() for entry in collection_index(connection, collection))))
            resources.append(_add_lines(package, "pages/pages.jsonl", _pages(
                described_captures(connection, collection))))
        datapackage = json.dumps({
            "profile": "data-package",
            "wacz_version": WACZ_VERSION,
            "title": collection,
            "created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "software": f"preserve {__version__}",
            "resources": resources,
        }, indent=2).encode()
        package.writestr("datapackage.json", datapackage)
        package.writestr("datapackage-digest.json", json.dumps({
            "path": "datapackage.json",
            "hash": "sha256:" + hashlib.sha256(datapackage).hexdigest(),
        }, indent=2))
    return len(files)


def _add_warc(package: zipfile.ZipFile, stored: StoredFile,
              stores: Mapping[str, ObjectStore], folder: Path) -> dict[str, Any]:
    """Copy a WARC file from a verified copy into ``archive/``; its datapackage resource.
    The copy is staged beside the package first, so a copy that turns out bad can be
    dropped and another location tried."""
    name = stored.key.rsplit("/", 1)[-1]
    staging = Path(tempfile.mkdtemp(prefix=".wacz-warc.", dir=folder))
    try:
        _copy_verified(stored, stores, staging / name)
        package.write(staging / name, f"archive/{name}")
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return {"name": name, "path": f"archive/{name}", "hash": f"sha256:{stored.sha256}",
            "bytes": stored.size}


def _add_lines(package: zipfile.ZipFile, path: str, lines: Iterator[str]) -> dict[str, Any]:
    """Stream lines into the package at ``path``; its datapackage resource."""
    digest, size = hashlib.sha256(), 0
    with package.open(path, "w", force_zip64=True) as entry:
        for line in lines:
            data = (line + "\n").encode("utf-8")
            entry.write(data)
            digest.update(data)
            size += len(data)
    return {"name": path.rsplit("/", 1)[-1], "path": path,
            "hash": f"sha256:{digest.hexdigest()}", "bytes": size}


def _pages(snapshots: Iterator[Snapshot]) -> Iterator[str]:
    """``pages.jsonl``: its header, then each described page (URL, time, title, text)."""
    yield json.dumps({"format": "json-pages-1.0", "id": "pages", "title": "All Pages",
                      "hasText": True})
    for snapshot in snapshots:
        page: dict[str, Any] = {"id": str(snapshot.id), "url": snapshot.url,
                "ts": snapshot.capture_time.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
        if snapshot.title:
            page["title"] = snapshot.title
        if snapshot.text:
            page["text"] = snapshot.text
        yield json.dumps(page, ensure_ascii=False)


def _copy_verified(stored: StoredFile, stores: Mapping[str, ObjectStore], target: Path) -> None:
    """Copy a WARC file from the first location whose bytes hash to its ingest digest."""
    target.parent.mkdir(parents=True, exist_ok=True)
    problems = []
    for location in stored.locations:
        store = stores.get(location)
        if store is None:
            continue
        try:
            with store.open(stored.key) as source, target.open("wb") as copy:
                digest, _size = sha256_copy(source, copy)
        except StorageError as exc:
            problems.append(f"{location}: {exc}")
            continue
        if digest == stored.sha256:
            return
        problems.append(f"{location}: sha256:{digest}, not the ingest digest")
    raise PreserveError(f"export: no good copy of {stored.key} "
                        f"({'; '.join(problems) or 'no configured location holds one'}); "
                        "run preserve fixity run --repair")
