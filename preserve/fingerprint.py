"""Digests: SHA-256 of whole objects, SHA-1 base32 labels for WARC records.

Whole objects (sealed WARC files) are identified by SHA-256 hex. WARC record
digests stay SHA-1 base32 (``sha1:...``), the form pywb, CDX indexes and most
deduplication databases expect.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

CHUNK_SIZE = 1024 * 1024
_WORDS = re.compile(r"\w+")
# Two texts whose simhashes differ in at most this many of 64 bits are near-identical:
# the same text but for a word or two of a long text (a date, a counter, a typo).
NEAR_BITS = 6


def iter_chunks(stream: IO[bytes], size: int = CHUNK_SIZE,
                limit: int | None = None) -> Iterator[bytes]:
    """Read a stream in chunks until it is exhausted (or ``limit`` bytes are read)."""
    left = limit
    while left is None or left > 0:
        chunk = stream.read(size if left is None else min(size, left))
        if not chunk:
            return
        if left is not None:
            left -= len(chunk)
        yield chunk


class Tally:
    """SHA-256 and byte count of the chunks that pass through :meth:`passing`, so that
    one read of a file both hashes it and feeds a reader."""

    def __init__(self) -> None:
        self.digest = hashlib.sha256()
        self.size = 0

    def passing(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        for chunk in chunks:
            self.digest.update(chunk)
            self.size += len(chunk)
            yield chunk

    def hexdigest(self) -> str:
        return self.digest.hexdigest()


def sha256_chunks(chunks: Iterable[bytes]) -> tuple[str, int]:
    """SHA-256 hex and byte count of a sequence of chunks."""
    tally = Tally()
    for _chunk in tally.passing(chunks):
        pass
    return tally.hexdigest(), tally.size


def sha256_copy(source: IO[bytes], out: IO[bytes]) -> tuple[str, int]:
    """Copy a stream into another; SHA-256 hex and byte count of what was copied, taken
    in the same read."""
    tally = Tally()
    for chunk in tally.passing(iter_chunks(source)):
        out.write(chunk)
    return tally.hexdigest(), tally.size


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


def simhash(text: str) -> str:
    """A text's 64-bit simhash (Charikar) over its three-word shingles, as 16 hex digits.

    Texts that share most shingles get hashes a few bits apart; a real change of
    the text moves many bits. Case and punctuation are ignored. Each shingle's hash
    is BLAKE2b's first 8 bytes; a bit is set where more shingles have it set than not.
    """
    import numpy  # here, not above: only description needs it

    words = _WORDS.findall(text.lower())
    shingles = {" ".join(words[at:at + 3]) for at in range(max(1, len(words) - 2))} - {""}
    if not shingles:
        return "0" * 16
    digests = b"".join(hashlib.blake2b(shingle.encode("utf-8"), digest_size=8).digest()
                       for shingle in shingles)
    bits = numpy.unpackbits(numpy.frombuffer(digests, dtype=numpy.uint8)).reshape(-1, 64)
    majority = bits.sum(axis=0, dtype=numpy.int64) * 2 > len(shingles)
    return numpy.packbits(majority).tobytes().hex()


def simhash_distance(first: str, second: str) -> int:
    """How many of the 64 bits two simhashes (hex) differ in."""
    return (int(first, 16) ^ int(second, 16)).bit_count()
