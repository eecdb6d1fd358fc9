"""Fixity throughput: `preserve fixity run` against coreutils `sha256sum` on the same files.

Captures a loopback site with large random bodies into a scratch home (so the
WARC files are real captures), then times, in one run, our audit of every copy
and `sha256sum` over the same stored files. Prints MB/s for both and the ratio.

    .venv/bin/python bench/fixity_hash.py [--files N] [--mb-per-file M]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from preserve.catalog import open_engine
from preserve.config import load_settings
from preserve.demo import LoopbackSite, Route
from preserve.fixity import run_fixity
from preserve.jobs import run_capture
from preserve.storage import open_stores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--mb-per-file", type=int, default=64)
    args = parser.parse_args()
    if shutil.which("sha256sum") is None:
        raise SystemExit("sha256sum (coreutils) is needed for the comparison")

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

        started = time.perf_counter()
        result = run_fixity(engine, open_stores(settings.locations))
        ours = time.perf_counter() - started
        assert result.passed and result.bytes == total

        started = time.perf_counter()
        subprocess.run(["sha256sum", *files], check=True, stdout=subprocess.DEVNULL)
        theirs = time.perf_counter() - started
        engine.dispose()

    mb = total / 1e6
    print(f"fixity: {len(files)} WARC files, {mb:.0f} MB")
    print(f"  preserve fixity run  {ours:6.2f} s  {mb / ours:7.0f} MB/s")
    print(f"  sha256sum            {theirs:6.2f} s  {mb / theirs:7.0f} MB/s")
    print(f"  ratio (sha256sum time / ours): {theirs / ours:.2f}x")


if __name__ == "__main__":
    main()
