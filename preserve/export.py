"""Exports for researchers and other repositories.

``jsonl``: one line per described capture (a page whose text was extracted),
oldest first, with its metadata, its text, and where its record is: what text
mining wants. The lines stream from the catalog; a file is written whole or
not at all (into a temporary name, renamed at the end).

``bag``: a BagIt bag (RFC 8493) of a collection: its WARC files byte for byte,
each copied from a location whose copy hashes to the ingest digest, and the
JSON lines as ``metadata.jsonl``, with SHA-256 and SHA-512 manifests. The bag
is made under a temporary name beside ``out`` and renamed when it is whole.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import IO

import bagit  # type: ignore[import-untyped]
from sqlalchemy import Engine

from preserve import __version__
from preserve.catalog import StoredFile, described_captures, stored_files
from preserve.errors import BadInput, NotFound, PreserveError, StorageError
from preserve.fingerprint import iter_chunks, sha256_chunks
from preserve.retrieve import snapshot_json
from preserve.storage import ObjectStore


def export_jsonl(engine: Engine, out: Path | None, collection: str | None = None,
                 progress: Callable[[int], None] | None = None) -> int:
    """Write the JSON lines to ``out`` (None: standard output); how many lines."""
    if out is None:
        return _write_lines(engine, sys.stdout, collection, progress)
    folder = out.parent if str(out.parent) else Path(".")
    if not folder.is_dir():
        raise BadInput(f"export: {folder} is not a folder")
    try:
        handle, name = tempfile.mkstemp(prefix=f".{out.name}.", dir=folder)
    except OSError as exc:
        raise PreserveError(f"export: cannot write in {folder}: {exc.strerror}") from exc
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            count = _write_lines(engine, stream, collection, progress)
        os.replace(name, out)
    except OSError as exc:
        Path(name).unlink(missing_ok=True)
        raise PreserveError(f"export: cannot write {out}: "
                            f"{(exc.strerror or str(exc)).lower()}") from exc
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    return count


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
    if out.exists():
        raise BadInput(f"export: {out} exists already; name a new folder")
    folder = out.parent if str(out.parent) else Path(".")
    if not folder.is_dir():
        raise BadInput(f"export: {folder} is not a folder")
    with engine.connect() as connection:
        files = stored_files(connection, collection=collection)
    if not files:
        raise NotFound(f"export: collection {collection!r} has no stored WARC files")
    try:
        building = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=folder))
    except OSError as exc:
        raise PreserveError(f"export: cannot write in {folder}: {exc.strerror}") from exc
    try:
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
        os.replace(building, out)
    except OSError as exc:
        shutil.rmtree(building, ignore_errors=True)
        raise PreserveError(f"export: cannot write {out}: "
                            f"{(exc.strerror or str(exc)).lower()}") from exc
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    return len(files)


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
                digest, _size = sha256_chunks(_written(iter_chunks(source), copy))
        except StorageError as exc:
            problems.append(f"{location}: {exc}")
            continue
        if digest == stored.sha256:
            return
        problems.append(f"{location}: sha256:{digest}, not the ingest digest")
    raise PreserveError(f"export: no good copy of {stored.key} "
                        f"({'; '.join(problems) or 'no configured location holds one'}); "
                        "run preserve fixity run --repair")


def _written(chunks: Iterator[bytes], copy: IO[bytes]) -> Iterator[bytes]:
    """The chunks, each written to ``copy`` as it passes (hashed and copied in one read)."""
    for chunk in chunks:
        copy.write(chunk)
        yield chunk
