"""Exports for researchers and other repositories.

``jsonl``: one line per described capture (a page whose text was extracted),
oldest first, with its metadata, its text, and where its record is: what text
mining wants. The lines stream from the catalog; a file is written whole or
not at all (into a temporary name, renamed at the end).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

from sqlalchemy import Engine

from preserve.catalog import described_captures
from preserve.errors import BadInput, PreserveError
from preserve.retrieve import snapshot_json


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
