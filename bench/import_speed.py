"""Import speed: `preserve import --no-describe` against the indexers on the same WARC file.

One WARC file of about ``--mb`` MiB is written here with warcio: response records of
real news pages (the extraction benchmark's, when the shared corpus is beside us;
generated ones otherwise), each followed by two images of random bytes, one gzip
member per record, with their request records. Then, in one run, each is timed
over it (``--rounds`` times in turning order, medians; the file read through once
first, so all read it from the page cache):

- `preserve import --no-describe` into a fresh home: the whole file read through
  with every record's digests verified, indexed, its SHA-256 taken, stored and
  verified in the filesystem location, and catalogued;
- `warcio index`, `cdxj-indexer` and FastWARC's `fastwarc index` (from
  ``--tools``; `make bench` puts them in `.venv-tools`), which only index.

    .venv/bin/python bench/import_speed.py [--mb 1024] [--describe-mb 64] [--tools .venv-tools/bin]

Prints records/s for each and the ratio of ours to `warcio index` (target: at least 1).
Then the description of imported pages: a ``--describe-mb`` WARC of the same pages
imported without description, and `preserve redescribe` timed (worker processes on
every core): pages/s.
"""

from __future__ import annotations

import argparse
import io
import json
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

from crawl_site import CORPUS, real_pages
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter


def write_warc(path: Path, megabytes: int, pages: list[bytes], seed: int = 11) -> int:
    """A WARC of page + two images captures until it reaches ``megabytes``; its records."""
    rng = random.Random(seed)
    target = megabytes * 1024 * 1024
    records = 0
    with path.open("wb") as out:
        writer = WARCWriter(out, gzip=True)
        number = 0
        while out.tell() < target:
            page = pages[number % len(pages)] if pages else (
                b"<html><body>" + b"<p>words of an article</p>" * 300 + b"</body></html>")
            bodies = [(f"http://news.example/article/{number}.html", "text/html", page)]
            bodies += [(f"http://news.example/img/{number}-{image}.jpg", "image/jpeg",
                        rng.randbytes(rng.randint(8_000, 60_000))) for image in range(2)]
            for url, mime, body in bodies:
                request = writer.create_warc_record(
                    url, "request", payload=io.BytesIO(b""),
                    http_headers=StatusAndHeaders(f"GET {url} HTTP/1.1",
                                                  [("Host", "news.example")], is_http_request=True))
                response = writer.create_warc_record(
                    url, "response", payload=io.BytesIO(body),
                    http_headers=StatusAndHeaders("200 OK", [
                        ("Content-Type", mime), ("Content-Length", str(len(body)))],
                        protocol="HTTP/1.1"))
                writer.write_request_response_pair(request, response)
                records += 2
            number += 1
    return records


def describe_rate(scratch: Path, bin_dir: Path, megabytes: int) -> None:
    """Description of imported pages: a smaller WARC of the same pages imported without
    description, then ``preserve redescribe`` timed (worker processes on every core)."""
    warc = scratch / "describe.warc.gz"
    write_warc(warc, megabytes, real_pages(CORPUS), seed=12)
    home = scratch / "home-describe"
    env = {**os.environ, "PRESERVE_HOME": str(home)}
    subprocess.run([str(bin_dir / "preserve"), "import", str(warc), "--collection", "bench",
                    "--no-describe"], check=True, stdout=subprocess.DEVNULL, env=env)
    started = time.perf_counter()
    done = subprocess.run([str(bin_dir / "preserve"), "redescribe", "--json"], check=True,
                          capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - started
    pages = json.loads(done.stdout)["described"]
    print(f"description of the imported pages ({megabytes} MiB WARC, {pages} HTML pages), "
          f"worker processes on {os.cpu_count()} cores: {pages / seconds:.1f} pages/s "
          f"({seconds:.1f} s, process start included)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=1024, help="size of the WARC file (MiB)")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each; medians")
    parser.add_argument("--describe-mb", type=int, default=64,
                        help="size of the WARC whose pages are described (MiB)")
    parser.add_argument("--tools", type=Path,
                        default=Path(__file__).resolve().parent.parent / ".venv-tools" / "bin")
    args = parser.parse_args()
    bin_dir = Path(sys.executable).parent
    scratch = Path(tempfile.mkdtemp(prefix="import-bench-"))
    try:
        warc = scratch / "news.warc.gz"
        started = time.perf_counter()
        records = write_warc(warc, args.mb, real_pages(CORPUS))
        size = warc.stat().st_size
        print(f"import, one WARC file of {size / 2**20:.0f} MiB, {records} records "
              f"(written in {time.perf_counter() - started:.0f} s); median of {args.rounds} "
              "runs each")
        with warc.open("rb") as stream:  # into the page cache, for every contender alike
            while stream.read(1 << 24):
                pass

        def ours() -> None:
            home = scratch / f"home-{time.monotonic_ns()}"
            subprocess.run([str(bin_dir / "preserve"), "import", str(warc), "--collection",
                            "bench", "--no-describe"], check=True, stdout=subprocess.DEVNULL,
                           env={**os.environ, "PRESERVE_HOME": str(home)})
            shutil.rmtree(home)

        def tool(*command: str) -> Callable[[], None]:
            def index() -> None:
                subprocess.run([*command, str(warc)], check=True, stdout=subprocess.DEVNULL)
            return index

        contenders: dict[str, Callable[[], None]] = {
            "preserve import --no-describe": ours,
            "warcio index": tool(str(bin_dir / "warcio"), "index"),
        }
        if (args.tools / "cdxj-indexer").exists():
            contenders["cdxj-indexer"] = tool(str(args.tools / "cdxj-indexer"))
        if (args.tools / "fastwarc").exists():
            contenders["fastwarc index"] = tool(str(args.tools / "fastwarc"), "index")
        times: dict[str, list[float]] = {name: [] for name in contenders}
        for round_number in range(args.rounds):
            order = list(contenders)
            order = order[round_number % len(order):] + order[:round_number % len(order)]
            for name in order:
                started = time.perf_counter()
                contenders[name]()
                times[name].append(time.perf_counter() - started)
        medians = {name: statistics.median(values) for name, values in times.items()}
        for name, seconds in medians.items():
            print(f"  {name:<30} {seconds:7.2f} s {records / seconds:10.0f} records/s "
                  f"{size / seconds / 2**20:8.0f} MiB/s")
        ratio = medians["warcio index"] / medians["preserve import --no-describe"]
        print(f"  preserve import / warcio index: {ratio:.2f}x (target at least 1x)")
        describe_rate(scratch, bin_dir, args.describe_mb)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
