"""The catalog: an index of what storage holds, rebuilt from it if need be."""

from preserve.catalog.engine import catalog_reason, migrate, open_engine, write_transaction
from preserve.catalog.lookups import (
    Hidden,
    IndexEntry,
    PayloadFinder,
    Snapshot,
    StoredFile,
    capture_by_id,
    captures_of,
    captures_under,
    file_copies,
    first_capture_of_payload,
    index_entries,
    nearest_capture,
    original_capture,
    stored_files,
    undescribed,
)
from preserve.catalog.records import record_warc_file

__all__ = [
    "Hidden",
    "IndexEntry",
    "PayloadFinder",
    "Snapshot",
    "StoredFile",
    "capture_by_id",
    "captures_of",
    "captures_under",
    "catalog_reason",
    "file_copies",
    "first_capture_of_payload",
    "index_entries",
    "migrate",
    "nearest_capture",
    "open_engine",
    "original_capture",
    "record_warc_file",
    "stored_files",
    "undescribed",
    "write_transaction",
]
