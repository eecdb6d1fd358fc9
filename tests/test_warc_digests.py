"""Deep fixity's one-pass WARC reader: record framing, digests in every encoding, damage named.

Files are written here with warcio (a writer we did not write), or come from
other projects' test suites (tests/data/PROVENANCE.md).
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import tracemalloc
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest
from warcio.archiveiterator import ArchiveIterator
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from preserve.warc_digests import RecordCheck, RecordProblem, verify_records

DATA = Path(__file__).parent / "data"


def write_warc(bodies: list[bytes], gzip_members: bool = True, digest: str = "sha1",
               encoding: str = "base32") -> bytes:
    """A WARC of HTTP responses (with warcio's block and payload digests) and one resource."""
    out = io.BytesIO()
    writer = WARCWriter(out, gzip=gzip_members, warc_version="1.1")
    for number, body in enumerate(bodies):
        headers = StatusAndHeaders("200 OK", [("Content-Type", "text/html"),
                                              ("Content-Length", str(len(body)))],
                                   protocol="HTTP/1.1")
        record = writer.create_warc_record(f"http://example.test/{number}", "response",
                                           payload=io.BytesIO(body), http_headers=headers)
        writer.write_record(record)
    writer.write_record(writer.create_warc_record(
        "http://example.test/notes.txt", "resource", payload=io.BytesIO(b"plain notes\n"),
        warc_content_type="text/plain"))
    data = out.getvalue()
    if digest != "sha1" or encoding != "base32":
        data = redigest(data, gzip_members, digest, encoding)
    return data


def redigest(data: bytes, gzip_members: bool, algorithm: str, encoding: str) -> bytes:
    """The same records with their digests taken again in another algorithm and encoding."""
    out = io.BytesIO()
    for record in ArchiveIterator(io.BytesIO(data), no_record_parse=True):
        block = record.raw_stream.read()
        split = block.find(b"\r\n\r\n") + 4 if record.rec_type == "response" else 0
        headers = record.rec_headers
        for name, part in (("WARC-Block-Digest", block), ("WARC-Payload-Digest", block[split:])):
            digest = hashlib.new(algorithm, part).digest()
            value = {"base32": base64.b32encode(digest).decode(), "hex": digest.hex(),
                     "base64": base64.b64encode(digest).decode()}[encoding]
            headers.replace_header(name, f"{algorithm}:{value}")
        raw = headers.to_bytes() + block + b"\r\n\r\n"
        out.write(gzip.compress(raw) if gzip_members else raw)
    return out.getvalue()


def check(data: bytes, chunk: int = 4096) -> tuple[list[RecordProblem], int]:
    counter = RecordCheck()
    pieces = [data[at:at + chunk] for at in range(0, len(data), chunk)]
    return list(verify_records(pieces, counter)), counter.records


def member_offsets(data: bytes) -> list[int]:
    iterator = ArchiveIterator(io.BytesIO(data), no_record_parse=True)
    offsets = []
    for _record in iterator:
        offsets.append(iterator.get_record_offset())
    return offsets


@pytest.mark.parametrize("gzip_members", [True, False])
@pytest.mark.parametrize(("digest", "encoding"), [("sha1", "base32"), ("sha256", "hex"),
                                                  ("sha256", "base64"), ("md5", "base32")])
def test_sound_records_pass_in_every_digest_encoding(gzip_members: bool, digest: str,
                                                     encoding: str) -> None:
    data = write_warc([b"<p>one</p>", b"x" * 300_000, b""], gzip_members, digest, encoding)
    problems, records = check(data)
    assert problems == [] and records == 4


@pytest.mark.parametrize("gzip_members", [True, False])
def test_a_changed_payload_byte_names_its_record_and_offset(gzip_members: bool) -> None:
    bodies = [b"<p>first</p>", b"<p>second page</p>" * 100, b"<p>third</p>"]
    data = write_warc(bodies, gzip_members)
    offsets = member_offsets(data)
    if gzip_members:
        data = change_member(data, 1, lambda record: record.replace(b"second page",
                                                                   b"second PAGE", 1))
    else:
        data = data.replace(b"second page", b"second PAGE", 1)
    problems, records = check(data)
    assert records == 4
    assert {(p.uri, p.offset) for p in problems} == {("http://example.test/1", offsets[1])}
    assert {p.expected.split(":")[0] for p in problems} == {"sha1"}
    assert len(problems) == 2  # the block's digest and the payload's


def test_a_record_larger_than_a_slice_is_hashed_across_pieces() -> None:
    body = bytes(range(256)) * 20_000  # 5 MB: several inflated slices
    data = write_warc([body])
    assert check(data, chunk=1 << 20) == ([], 2)
    damaged = change_member(data, 0, lambda record: record[:-100] + b"!" + record[-99:])
    problems, records = check(damaged, chunk=1 << 20)
    assert records == 2 and [p.uri for p in problems] == ["http://example.test/0"] * 2


def change_member(data: bytes, index: int, change: Callable[[bytes], bytes]) -> bytes:
    """The file with the record in its ``index``-th gzip member changed, the member valid."""
    offsets = [*member_offsets(data), len(data)]
    start, end = offsets[index], offsets[index + 1]
    return data[:start] + gzip.compress(change(gzip.decompress(data[start:end]))) + data[end:]


def test_several_records_in_one_gzip_member_are_read() -> None:
    """warcio refuses a WARC compressed as one member; every record is still checked here,
    and the revisit's block digest, which does not hold, is named (warcio check skips it)."""
    data = (DATA / "example-bad-non-chunked.warc.gz").read_bytes()
    problems, records = check(data)
    assert records == 6
    assert [(p.uri, p.offset, p.expected) for p in problems] == [
        ("http://example.com/", 0, "sha1:DVRKRZEWKT4QEWGQOSFOA5KY5VDIWJLW")]


def test_a_clipped_member_names_the_record_it_cuts() -> None:
    problems, records = check((DATA / "clipped.warc.gz").read_bytes())
    assert records == 0 and len(problems) == 1
    problem = problems[0]
    assert problem.uri.startswith("http://www.houstonpress.com/music/")
    assert problem.offset == 0 and "cut short" in problem.found


@pytest.mark.parametrize("chunk", [4096, 7, 1])
@pytest.mark.parametrize("short_by", [2, 40])
def test_a_content_length_that_lies_is_named_and_the_records_after_it_still_read(
        chunk: int, short_by: int) -> None:
    data = write_warc([b"<p>one</p>", b"<p>two</p>"], gzip_members=False)
    # The first response claims two bytes more than it holds.
    first = data.index(b"WARC-Type: response")
    length_at = data.index(b"Content-Length: ", first) + len(b"Content-Length: ")
    length_end = data.index(b"\r\n", length_at)
    wrong = str(int(data[length_at:length_end]) - short_by).encode()
    data = data[:length_at] + wrong + data[length_end:]
    problems, records = check(data, chunk)
    assert records == 3  # the lying record, then the two after it
    named = [p for p in problems if "Content-Length may be wrong" in p.found]
    assert [p.uri for p in named] == ["http://example.test/0"]
    # The record read on from is named by its own offset when it is damaged too.
    second = data.rindex(b"WARC/1.1", 0, data.index(b"WARC-Type: response", length_end))
    damaged = data.replace(b"<p>two</p>", b"<p>TWO</p>", 1)
    problems, records = check(damaged, chunk)
    assert records == 3
    assert {p.offset for p in problems if p.uri == "http://example.test/1"} == {second}


@pytest.mark.parametrize(("data", "found"), [
    (b"this is not a WARC file at all\r\n\r\n", "no WARC record at offset 0"),
    (gzip.compress(b"<html>not WARC</html>"), "no WARC record at offset 0"),
])
def test_what_is_not_warc_is_unreadable_at_offset_0(data: bytes, found: str) -> None:
    problems, records = check(data)
    assert records == 0 and len(problems) == 1 and found in problems[0].found


def test_garbage_after_the_last_member_is_named() -> None:
    data = write_warc([b"<p>one</p>"])
    problems, records = check(data + b"trailing rubbish")
    assert records == 2 and len(problems) == 1
    assert problems[0].offset == len(data) and "bad gzip data" in problems[0].found


def test_a_flipped_bit_in_a_member_is_bad_gzip_data_there() -> None:
    data = bytearray(write_warc([b"<p>one</p>" * 50, b"<p>two</p>" * 50]))
    second = member_offsets(bytes(data))[1]
    data[second + 30] ^= 0x01
    problems, _ = check(bytes(data))
    assert len(problems) >= 1 and problems[-1].offset == second
    assert "unreadable" in problems[-1].found


def test_an_arc_file_is_left_to_the_whole_file_digest() -> None:
    arc = (b"filedesc://example.arc 0.0.0.0 20080430204825 text/plain 76\n"
           b"1 1 InternetArchive\nURL IP-address Archive-date Content-type Archive-length\n\n")
    assert check(gzip.compress(arc)) == ([], 0)


def test_memory_stays_flat_for_a_huge_compressible_record() -> None:
    body = b"\0" * (256 << 20)
    headers = (b"WARC/1.1\r\nWARC-Type: resource\r\nWARC-Target-URI: http://example.test/zeros\r\n"
               b"WARC-Block-Digest: sha1:" + base64.b32encode(hashlib.sha1(body).digest())
               + b"\r\nContent-Type: application/octet-stream\r\n"
               + b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n")
    packer = zlib.compressobj(6, zlib.DEFLATED, 31)
    data = packer.compress(headers) + packer.compress(body) + packer.compress(b"\r\n\r\n")
    data += packer.flush()
    del body
    tracemalloc.start()
    try:
        problems, records = check(data, chunk=1 << 20)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (problems, records) == ([], 1)
    assert peak < 16 << 20, f"peak {peak >> 20} MiB inflating a 256 MiB record"


def raw_response(http_message: bytes, payload_digest: bytes) -> bytes:
    """One response record whose HTTP message is given byte for byte (no writer tidies it)."""
    def label(digest: bytes) -> str:
        return "sha1:" + base64.b32encode(digest).decode()
    head = (f"WARC/1.1\r\nWARC-Type: response\r\nWARC-Target-URI: http://example.test/odd\r\n"
            f"WARC-Record-ID: <urn:uuid:00000000-0000-0000-0000-000000000001>\r\n"
            f"WARC-Block-Digest: {label(hashlib.sha1(http_message).digest())}\r\n"
            f"WARC-Payload-Digest: {label(payload_digest)}\r\n"
            f"Content-Type: application/http; msgtype=response\r\n"
            f"Content-Length: {len(http_message)}\r\n\r\n").encode()
    return head + http_message + b"\r\n\r\n"


@pytest.mark.parametrize(("headers", "blank"), [
    (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n", b"\r\n"),
    (b"HTTP/1.1 200 OK\nContent-Type: text/plain\n", b"\n"),  # bare line feeds
    (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n", b" \t\r\n"),  # blank once stripped
    (b"HTTP/1.1 200 OK\r\nSet-Cookie: " + b"x" * 20_000 + b"\r\n", b"\r\n"),  # many windows
    (b"HTTP/1.1 200 OK\r\n", b"\r\n"),  # no header at all
])
@pytest.mark.parametrize("chunk", [7, 4096])
def test_the_payload_starts_after_the_first_blank_line_past_the_status_line(
        headers: bytes, blank: bytes, chunk: int) -> None:
    # warcio's rule, which our payload digests follow so that `warcio check` agrees: the
    # first line after the status line that is empty once stripped ends the headers.
    payload = b"\r\nthe payload, which may start with a line break\n\n and hold blank lines\n"
    data = raw_response(headers + blank + payload, hashlib.sha1(payload).digest())
    assert check(data, chunk) == ([], 1)
    wrong = raw_response(headers + blank + payload, hashlib.sha1(blank + payload).digest())
    [problem] = check(wrong, chunk)[0]
    assert problem.digest == "WARC-Payload-Digest"


@pytest.mark.parametrize("declared", ["-" + "A" * 31, "+" + "A" * 31, "A" * 15 + "_" + "A" * 16,
                                      " " + "A" * 31])
def test_a_digest_garbled_into_what_int_would_read_is_a_mismatch_not_a_crash(
        declared: str) -> None:
    payload = b"hello"
    data = raw_response(b"HTTP/1.1 200 OK\r\n\r\n" + payload, hashlib.sha1(payload).digest())
    data = data.replace(base64.b32encode(hashlib.sha1(payload).digest()), declared.encode())
    [problem] = check(data)[0]
    assert problem.digest == "WARC-Payload-Digest" and problem.expected == f"sha1:{declared}"
