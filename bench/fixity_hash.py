"""Fixity throughput: `preserve fixity run` against the tools an auditor would otherwise use.

Two sets of real captures (WARC files our crawler wrote into a scratch home):

- web: a loopback site of article pages (real news pages from the shared
  extraction corpus, when it is beside us; generated ones otherwise), each with
  two images of random bytes, crawled by host: what an archive mostly holds,
  thousands of records, HTML that compresses and images that do not;
- large: one large random body per capture, so one record is most of a file.

For each it times, in one run, over the same stored files (after the files are
flushed to disk, each checker ``--rounds`` times in turning order, medians):

- fast mode (`preserve fixity run`: SHA-256 of every copy, objects side by
  side) against coreutils `sha256sum` and a single-threaded Python hashlib loop;
- deep mode (`preserve fixity run --deep`: the SHA-256 and every record's block
  and payload digests, from one read) against `warcio check` and, when it is
  installed (`make bench` puts it in `.venv-tools`), FastWARC's
  `fastwarc check --verify-payloads`; and against its floor, the hashing and
  inflating it cannot avoid (timed on one thread, spread over the cores), which
  bounds the ratio any implementation could reach on this machine;
- peak memory (max RSS) of `preserve fixity run --deep`, by GNU time.

    .venv/bin/python bench/fixity_hash.py [--web-articles N] [--files N] [--mb-per-file M]
                                          [--tools DIR]

Prints GB/s for each and the ratios the issue sets targets for.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

# The deep audit's worker processes re-import this script (they are spawned): like
# those of the `preserve` command, they must not pay for the catalog, the crawler and
# the database driver, so those are imported in the functions that use them.
if TYPE_CHECKING:
    from sqlalchemy import Engine

    from preserve.config import Settings
    from preserve.demo import Route
    from preserve.fixity import FixityResult


def timed(action: object) -> float:
    started = time.perf_counter()
    action()  # type: ignore[operator]
    return time.perf_counter() - started


def hashlib_loop(files: list[str]) -> None:
    for name in files:
        digest = hashlib.sha256()
        with open(name, "rb") as stream:
            while chunk := stream.read(1 << 20):
                digest.update(chunk)


def inflate_and_sha1_twice(files: list[str]) -> None:
    """What deep mode cannot avoid beside the SHA-256, on one thread and without reading a
    record: inflating every gzip member, and SHA-1 over the inflated bytes twice (a
    response's block, and its payload, which is nearly all of it)."""
    from preserve.warc_digests import _inflated  # the reader's own inflating

    for name in files:
        block, payload = hashlib.sha1(), hashlib.sha1()
        with open(name, "rb") as stream:
            for piece, _member in _inflated(iter(lambda: stream.read(1 << 20), b"")):
                block.update(piece)
                payload.update(piece)


def web_site(articles: int, pages: list[bytes], seed: int = 7) -> dict[str, Route]:
    """Article pages with two random images each, reached from section pages."""
    from crawl_site import PER_SECTION

    from preserve.demo import Route
    rng = random.Random(seed)
    # The real pages' own links are made inert: only this site's URLs are fetched.
    inert = [page.replace(b" src=", b" data-src=").replace(b" href=", b" data-href=")
             .replace(b"srcset=", b"data-srcset=").replace(b"url(", b"u(") for page in pages]
    routes: dict[str, Route] = {}
    for number in range(articles):
        images = "".join(f'<img src="/img/{number}-{n}.jpg">' for n in range(2))
        for n in range(2):
            routes[f"/img/{number}-{n}.jpg"] = Route(
                rng.randbytes(rng.randint(20_000, 200_000)), "image/jpeg")
        text = inert[number % len(inert)] if inert else (
            "".join(f"<p>Paragraph {p} of article {number}: " + "words " * 200 + "</p>"
                    for p in range(20)).encode())
        routes[f"/article/{number}.html"] = Route(
            f"{images}<!-- article {number} -->".encode() + text)
    sections = (articles + PER_SECTION - 1) // PER_SECTION
    for section in range(sections):
        links = "".join(f'<a href="/article/{n}.html">{n}</a> ' for n in
                        range(section * PER_SECTION, min(articles, (section + 1) * PER_SECTION)))
        routes[f"/section/{section}.html"] = Route(f"<html><body>{links}</body></html>".encode())
    routes["/index.html"] = Route(("<html><body>" + "".join(
        f'<a href="/section/{s}.html">{s}</a> ' for s in range(sections))
        + "</body></html>").encode())
    return routes


def capture_web(settings: Settings, engine: Engine, articles: int) -> str:
    from crawl_site import CORPUS, real_pages

    from preserve.demo import LoopbackSite
    from preserve.jobs import CaptureOverrides, run_capture
    pages = real_pages(CORPUS)
    with LoopbackSite(web_site(articles, pages)) as site:
        run_capture([site.url("/index.html")], collection="bench", settings=settings,
                    engine=engine, overrides=CaptureOverrides(
                        scope="host", depth=3, describe=False, warc_size=128 << 20,
                        exclude=(r"^https?://(?!127\.0\.0\.1[:/])",)))
    return (f"web: {articles} articles, "
            f"{'real pages from ' + CORPUS.name if pages else 'generated pages'}, 2 images each")


def capture_large(settings: Settings, engine: Engine, files: int, mb_per_file: int) -> str:
    from preserve.demo import LoopbackSite, Route
    from preserve.jobs import run_capture
    with LoopbackSite({}) as site:
        for _ in range(files):
            # A new body each time: the same one would be stored once, then as revisits.
            site.routes["/big.bin"] = Route(os.urandom(mb_per_file << 20),
                                            "application/octet-stream")
            run_capture([site.url("/big.bin")], collection="bench", settings=settings,
                        engine=engine)
    return f"large: one random {mb_per_file} MB body per file"


def measure(label: str, settings: Settings, engine: Engine, tools: Path, rounds: int) -> None:
    """Time every checker over the same files, and print GB/s and the ratios."""
    from crawl_site import timed as timed_command  # wall seconds and peak MB, by GNU time

    from preserve.fixity import run_fixity
    from preserve.storage import open_stores

    files = sorted(str(p) for p in (settings.home / "objects").rglob("*.warc.gz"))
    total = sum(os.path.getsize(f) for f in files)
    stores = open_stores(settings.locations)
    warcio = Path(sys.executable).parent / "warcio"
    fastwarc = tools / "fastwarc"
    results: dict[str, FixityResult] = {}

    def fast() -> None:
        results["fast"] = run_fixity(engine, stores)

    def deep() -> None:
        results["deep"] = run_fixity(engine, stores, deep=True)

    checkers: dict[str, Callable[[], object]] = {
        "preserve fixity run": fast,
        "sha256sum": lambda: subprocess.run(["sha256sum", *files], check=True,
                                            stdout=subprocess.DEVNULL),
        "hashlib, one thread": lambda: hashlib_loop(files),
        "inflate + 2 SHA-1, one thread": lambda: inflate_and_sha1_twice(files),
        "preserve fixity run --deep": deep,
        "warcio check": lambda: subprocess.run([str(warcio), "check", *files], check=True,
                                               stdout=subprocess.DEVNULL),
    }
    if fastwarc.exists():
        def fastwarc_check() -> None:
            for name in files:
                subprocess.run([str(fastwarc), "check", "-q", "--verify-payloads", name],
                               check=True, stdout=subprocess.DEVNULL)
        checkers["fastwarc check"] = fastwarc_check
    # The capture has just written these files: the kernel's write-back of them would
    # slow whichever checker ran first. Then each checker runs `rounds` times, the
    # order turning each round, and its median stands.
    os.sync()
    runs: dict[str, list[float]] = {name: [] for name in checkers}
    names = list(checkers)
    for round_ in range(rounds):
        for name in names[round_ % len(names):] + names[:round_ % len(names)]:
            runs[name].append(timed(checkers[name]))
    times = {name: statistics.median(seconds) for name, seconds in runs.items()}
    for mode in ("fast", "deep"):
        outcome = results[mode]
        assert outcome.passed and outcome.bytes == total, outcome
    peak = timed_command(
        [str(Path(sys.executable).parent / "preserve"), "fixity", "run", "--deep"],
        {**os.environ, "PRESERVE_HOME": str(settings.home)}, str(settings.home)).peak_mb

    gb = total / 1e9
    print(f"fixity, {label}: {len(files)} WARC files, {gb:.2f} GB, "
          f"{results['deep'].records} records; median of {rounds} runs each")
    for name, seconds in times.items():
        print(f"  {name:<28} {seconds:6.2f} s  {gb / seconds:5.2f} GB/s")
    print(f"  fast mode / sha256sum: {times['sha256sum'] / times['preserve fixity run']:.2f}x; "
          f"/ hashlib one thread: "
          f"{times['hashlib, one thread'] / times['preserve fixity run']:.2f}x (target 1.6x)")
    deep_ratio = times["warcio check"] / times["preserve fixity run --deep"]
    # The floor: SHA-256, inflating and both SHA-1s, spread perfectly over the cores (as
    # many as there are files to give them), with no record read and no process started.
    cores = min(os.cpu_count() or 1, len(files))
    floor = (times["hashlib, one thread"] + times["inflate + 2 SHA-1, one thread"]) / cores
    print(f"  floor of deep mode on {cores} cores (hashing and inflating alone): {floor:.2f} s; "
          f"at best {times['warcio check'] / floor:.2f}x warcio check here, ours at "
          f"{floor / times['preserve fixity run --deep']:.0%} of it")
    print(f"  deep mode / warcio check: {deep_ratio:.2f}x (target 3x)"
          + (f"; / fastwarc check: "
             f"{times['fastwarc check'] / times['preserve fixity run --deep']:.2f}x"
             if "fastwarc check" in times else "; fastwarc not installed"))
    print(f"  deep mode peak memory: {peak:.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--web-articles", type=int, default=4000,
                        help="articles in the web set (about 250 kB of WARC each); 0 skips it")
    parser.add_argument("--files", type=int, default=8, help="files in the large set")
    parser.add_argument("--mb-per-file", type=int, default=64)
    parser.add_argument("--tools", type=Path, default=Path(".venv-tools/bin"),
                        help="where fastwarc is installed (skipped when it is not)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="runs of each checker, in turning order; medians")
    args = parser.parse_args()
    for tool, package in (("sha256sum", "coreutils"), ("/usr/bin/time", "time")):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is needed for the comparison (apt-get install {package})")
    from preserve.catalog import open_engine
    from preserve.config import load_settings

    sets: list[Callable[[Settings, Engine], str]] = []
    if args.web_articles:
        sets.append(lambda settings, engine: capture_web(settings, engine, args.web_articles))
    sets.append(lambda settings, engine: capture_large(settings, engine, args.files,
                                                       args.mb_per_file))
    for capture in sets:
        with tempfile.TemporaryDirectory(prefix="preserve-bench-") as scratch:
            settings = load_settings({"PRESERVE_HOME": scratch}).with_capture(
                allow_private_addresses=True, max_resource_bytes=(args.mb_per_file + 1) << 20)
            engine = open_engine(settings.database_url)
            label = capture(settings, engine)
            measure(label, settings, engine, args.tools, args.rounds)
            engine.dispose()


if __name__ == "__main__":
    main()
