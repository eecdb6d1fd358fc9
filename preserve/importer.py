"""``preserve import``: WARC, ARC and WACZ files other tools made, taken in without a byte
changed.

Each file is stored as it is, as its own object (its SHA-256 recorded and
verified in every location), through the same ingest as our captures; its
records are indexed where they lie in it (in a WACZ, where they lie in the ZIP:
its WARC files are stored in it, not deflated). Descriptions of its HTML pages are
never written into it: they go into a new companion WARC of ``metadata``
records that refer to the originals (``WARC-Refers-To``), as ``preserve
redescribe`` writes them.

A file is read through before anything is stored. By default import is strict:
a record whose digest does not hold, a file cut short, a gzip member that breaks,
data that is not a record, and the file is refused (exit 2) with its name, the
offset and the problem, and nothing is written. ``lenient`` keeps such a file
byte for byte, catalogues the records that are sound and reports the rest.
Importing a file whose bytes are already preserved does nothing, and says so.
"""

from __future__ import annotations

import io
import itertools
import json
import os
import pickle
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import AbstractContextManager, ExitStack, redirect_stderr, suppress
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Engine, select

from preserve import ledger
from preserve.capture.warc import SealedWarc
from preserve.catalog.schema import warc_files
from preserve.config import Settings
from preserve.errors import BadInput, PreserveError
from preserve.fingerprint import iter_chunks, sha256_chunks, sha256_file
from preserve.index import KeptIndexer, Unindexable, WarcIndex, index_warc, indexed_part
from preserve.ingest import Copies, discard, ingest, store_copies
from preserve.jobs import run_redescribe, stores_for
from preserve.policy import check_collection
from preserve.processes import process_pool
from preserve.storage import ObjectStore, open_stores
from preserve.warc_digests import (
    ZIP_HEADER,
    RecordProblem,
    hashed_and_verified,
    is_wacz_warc,
    member_starts,
    verify_records,
    verify_wacz_records,
    zip_header_size,
)
from preserve.workdir import private_folder

WARC, ARC, WACZ = "WARC", "ARC", "WACZ"
# A gzipped WARC file this large is verified and indexed in parts, in worker
# processes (one per core), PARTS_PER_WORKER parts each.
PARALLEL_BYTES = 64 * 1024 * 1024
PARTS_PER_WORKER = 4
_SNIFF = 4096
# Compressions some tools use for WARC files that we cannot read yet: their magic bytes.
_COMPRESSIONS = ((b"\x04\x22\x4d\x18", "LZ4"), (b"\x28\xb5\x2f\xfd", "Zstandard"),
                 (b"BZh", "bzip2"), (b"\xfd7zXZ\x00", "xz"))


