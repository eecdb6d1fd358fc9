"""Digests: SHA-256 of whole objects, SHA-1 base32 labels for WARC records.

Whole objects (sealed WARC files) are identified by SHA-256 hex. WARC record
digests stay SHA-1 base32 (``sha1:...``), the form pywb, CDX indexes and most
deduplication databases expect.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

CHUNK_SIZE = 1024 * 1024


def iter_chunks(stream: IO[bytes], size: int = CHUNK_SIZE) -> Iterator[bytes]:
    """Read a stream in chunks until it is exhausted."""
    while chunk := stream.read(size):
        yield chunk


def sha256_chunks(chunks: Iterable[bytes]) -> tuple[str, int]:
    """SHA-256 hex and byte count of a sequence of chunks."""
    digest = hashlib.sha256()
    size = 0
    for chunk in chunks:
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


def sha256_file(path: Path) -> tuple[str, int]:
    """SHA-256 hex and size of a file, read in chunks."""
    with path.open("rb") as stream:
        return sha256_chunks(iter_chunks(stream))


def sha256_text(text: str) -> str:
    """SHA-256 hex of a text's UTF-8 bytes (the ``text_sha256`` of a description)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def warc_digest_label(digest: hashlib._Hash) -> str:
    """A WARC digest header value: ``sha1:`` and the base32 of the digest."""
    return f"{digest.name}:{base64.b32encode(digest.digest()).decode('ascii')}"


def http_digests(stream: IO[bytes], header_size: int) -> tuple[str, str]:
    """WARC block and payload digests of an HTTP message whose headers take header_size bytes.

    The block is the whole message; the payload is what follows the headers.
    """
    stream.seek(0)
    block = hashlib.sha1()
    payload = hashlib.sha1()
    seen = 0
    for chunk in iter_chunks(stream):
        block.update(chunk)
        if seen + len(chunk) > header_size:
            payload.update(chunk[max(0, header_size - seen):])
        seen += len(chunk)
    stream.seek(0)
    return warc_digest_label(block), warc_digest_label(payload)
