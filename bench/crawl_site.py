"""Crawl speed and memory: `preserve capture` against `wget --recursive` on the same site.

A deterministic generated site on loopback: an index, section pages, and
article pages sharing one stylesheet, one script and ten images; every 20th
article is a byte-for-byte duplicate of the one before it under a new URL.
The server keeps connections open between requests, as real servers do, and
both crawlers use them (wget keeps one; ours one for each connection it may
open to the host).
Optionally every response waits a fixed delay first, standing in for network
round trips. Both crawlers run ``--rounds`` times, alternating, description
deferred for ours:

    .venv/bin/python bench/crawl_site.py [--articles N] [--delay-ms D] [--rounds R]

Prints the median pages/s, peak memory (max RSS) and the ratio of our rate to wget's.

Both write into a folder in memory (``/dev/shm`` where there is one), wget's
temporary files included. The comparison is of the CPU each spends on a page,
as the issue asks: on a disk where creating a file costs a millisecond (seen
here), wget, which creates two files per page, fell to a third of its speed
and the ratio said less about the crawlers than about the disk.
"""

from __future__ import annotations

import argparse
import gzip
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

from preserve.demo import LoopbackSite, Route

PER_SECTION = 50


CORPUS = (Path(__file__).resolve().parent.parent.parent / "shared" / "corpus" / "extraction"
          / "scrapinghub-aeb" / "html")


def real_pages(folder: Path) -> list[bytes]:
    """Real news pages (the extraction benchmark's), when the shared corpus is beside us.

    They are read in place, never copied into this repository: the publishers
    keep their copyright and the corpus is for test input only.
    """
    if not folder.is_dir():
        return []
    return [gzip.decompress(path.read_bytes()) for path in sorted(folder.glob("*.html.gz"))]


def build_site(articles: int, delay: float, bodies: list[bytes] | None = None) -> dict[str, Route]:
    css = b"body{font-family:serif} .hero{background:url(/img/0.png)}" * 20
    js = b"document.documentElement.className='js';" * 20
    routes = {"/static/site.css": Route(css, "text/css", delay_seconds=delay),
              "/static/app.js": Route(js, "text/javascript", delay_seconds=delay)}
    for image in range(10):
        routes[f"/img/{image}.png"] = Route(bytes([image]) * 4096, "image/png",
                                            delay_seconds=delay)
    sections = (articles + PER_SECTION - 1) // PER_SECTION
    previous = b""
    for number in range(articles):
        real = bodies[number % len(bodies)] if bodies else None
        body = previous if number % 20 == 19 else real if real is not None else (
            f'<html lang="en"><head><title>Article {number}</title>'
            f'<link rel="stylesheet" href="/static/site.css">'
            f'<script src="/static/app.js"></script></head><body>'
            f'<nav><a href="/index.html">Home</a> <a href="/section/{number // PER_SECTION}.html">'
            f'Section</a></nav><article><h1>Article {number}</h1>'
            f'<img src="/img/{number % 10}.png">'
            + "".join(f"<p>Paragraph {p} of article {number}: " + "words " * 60 + "</p>"
                      for p in range(6))
            + "</article></body></html>").encode()
        routes[f"/article/{number}.html"] = Route(body, delay_seconds=delay)
        previous = body
    for section in range(sections):
        links = "".join(f'<li><a href="/article/{n}.html">Article {n}</a></li>'
                        for n in range(section * PER_SECTION,
                                       min(articles, (section + 1) * PER_SECTION)))
        routes[f"/section/{section}.html"] = Route(
            f"<html><body><h1>Section {section}</h1><ul>{links}</ul></body></html>".encode(),
            delay_seconds=delay)
    index = "".join(f'<a href="/section/{s}.html">Section {s}</a> ' for s in range(sections))
    routes["/index.html"] = Route(f"<html><body>{index}</body></html>".encode(),
                                  delay_seconds=delay)
    return routes


class Run(NamedTuple):
    seconds: float  # wall
    peak_mb: float  # peak RSS
    cpu: float  # user and system seconds of the command (its worker processes included)
    server_cpu: float  # of the loopback site's server, in this process, meanwhile