@dataclass
class ImportReport:
    """What became of one file."""

    file: str
    format: str
    sha256: str
    size: int
    imported: bool  # False: its bytes were preserved already (``key`` says where)
    key: str
    records: int = 0
    captures: int = 0
    described: int = 0
    problems: list[str] = field(default_factory=list)  # with --lenient: what was left out
    descriptions_warcs: list[str] = field(default_factory=list)
    not_described: list[str] = field(default_factory=list)  # pages description failed on
    # A file a capture left in the work folder (preserve.workdir), removed once preserved.
    cleared: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def import_files(paths: Sequence[Path], *, settings: Settings, engine: Engine, collection: str,
                 lenient: bool = False, describe: bool = True, actor: str = "preserve",
                 progress: Callable[[str], None] | None = None,
                 now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> list[ImportReport]:
    """Import each file; every file is checked before the first is catalogued.

    A file's copies are made (on a thread of their own) as soon as its SHA-256 is
    known, while its records are still being verified: writing and syncing a
    large file takes seconds of waiting on the disk or the network, which
    verifying, all computing, does not. Copies of a file that is not imported
    after all (refused, or already preserved) are removed again.
    """
    check_collection(collection)
    for path in paths:
        if not path.is_file():
            raise BadInput(f"import: {path}: no such file")
    moment = now()
    stores = stores_for(settings, (), engine)
    copier = ThreadPoolExecutor(max_workers=1, thread_name_prefix="import-copy")
    early: dict[str, Future[Copies]] = {}  # key -> its copies, being made

    def copy_early(key: str, sha256: str, path: Path) -> None:
        if key not in early and _known(engine, sha256) is None:
            early[key] = copier.submit(store_copies, path, sha256, key, stores)

    reports = []
    # Where the indexes of files read through wait for their turn, when there are
    # several: in memory, a thousand files of 50,000 records each would hold 45 GB. In
    # the work folder, on the data's disk: a temporary folder may be memory (tmpfs).
    rooms = ExitStack()
    try:
        waiting = rooms.enter_context(_waiting_room(settings.work_dir)) if len(paths) > 1 else None
        checked = []
        for number, path in enumerate(paths):
            plan = _checked(path, collection, moment, lenient, copy_early)
            checked.append(plan if waiting is None else
                           _set_aside(plan, waiting / f"{number}.index"))
        while checked:
            plan = _taken_back(checked.pop(0))
            if progress is not None:
                progress(str(plan.path))
            report = _import_one(plan, settings=settings, stores=stores, engine=engine,
                                 collection=collection, describe=describe, actor=actor,
                                 now=now, copies=early.pop(plan.key, None))
            if plan.path.resolve().parent == settings.work_dir.resolve():
                plan.path.unlink(missing_ok=True)
                report.cleared = True
            reports.append(report)
    finally:
        rooms.close()
        # Copies of files that were not imported: those not begun are not made.
        for copies in early.values():
            copies.cancel()
        for key, copies in early.items():
            _drop(engine, key, copies)
        copier.shutdown(wait=True)
        # What was ingested, its ledger entries reach storage.
        ledger.checkpoint(engine, open_stores(settings.locations))
    return reports


def _drop(engine: Engine, key: str, copies: Future[Copies]) -> None:
    """Remove the copies made early of a file that is not imported, unless a file under
    the same key was catalogued meanwhile (the same bytes, imported by another
    process): then they are that file's objects."""
    with suppress(Exception):  # no copy made, or cancelled: nothing to remove
        made = copies.result()
        with engine.connect() as connection:
            taken = connection.execute(select(warc_files.c.id).where(
                warc_files.c.key == key)).first() is not None
        if not taken:
            discard(made, key)


def _known(engine: Engine, sha256: str) -> str | None:
    """The key of a file with these bytes that is preserved already, if there is one."""
    with engine.connect() as connection:
        return connection.execute(select(warc_files.c.key).where(
            warc_files.c.sha256 == sha256).limit(1)).scalar_one_or_none()


@dataclass
class _Plan:
    """A file read through: where it will go, what it holds, what is wrong with it."""

    path: Path
    kind: str
    sha256: str
    size: int
    key: str
    index: WarcIndex
    problems: list[str]


def _waiting_room(work: Path) -> AbstractContextManager[Path]:
    """A new private folder in ``work`` for the indexes of files waiting their turn."""
    return private_folder(work, "preserve-import-", "import: cannot make a folder in {work} "
                          "for the indexes of the files waiting their turn ({problem}); "
                          "nothing imported")


@dataclass
class _SetAside:
    """A plan whose index waits in a file (``index``) until the file's turn comes."""

    plan: _Plan
    index: Path


def _set_aside(plan: _Plan, place: Path) -> _SetAside:
    """Keep a plan's index in ``place`` (a private temporary folder's file) instead of
    in memory."""
    try:
        with place.open("wb") as out:
            pickle.dump(plan.index, out, protocol=pickle.HIGHEST_PROTOCOL)
    except OSError as exc:
        raise PreserveError(f"import: cannot set the index of {plan.path} aside in "
                            f"{place.parent} ({exc.strerror or exc}); nothing "
                            "imported") from exc
    return _SetAside(replace(plan, index=WarcIndex()), place)


def _taken_back(waiting: _Plan | _SetAside) -> _Plan:
    """A plan with its index in memory again."""
    if isinstance(waiting, _Plan):
        return waiting
    with waiting.index.open("rb") as stream:
        # Written by this process, in a folder only this user can open.
        index = pickle.load(stream)
    waiting.index.unlink()
    return replace(waiting.plan, index=index)


def file_format(path: Path) -> str:
    """WARC or ARC (plain or gzipped), from the file's first bytes; BadInput otherwise."""
    with path.open("rb") as stream:
        head = stream.read(_SNIFF)
    if head[:2] == b"\x1f\x8b":
        try:
            head = zlib.decompressobj(zlib.MAX_WBITS | 16).decompress(head, _SNIFF)
        except zlib.error as exc:
            raise BadInput(f"import: {path}: offset 0: a gzip file that does not inflate "
                           f"({exc})") from exc
    if head.startswith(b"WARC/"):
        return WARC
    if head.startswith(b"filedesc://"):
        return ARC
    if head.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(path) as package:
                names = package.namelist()
        except (zipfile.BadZipFile, OSError) as exc:
            raise BadInput(f"import: {path}: a ZIP file that cannot be read ({exc})") from exc
        if "datapackage.json" in names and any(is_wacz_warc(name) for name in names):
            return WACZ
        raise BadInput(f"import: {path}: a ZIP file, but not a WACZ (no datapackage.json "
                       "and WARC files in archive/)")
    for magic, name in _COMPRESSIONS:
        if head.startswith(magic):
            raise BadInput(f"import: {path}: compressed with {name}: unsupported; "
                           "decompress it (or recompress it with gzip) first")
    shown = head[:24].decode("latin-1").encode("unicode_escape").decode("ascii")
    raise BadInput(f"import: {path}: not a WARC or ARC file (it starts with {shown!r})")


def _checked(path: Path, collection: str, moment: datetime, lenient: bool,
             early: Callable[[str, str, Path], None]) -> _Plan:
    """Read a file through for import under ``imports/{collection}/``."""
    return read_through(path, lambda sha256: (f"imports/{collection}/{moment:%Y/%m}/"
                                              f"{sha256[:16]}-{path.name}"), lenient, early)


def read_through(path: Path, place: Callable[[str], str], lenient: bool,
                 early: Callable[[str, str, Path], None] | None = None) -> _Plan:
    """Read a file through: its key (``place`` given its SHA-256), its index of sound
    records, and its problems (strict: none, or BadInput naming the first).

    ``early`` (key, SHA-256, path) is told as soon as a file that may be imported has
    its key: a large WARC file's while its records are still being verified.

    A WARC file is read once: its SHA-256 taken, every record's digests verified and
    its index built from the same read. A damaged one, and an ARC or WACZ file, is
    indexed by warcio's reading besides (what it can read is what is catalogued).
    """
    kind = file_format(path)
    index: WarcIndex | None = None
    unreadable: RecordProblem | None = None
    problems: list[RecordProblem] = []
    def digest_known(sha256: str) -> None:
        if early is not None:
            early(place(sha256), sha256, path)

    if kind == WARC and (parted := _verified_in_parts(path, digest_known)) is not None:
        sha256, size, index = parted
        key = place(sha256)
    elif kind == WARC:
        indexer = KeptIndexer(path.name)
        sha256, size, problems = _verified(path, lambda chunks: verify_records(chunks,
                                                                              keep=indexer))
        key = place(sha256)
        indexer.name = key
        index = None if problems else indexer.finish(size)
    else:
        if kind == WACZ:
            sha256, size, problems = _verified(path, verify_wacz_records)
            key = place(sha256)
            index, unreadable, wrong = _index_wacz(path, key)
            problems.extend(wrong)
        else:
            sha256, size = sha256_file(path)
            key = place(sha256)
    if index is None:
        with path.open("rb") as stream:
            index, unreadable = _index(stream, key, arc=kind == ARC)
    if unreadable is not None and not any(p.offset == unreadable.offset for p in problems):
        problems.append(unreadable)
    problems.sort(key=lambda problem: problem.offset)
    described = [str(problem) for problem in problems]
    if problems and not lenient:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise BadInput(f"import: {path}: {described[0]}{more}; nothing imported "
                       "(--lenient keeps the file and catalogues its sound records)")
    bad = {problem.offset for problem in problems}
    stop = unreadable.offset if unreadable is not None else None
    index.captures = [entry for entry in index.captures if _sound(entry.offset, bad, stop)]
    index.descriptions = [entry for entry in index.descriptions
                          if _sound(entry.offset, bad, stop)]
    index.others = [entry for entry in index.others if _sound(entry.offset, bad, stop)]
    if early is not None:
        early(key, sha256, path)
    return _Plan(path, kind, sha256, size, key, index, described)


def _verified_in_parts(path: Path, digest_known: Callable[[str], None]
                       ) -> tuple[str, int, WarcIndex] | None:
    """A large gzipped WARC file verified and indexed in parts by worker processes, one
    per core, its SHA-256 taken here meanwhile; None where it is not that large, cannot
    be cut at gzip members, or a part has a problem (then it is read in one, to name
    each problem as that reading does). ``digest_known`` is told the SHA-256 as soon as
    it is taken."""
    workers = os.cpu_count() or 1
    if workers < 2 or path.stat().st_size < PARALLEL_BYTES:
        return None
    with path.open("rb") as stream:
        if stream.read(2) != b"\x1f\x8b":
            return None
    # More parts than processes: parts of equal size are not equal work (HTML inflates
    # and hashes slower than images), and a process done early takes the next part.
    cuts = member_starts(path, workers * PARTS_PER_WORKER)
    if len(cuts) < 3:
        return None
    try:
        with process_pool(min(workers, len(cuts) - 1)) as pool:
            futures = [pool.submit(indexed_part, str(path), start, end)
                       for start, end in itertools.pairwise(cuts)]
            sha256, size = sha256_file(path)
            digest_known(sha256)
            parts = [future.result() for future in futures]
    except (BrokenProcessPool, OSError):  # no worker processes here: one reading will do
        return None
    merged = WarcIndex()
    for problems, part in parts:
        if problems or part is None:
            return None
        merged.extend(part)
    return sha256, size, merged


def _verified(path: Path, verify: Callable[[Iterator[bytes]], Iterable[RecordProblem]]
              ) -> tuple[str, int, list[RecordProblem]]:
    """A file's SHA-256, size and record problems (``verify``'s), from one read."""
    with path.open("rb") as stream:
        whole, problems = hashed_and_verified(stream, verify)
    return whole.hexdigest(), whole.size, problems


def _sound(offset: int, bad: set[int], stop: int | None) -> bool:
    """Is the record at ``offset`` one to catalogue: not damaged, before any break?"""
    return offset not in bad and (stop is None or offset < stop)


def _index(stream: IO[bytes], name: str, arc: bool = False, at: int = 0,
           where: str = "") -> tuple[WarcIndex, RecordProblem | None]:
    """A WARC stream's index up to where it cannot be read on, and the problem there (if
    any); its offsets counted from ``at`` (where the stream lies in the file), ``where``
    naming the part of the file it is. warcio's own warnings (it prints them) are left
    out: the problems say it all."""
    with redirect_stderr(io.StringIO()):
        try:
            index, unreadable = index_warc(stream, name, arc=arc), None
        except Unindexable as exc:
            index, unreadable = exc.index, RecordProblem(
                f"{where}record {exc.index.records + 1}", at + max(exc.offset, 0),
                "readable records", f"unreadable ({exc.__cause__ or exc})")
    if at:
        index.captures = [replace(entry, offset=entry.offset + at) for entry in index.captures]
        index.descriptions = [replace(entry, offset=entry.offset + at)
                              for entry in index.descriptions]
        index.others = [replace(entry, offset=entry.offset + at) for entry in index.others]
    return index, unreadable


def _index_wacz(path: Path, key: str
                ) -> tuple[WarcIndex, RecordProblem | None, list[RecordProblem]]:
    """A WACZ's WARC entries indexed where they lie in the ZIP (they are stored, not
    deflated), the first place one cannot be read on, and the entries whose bytes do
    not have the SHA-256 its datapackage.json gives."""
    index, unreadable, wrong = WarcIndex(), None, []
    with zipfile.ZipFile(path) as package, path.open("rb") as raw:
        try:
            declared = {resource.get("path"): str(resource.get("hash", ""))
                        for resource in json.loads(package.read("datapackage.json"))
                        .get("resources", []) if isinstance(resource, dict)}
        except (ValueError, AttributeError, KeyError, zipfile.BadZipFile) as exc:
            raise BadInput(f"import: {path}: datapackage.json cannot be read ({exc})") from exc
        for info in package.infolist():
            raw.seek(info.header_offset)
            start = info.header_offset + zip_header_size(raw.read(ZIP_HEADER))
            expected = declared.get(info.filename, "")
            try:
                if expected.startswith("sha256:"):
                    with package.open(info) as entry:
                        found = "sha256:" + sha256_chunks(iter_chunks(entry))[0]
                    if found != expected:
                        wrong.append(RecordProblem(info.filename, start, expected, found))
                if not is_wacz_warc(info.filename) or info.compress_type != zipfile.ZIP_STORED:
                    continue  # a deflated WARC entry is verify_wacz_records's problem
                with package.open(info) as stream:
                    part, broken = _index(stream, f"{key}#{info.filename}", at=start,
                                          where=f"{info.filename} ")
            except (zipfile.BadZipFile, zlib.error, EOFError) as exc:  # a damaged entry
                wrong.append(RecordProblem(info.filename, start, "a readable ZIP entry",
                                           f"unreadable ({exc})"))
                continue
            unreadable = unreadable or broken
            index.extend(part)
    return index, unreadable, wrong


def _import_one(plan: _Plan, *, settings: Settings, stores: list[ObjectStore], engine: Engine,
                collection: str, describe: bool, actor: str, now: Callable[[], datetime],
                copies: Future[Copies] | None) -> ImportReport:
    """Catalogue one file (its copies made already, when ``copies`` is given: until
    ``ingest`` has them, they are removed here if anything stops the import)."""
    try:
        known = _known(engine, plan.sha256)
        made = copies.result() if copies is not None and known is None else None
    except BaseException:  # interrupted too
        if copies is not None:
            _drop(engine, plan.key, copies)
        raise
    if known is not None:  # the same bytes twice in one import: the first was imported
        if copies is not None:
            _drop(engine, plan.key, copies)
        return ImportReport(str(plan.path), plan.kind, plan.sha256, plan.size, imported=False,
                            key=known)
    stored = ingest(SealedWarc(plan.path, plan.sha256, plan.size, plan.index.records,
                               plan.index),
                    key=plan.key, collection=collection, source="import", engine=engine,
                    stores=stores, actor=actor, now=now, copies=made)
    report = ImportReport(str(plan.path), plan.kind, plan.sha256, plan.size, imported=True,
                          key=stored.key, records=stored.records, captures=stored.captures,
                          problems=list(plan.problems))
    if describe:
        described = run_redescribe(settings=settings, engine=engine, collection=collection,
                                   warc_key=stored.key, now=now)
        report.described = described.described
        report.descriptions_warcs = [warc["key"] for warc in described.warcs]
        report.not_described = described.errors
    return report
