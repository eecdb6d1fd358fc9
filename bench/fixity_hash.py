"""Fixity throughput: `preserve fixity run` against the tools an auditor would otherwise use.

Captures a loopback site with large random bodies into a scratch home (so the
WARC files are real captures), then times, in one run, over the same stored
files:

- fast mode (`preserve fixity run`: SHA-256 of every copy, objects side by
  side) against coreutils `sha256sum` and a single-threaded Python hashlib loop;
- deep mode (`preserve fixity run --deep`: every record's block and payload
  digests too) against `warcio check` and, when it is installed (`make bench`
  puts it in `.venv-tools`), FastWARC's `fastwarc check --verify-payloads`.

    .venv/bin/python bench/fixity_hash.py [--files N] [--mb-per-file M] [--tools DIR]

Prints GB/s for each and the ratios the issue sets targets for.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from preserve.catalog import open_engine
from preserve.config import load_settings
from preserve.demo import LoopbackSite, Route
from preserve.fixity import run_fixity
from preserve.jobs import run_capture
from preserve.storage import open_stores


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--mb-per-file", type=int, default=64)
    parser.add_argument("--tools", type=Path, default=Path(".venv-tools/bin"),
                        help="where fastwarc is installed (skipped when it is not)")
    args = parser.parse_args()
    if shutil.which("sha256sum") is None:
        raise SystemExit("sha256sum (coreutils) is needed for the comparison")
    warcio = Path(sys.executable).parent / "warcio"
    fastwarc = args.tools / "fastwarc"

    with tempfile.TemporaryDirectory(prefix="preserve-bench-") as scratch:
        settings = load_settings({"PRESERVE_HOME": scratch}).with_capture(
            allow_private_addresses=True, max_resource_bytes=(args.mb_per_file + 1) << 20)
        engine = open_engine(settings.database_url)
        with LoopbackSite({}) as site:
            for _ in range(args.files):
                # A new body each time: the same one would be stored once, then as revisits.
                site.routes["/big.bin"] = Route(os.urandom(args.mb_per_file << 20),
                                                "application/octet-stream")
                run_capture([site.url("/big.bin")], collection="bench", settings=settings,
                            engine=engine)
        files = sorted(str(p) for p in (Path(scratch) / "objects").rglob("*.warc.gz"))
        total = sum(os.path.getsize(f) for f in files)
        stores = open_stores(settings.locations)

        results: dict[str, object] = {}

        def fast() -> None:
            results["fast"] = run_fixity(engine, stores)

        def deep() -> None:
            results["deep"] = run_fixity(engine, stores, deep=True)

        times = {
            "preserve fixity run": timed(fast),
            "sha256sum": timed(lambda: subprocess.run(["sha256sum", *files], check=True,
                                                      stdout=subprocess.DEVNULL)),
            "hashlib, one thread": timed(lambda: hashlib_loop(files)),
            "preserve fixity run --deep": timed(deep),
            "warcio check": timed(lambda: subprocess.run([str(warcio), "check", *files],
                                                         check=True,
                                                         stdout=subprocess.DEVNULL)),
        }
        if fastwarc.exists():
            def fastwarc_check() -> None:
                for name in files:
                    subprocess.run([str(fastwarc), "check", "-q", "--verify-payloads", name],
                                   check=True, stdout=subprocess.DEVNULL)
            times["fastwarc check"] = timed(fastwarc_check)
        for mode in ("fast", "deep"):
            outcome = results[mode]
            assert outcome.passed and outcome.bytes == total, outcome  # type: ignore[attr-defined]
        engine.dispose()

    gb = total / 1e9
    print(f"fixity: {len(files)} WARC files, {gb:.2f} GB")
    for name, seconds in times.items():
        print(f"  {name:<28} {seconds:6.2f} s  {gb / seconds:5.2f} GB/s")
    print(f"  fast mode / sha256sum: {times['sha256sum'] / times['preserve fixity run']:.2f}x; "
          f"/ hashlib one thread: "
          f"{times['hashlib, one thread'] / times['preserve fixity run']:.2f}x (target 1.6x)")
    deep_ratio = times["warcio check"] / times["preserve fixity run --deep"]
    print(f"  deep mode / warcio check: {deep_ratio:.2f}x (target 3x)"
          + (f"; / fastwarc check: "
             f"{times['fastwarc check'] / times['preserve fixity run --deep']:.2f}x"
             if "fastwarc check" in times else "; fastwarc not installed"))


if __name__ == "__main__":
    main()