def timed(command: list[str], env: dict[str, str], scratch: str) -> Run:
    """Wall seconds, peak RSS (MB) and CPU seconds of one command, measured by GNU time.

    GNU time forks from a small process: measuring from Python would count the
    Python parent's pages, copied into the child until it execs.
    """
    report = f"{scratch}/time.out"
    started, server = time.perf_counter(), time.process_time()
    done = subprocess.run(["/usr/bin/time", "-f", "%U %S %M", "-o", report, *command], env=env,
                          check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    elapsed, server = time.perf_counter() - started, time.process_time() - server
    if done.returncode not in (0, 8):  # wget exits 8 when some answer was an error
        raise SystemExit(f"{command[0]} failed with exit status {done.returncode}")
    user, system, peak = Path(report).read_text().split()[-3:]
    return Run(elapsed, int(peak) / 1024, float(user) + float(system), server)


def single_core_describe_rate(routes: dict[str, Route], sample: int = 200) -> float:
    """Pages per second that one core describes, on the site's own article pages."""
    from preserve.capture.crawl import description_document
    pages = [route.body.decode() for path, route in routes.items()
             if path.startswith("/article/")][:sample]
    started = time.perf_counter()
    for number, html in enumerate(pages):
        description_document(f"http://site.test/article/{number}.html", "", html)
    return len(pages) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=2000)
    parser.add_argument("--delay-ms", type=float, default=0.0)
    parser.add_argument("--host-connections", type=int, default=4,
                        help="connections our crawl may open to the site (wget uses one)")
    parser.add_argument("--describe", action="store_true",
                        help="also crawl with description on, against one core's rate")
    parser.add_argument("--real-pages", action="store_true",
                        help="article bodies from real news pages (the shared corpus)")
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument("--rounds", type=int, default=3, help="runs of each crawler; medians")
    parser.add_argument("--scratch", type=Path,
                        default=Path("/dev/shm") if Path("/dev/shm").is_dir() else None,
                        help="where both crawlers write (default: /dev/shm, else the temp dir)")
    args = parser.parse_args()
    for tool, package in (("wget", "wget"), ("/usr/bin/time", "time")):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is needed for the comparison (apt-get install {package})")
    bodies = real_pages(args.corpus) if args.real_pages else []
    if args.real_pages and not bodies:
        print(f"crawl: no real pages in {args.corpus}; generated pages instead")
    routes = build_site(args.articles, args.delay_ms / 1000, bodies)
    pages = sum(1 for path in routes if path.endswith(".html"))
    preserve = str(Path(sys.executable).parent / "preserve")
    ours_runs: list[Run] = []
    theirs_runs: list[Run] = []
    with (LoopbackSite(routes, keep_alive=True) as site,
          tempfile.TemporaryDirectory(dir=args.scratch) as scratch):
        start = site.url("/index.html")
        env = {**os.environ, "PRESERVE_ALLOW_PRIVATE_ADDRESSES": "1", "TMPDIR": scratch}
        # Real pages name other hosts: nothing but this loopback site is ever fetched.
        loopback_only = ["--exclude", r"^https?://(?!127\.0\.0\.1[:/])"]

        def ours(home: str, *more: str) -> Run:
            env["PRESERVE_HOME"] = f"{scratch}/{home}"
            # The catalog is made before the clock starts, as it is for anyone who
            # crawls more than once (its first creation costs half a second).
            subprocess.run([sys.executable, "-c", "from preserve.catalog import open_engine; "
                            "from preserve.config import load_settings; "
                            "open_engine(load_settings().database_url).dispose()"],
                           env=env, check=True)
            try:
                return timed([preserve, "capture", start, "--collection", "bench", "--scope",
                              "host", "--depth", "3", *loopback_only, "--host-connections",
                              str(args.host_connections), *more], env, scratch)
            finally:
                shutil.rmtree(f"{scratch}/{home}", ignore_errors=True)

        def theirs(name: str) -> Run:
            # wget stays on the start host unless told to span hosts (-H): loopback only.
            try:
                return timed(["wget", "--recursive", "--level=3", "--page-requisites",
                              f"--warc-file={scratch}/{name}", "--no-verbose",
                              f"--directory-prefix={scratch}/{name}-files", start], env, scratch)
            finally:
                shutil.rmtree(f"{scratch}/{name}-files", ignore_errors=True)
                Path(f"{scratch}/{name}.warc.gz").unlink(missing_ok=True)

        for round_ in range(args.rounds):  # alternating, so drift hits both alike
            for who in (("ours", "theirs") if round_ % 2 == 0 else ("theirs", "ours")):
                site.requests.clear()
                site.connections = 0
                if who == "ours":
                    ours_runs.append(ours(f"home-{round_}", "--no-describe"))
                    ours_requests = f"{len(site.requests)} requests on {site.connections}"
                else:
                    theirs_runs.append(theirs(f"wget-{round_}"))
                    theirs_requests = f"{len(site.requests)} requests on {site.connections}"
        described = ours("home-described") if args.describe else None
    ours_s, theirs_s = (statistics.median(run.seconds for run in runs)
                        for runs in (ours_runs, theirs_runs))
    ours_mb, theirs_mb = (max(run.peak_mb for run in runs) for runs in (ours_runs, theirs_runs))
    ours_cpu, theirs_cpu, ours_server, theirs_server = (
        statistics.median(getattr(run, what) for run in runs)
        for what in ("cpu", "server_cpu") for runs in (ours_runs, theirs_runs))
    delay = f", {args.delay_ms:g} ms per response" if args.delay_ms else ""
    kind = f"real pages from {args.corpus.name}" if bodies else "generated"
    print(f"crawl: {pages} pages ({args.articles} articles, {kind}){delay}, "
          f"median of {args.rounds} runs each, written to {args.scratch or 'the temp dir'}")
    print(f"  preserve capture  {ours_s:7.2f} s  {pages / ours_s:7.0f} pages/s  "
          f"{ours_requests} connections  peak {ours_mb:.0f} MB  "
          f"CPU {ours_cpu:.2f} s (the site's server {ours_server:.2f} s)")
    print(f"  wget --recursive  {theirs_s:7.2f} s  {pages / theirs_s:7.0f} pages/s  "
          f"{theirs_requests} connections  peak {theirs_mb:.0f} MB  "
          f"CPU {theirs_cpu:.2f} s (the site's server {theirs_server:.2f} s)")
    print(f"  ratio (our pages/s / wget's): {theirs_s / ours_s:.2f}x; "
          f"CPU per page, ours / wget's: {ours_cpu / theirs_cpu:.2f}x")
    if described is not None:
        single = single_core_describe_rate(routes)
        print(f"  with description: {pages / described.seconds:7.0f} pages/s described  "
              f"peak {described.peak_mb:.0f} MB; one core describes {single:.0f} pages/s; "
              f"ratio {pages / described.seconds / single:.2f}x")


if __name__ == "__main__":
    main()
