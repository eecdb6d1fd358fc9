"""Crawling a multi-page loopback site: scope, depth, robots, politeness, retries,
redirects, truncation, deduplication, rollover, and a crawl that dies midway."""

from __future__ import annotations

import collections
import itertools
import json
import random
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import catalogued_urls, wait_until
from sqlalchemy import create_engine, select, update
from warcio.archiveiterator import ArchiveIterator

from preserve import jobs, ledger
from preserve.capture import crawl as crawler_module
from preserve.capture import frontier as frontier_module
from preserve.capture import links as links_module
from preserve.capture.warc import SealedWarc
from preserve.catalog.schema import captures, descriptions, warc_files
from preserve.demo import LoopbackSite, Route
from preserve.index import WarcIndex, index_warc

SHARED_CSS = b"body { background: url(/img/shared.png) }"
SHARED_PNG = b"\x89PNG shared image bytes"


def article(number: int, links: list[str]) -> bytes:
    anchors = "".join(f'<a href="{link}">link</a>' for link in links)
    return (f'<html lang="en"><head><title>Article {number}</title>'
            f'<link rel="stylesheet" href="/css/site.css"></head><body><article>'
            f'<h1>Article {number}</h1><p>{f"Words of article {number}. " * 30}</p>'
            f'</article><nav>{anchors}</nav></body></html>').encode()


@pytest.fixture
def web() -> Iterator[LoopbackSite]:
    """/a/1 -> /a/2 -> /a/3 -> /a/4 in a chain, /a/1 also -> /b/1 and off-site; shared CSS."""
    routes = {
        "/a/1": Route(article(1, ["/a/2", "/b/1", "http://elsewhere.test/x", "/private/p"])),
        "/a/2": Route(article(2, ["/a/3", "/a/1"])),
        "/a/3": Route(article(3, ["/a/4"])),
        "/a/4": Route(article(4, [])),
        "/b/1": Route(article(5, [])),
        "/private/p": Route(article(6, [])),
        "/css/site.css": Route(SHARED_CSS, "text/css"),
        "/img/shared.png": Route(SHARED_PNG, "image/png"),
        "/robots.txt": Route(b"User-agent: *\nDisallow: /private/\n", "text/plain"),
    }
    with LoopbackSite(routes) as site:
        yield site


def crawl(run: Any, site: LoopbackSite, *args: str, start: str = "/a/1") -> dict[str, Any]:
    result = run("capture", site.url(start), "--collection", "crawl", "--json", *args)
    assert result.status == 0, result.err
    report: dict[str, Any] = json.loads(result.out)
    return report


def pages(report: dict[str, Any], site: LoopbackSite) -> list[str]:
    return [r["url"].removeprefix(site.base_url) for r in report["responses"]
            if r["role"] == "page"]


def test_page_scope_fetches_the_page_and_its_requisites_only(run: Any, web: LoopbackSite) -> None:
    report = crawl(run, web)
    assert pages(report, web) == ["/a/1"]
    assert report["resources"] == 2  # the stylesheet and the image it references
    assert report["out_of_scope"] == 0


@pytest.mark.parametrize(("args", "expected"), [
    (("--scope", "prefix", "--depth", "1"), ["/a/1", "/a/2"]),
    (("--scope", "prefix", "--depth", "5"), ["/a/1", "/a/2", "/a/3", "/a/4"]),
    (("--scope", "host", "--depth", "1"), ["/a/1", "/a/2", "/b/1"]),
    (("--scope", "host", "--depth", "5", "--max-pages", "3"), ["/a/1", "/a/2", "/b/1"]),
    (("--scope", "host", "--depth", "5", "--exclude", "/a/[34]"), ["/a/1", "/a/2", "/b/1"]),
    (("--scope", "prefix", "--depth", "1", "--include", "/b/"), ["/a/1", "/a/2", "/b/1"]),
])
def test_scope_depth_budget_and_patterns(run: Any, web: LoopbackSite, args: tuple[str, ...],
                                         expected: list[str]) -> None:
    report = crawl(run, web, *args)
    assert pages(report, web) == expected
    # Each canonical URL once: /a/2 links back to /a/1, which is not fetched again.
    fetched = [path for path in web.requests if not path.startswith("/robots")]
    assert len(fetched) == len(set(fetched))


def test_a_crawl_keeps_its_connection_to_a_server_open(run: Any, web: LoopbackSite) -> None:
    web.keep_alive = True
    report = crawl(run, web, "--scope", "host", "--depth", "5", "--host-connections", "1")
    assert len(pages(report, web)) == 5
    # robots.txt, five pages, a stylesheet and an image: one connection for all.
    assert len(web.requests) == 8
    assert web.connections == 1


def test_a_spent_page_budget_ends_the_crawl_and_says_what_waited(
        run: Any, web: LoopbackSite) -> None:
    report = crawl(run, web, "--scope", "host", "--depth", "5", "--max-pages", "2")
    assert pages(report, web) == ["/a/1", "/a/2"]
    assert [path for path in web.requests if path.startswith("/a/") or path.startswith("/b/")
            ] == ["/a/1", "/a/2"]
    log = [json.loads(line) for line in Path(report["log"]).read_text().splitlines()]
    ended = [entry["outcome"] for entry in log if "max_pages" in str(entry.get("outcome"))]
    # /b/1 and /private/p from /a/1, /a/3 from /a/2.
    assert ended == ["max_pages reached: 3 pages waiting were not fetched"]


def test_each_target_of_a_policy_spends_its_own_page_budget(
        run: Any, web: LoopbackSite, tmp_path: Path) -> None:
    policy = tmp_path / "two.yaml"
    policy.write_text(f"""collection: crawl
capture: {{delay_seconds: 0}}
targets:
  - {{url: "{web.url('/a/1')}", scope: prefix, depth: 5, max_pages: 2}}
  - {{url: "{web.url('/b/1')}", scope: page, max_pages: 1}}
""")
    result = run("capture", "--policy", str(policy), "--json")
    assert result.status == 0, result.err
    # /b/1 is fetched as the second target's page before /a/2: it is not counted in /a/'s.
    assert pages(json.loads(result.out), web) == ["/a/1", "/b/1", "/a/2"]


def test_out_of_scope_links_are_counted_not_fetched(run: Any, web: LoopbackSite) -> None:
    report = crawl(run, web, "--scope", "prefix", "--depth", "1")
    # /b/1 and http://elsewhere.test/x are outside /a/; /private/p too.
    assert report["out_of_scope"] == 3
    assert "/b/1" not in web.requests


def test_robots_refusals_are_obeyed_logged_and_counted(run: Any, web: LoopbackSite) -> None:
    report = crawl(run, web, "--scope", "host", "--depth", "1")
    assert "/private/p" not in web.requests
    assert report["robots_refusals"] == 1
    assert web.requests.count("/robots.txt") == 1
    [robots] = [r for r in report["responses"] if r["role"] == "robots"]
    assert robots["status"] == 200  # robots.txt itself is archived
    log = [json.loads(line) for line in Path(report["log"]).read_text().splitlines()]
    assert {"url": web.url("/private/p"), "robots": "refused"}.items() <= next(
        entry for entry in log if entry.get("url") == web.url("/private/p")).items()
    ignored = crawl(run, web, "--scope", "host", "--depth", "1", "--ignore-robots")
    assert "/private/p" in pages(ignored, web) and ignored["robots_refusals"] == 0


def test_a_start_page_that_fails_does_not_lose_the_others(run: Any, web: LoopbackSite,
                                                          home: Path) -> None:
    # Several start pages (a policy's targets): one that cannot be fetched is named,
    # the others are crawled and preserved, and the command says it failed in part.
    result = run("capture", web.url("/a/4"), "http://127.0.0.1:1/gone", web.url("/b/1"),
                 "--collection", "crawl")
    assert result.status == 1, result.err
    assert "problem: start page not fetched: http://127.0.0.1:1/gone: connection refused" in (
        result.text)
    report = json.loads(run("capture", web.url("/a/4"), "http://127.0.0.1:1/gone",
                            "--collection", "crawl", "--json").out)
    assert report["start_pages_failed"] == 1 and report["pages"] == 1
    engine = create_engine(f"sqlite:///{home / 'catalog.db'}")
    try:
        assert {web.url("/a/4"), web.url("/b/1")} <= catalogued_urls(engine, home)
    finally:
        engine.dispose()
    alone = run("capture", "http://127.0.0.1:1/gone", "--collection", "crawl")
    assert alone.status == 2  # the one thing asked for: bad input, as before


def test_a_start_page_robots_txt_refuses_is_said_and_the_report_has_every_count(
        run: Any, web: LoopbackSite) -> None:
    refused = run("capture", web.url("/private/p"), "--collection", "crawl")
    assert refused.status == 1
    assert (f"problem: {web.url('/private/p')}: start page refused by robots.txt "
            "(--ignore-robots, or the policy's obey_robots: false)") in refused.text
    crawled = run("capture", web.url("/a/1"), "--collection", "crawl", "--scope", "host",
                  "--depth", "1")
    assert crawled.status == 0
    line = next(line for line in crawled.text.splitlines() if "answers:" in line)
    # robots.txt was preserved by the first capture: the second's is a revisit
    assert line.startswith("  answers: 6 × 200; revisits: 1 (34 bytes not stored again); "
                           "refused by robots.txt: 1; links out of scope: 1; ")
    assert line.endswith(" s")


def test_a_robots_txt_that_redirects_to_a_page_leaves_the_page_to_crawl(
        run: Any, web: LoopbackSite) -> None:
    # Sites send a missing robots.txt to their home page: that page is still crawled.
    web.routes["/robots.txt"] = Route(b"", status=301, headers=(("Location", "/a/2"),))
    report = crawl(run, web, "--scope", "prefix", "--depth", "2")
    assert pages(report, web) == ["/a/1", "/a/2", "/a/3"]


@pytest.mark.parametrize("served", ["gzipped", "redirected", "redirected-too-often"])
def test_robots_txt_compressed_or_moved_is_still_obeyed(run: Any, web: LoopbackSite,
                                                        served: str) -> None:
    # The crawl asks for gzip: a server that compresses robots.txt, or moves it
    # (RFC 9309: five redirects at least), must not make everything allowed.
    import gzip
    rules = web.routes["/robots.txt"].body
    if served == "gzipped":
        web.routes["/robots.txt"] = Route(gzip.compress(rules), "text/plain",
                                          headers=(("Content-Encoding", "gzip"),))
    else:
        hops = 5 if served == "redirected" else 6
        for hop in range(hops):
            web.routes["/robots.txt" if hop == 0 else f"/moved/{hop}"] = Route(
                b"", status=301, headers=(("Location", f"/moved/{hop + 1}"),))
        web.routes[f"/moved/{hops}"] = Route(rules, "text/plain")
    report = crawl(run, web, "--scope", "host", "--depth", "1")
    if served == "redirected-too-often":  # then it is as if there were none
        assert "/private/p" in web.requests and report["robots_refusals"] == 0
        return
    assert "/private/p" not in web.requests
    assert report["robots_refusals"] == 1
    robots = [r["status"] for r in report["responses"] if r["role"] == "robots"]
    assert robots == ([200] if served == "gzipped" else [301] * 5 + [200])  # every hop archived


def test_politeness_delay_between_requests_to_a_host(run: Any, web: LoopbackSite) -> None:
    times: list[float] = []
    handler_requests = web.requests

    class Timed(list[str]):
        def append(self, path: str) -> None:
            times.append(time.monotonic())
            super().append(path)

    web.requests = Timed(handler_requests)
    crawl(run, web, "--delay", "0.2")
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert len(gaps) >= 3
    assert min(gaps) >= 0.15, gaps  # without the delay they are about a millisecond

    # robots.txt's Crawl-delay is kept too, when the crawl obeys it
    web.routes["/robots.txt"] = Route(b"User-agent: *\nCrawl-delay: 0.3\n", "text/plain")
    times.clear()
    crawl(run, web)
    gaps = [later - earlier for earlier, later in itertools.pairwise(times[1:])]  # robots first
    assert len(gaps) >= 2 and min(gaps) >= 0.25, gaps
    times.clear()
    crawl(run, web, "--ignore-robots", "--no-describe")
    assert max(later - earlier for earlier, later in itertools.pairwise(times)) < 0.25


def test_a_server_that_fails_twice_then_answers(run: Any, web: LoopbackSite) -> None:
    failures = iter([Route(b"busy", status=503, headers=(("Retry-After", "0"),)),
                     Route(b"busy", status=503)])
    real = web.routes["/a/4"]

    class Flaky(dict[str, Route]):
        def get(self, path: str, default: Any = None) -> Any:
            if path == "/a/4":
                return next(failures, real)
            return super().get(path, default)

    web.routes = Flaky(web.routes)
    report = crawl(run, web, "--scope", "prefix", "--depth", "5")
    assert web.requests.count("/a/4") == 3
    assert "/a/4" in pages(report, web)
    log = [json.loads(line) for line in Path(report["log"]).read_text().splitlines()]
    attempts = [(e["attempt"], e["outcome"]) for e in log
                if e.get("url") == web.url("/a/4") and "attempt" in e]
    assert attempts == [(1, 503), (2, 503), (3, 200)]


def test_a_server_that_never_recovers_is_archived_as_answered(run: Any,
                                                              web: LoopbackSite) -> None:
    web.routes["/a/4"] = Route(b"down", status=503)
    report = crawl(run, web, "--scope", "prefix", "--depth", "5")
    assert web.requests.count("/a/4") == 3
    assert report["status_codes"]["503"] == 1


def test_a_server_asking_to_come_back_much_later_is_not_asked_sooner(
        run: Any, web: LoopbackSite) -> None:
    # Retry-After beyond what a crawl waits (60 s): the answer stands as given, where the
    # crawl used to ask again after 60 s, sooner than the server said.
    web.routes["/a/4"] = Route(b"busy", status=503, headers=(("Retry-After", "90"),))
    started = time.monotonic()
    report = crawl(run, web, "--scope", "prefix", "--depth", "5")
    assert time.monotonic() - started < 30  # no wait of a minute
    assert web.requests.count("/a/4") == 1 and report["status_codes"]["503"] == 1
    log = [json.loads(line) for line in Path(report["log"]).read_text().splitlines()]
    assert {"url": web.url("/a/4"),
            "outcome": "not retried: Retry-After 90 asks for more than 60 s"}.items() <= next(
        e for e in log if e.get("outcome", "") and str(e["outcome"]).startswith("not retried")
    ).items()


def test_redirects_are_followed_within_scope_only(run: Any, web: LoopbackSite) -> None:
    web.routes["/a/2"] = Route(b"", status=302, headers=(("Location", "/b/1"),))
    report = crawl(run, web, "--scope", "prefix", "--depth", "3")
    roles = {r["url"].removeprefix(web.base_url): r["role"] for r in report["responses"]}
    assert roles["/a/2"] == "redirect"
    assert "/b/1" not in roles  # outside /a/: the redirect is archived, not followed


def test_a_redirect_loop_is_named_and_a_redirect_out_of_scope_counted(
        run: Any, web: LoopbackSite) -> None:
    web.routes["/loop/1"] = Route(b"", status=302, headers=(("Location", "/loop/2"),))
    web.routes["/loop/2"] = Route(b"", status=302, headers=(("Location", "/loop/1"),))
    looped = run("capture", web.url("/loop/1"), "--collection", "crawl", "--json")
    assert looped.status == 1  # nothing but redirects came of the page asked for
    report = json.loads(looped.out)
    assert report["pages"] == 0 and report["start_pages_failed"] == 1
    assert report["errors"] == [f"{web.url('/loop/1')}: redirect loop ({web.url('/loop/1')} -> "
                                f"{web.url('/loop/2')} -> {web.url('/loop/1')})"]
    assert [r["role"] for r in report["responses"]] == ["robots", "redirect", "redirect"]

    web.routes["/a/2"] = Route(b"", status=302, headers=(("Location", "/elsewhere/9"),))
    moved = crawl(run, web, "--scope", "prefix", "--depth", "1")
    assert "/elsewhere/9" not in web.requests
    assert moved["out_of_scope"] == 4  # /b/1, elsewhere.test, /private/p; and /elsewhere/9
    assert moved["pages"] == 1  # /a/1; /a/2 is a redirect archived, no page


def test_a_large_resource_is_cut_and_marked(run: Any, web: LoopbackSite, home: Path) -> None:
    web.routes["/img/shared.png"] = Route(b"x" * 50_000, "image/png")
    report = crawl(run, web, "--max-resource-bytes", "20000")
    assert any("cut at 20000 bytes" in error for error in report["errors"])
    path = home / "objects" / report["warcs"][0]["key"]
    found = []
    with path.open("rb") as stream:
        for record in ArchiveIterator(stream):
            uri = record.rec_headers.get_header("WARC-Target-URI")
            if record.rec_type == "response" and uri == web.url("/img/shared.png"):
                found.append((record.rec_headers.get_header("WARC-Truncated"),
                              len(record.content_stream().read())))
    assert found == [("length", 20_000)]


def test_duplicate_payloads_become_revisits_within_and_across_crawls(
        run: Any, web: LoopbackSite, home: Path, database_url: str) -> None:
    web.routes["/a/2"] = Route(web.routes["/a/1"].body)  # the same page under two URLs
    first = crawl(run, web, "--scope", "prefix", "--depth", "1")
    assert first["revisits"] == 1 and first["bytes_saved"] == len(web.routes["/a/1"].body)
    assert [r["url"] for r in first["responses"] if r["revisit"]] == [web.url("/a/2")]

    second = crawl(run, web, "--scope", "prefix", "--depth", "1")
    # Everything with a body already preserved: robots.txt, both pages, the CSS, the image.
    assert second["revisits"] == 5
    path = home / "objects" / second["warcs"][0]["key"]
    with path.open("rb") as stream:
        revisits = [r for r in ArchiveIterator(stream) if r.rec_type == "revisit"]
    assert len(revisits) == 5
    for record in revisits:
        headers = record.rec_headers
        assert headers.get_header("WARC-Profile") == (
            "http://netpreserve.org/warc/1.1/revisit/identical-payload-digest")
        assert headers.get_header("WARC-Refers-To-Target-URI")
        assert headers.get_header("WARC-Refers-To-Date")
    # The bytes are still there for whoever asks, whichever capture they land on.
    for path_ in ("/a/1", "/a/2", "/css/site.css", "/img/shared.png"):
        result = run("get", web.url(path_), "--payload")
        assert result.status == 0, result.err
        assert result.out == web.routes[path_].body
    assert run("fixity", "run").status == 0

    # Another collection holds its own bytes: it does not stand on this one's (its
    # export would lack them, and a deletion here would be refused for its sake).
    other = json.loads(run("capture", web.url("/a/1"), "--collection", "other", "--scope",
                           "prefix", "--depth", "1", "--json").out)
    assert other["revisits"] == 1  # /a/2, the same page as /a/1 in this very collection
    assert [r["url"] for r in other["responses"] if r["revisit"]] == [web.url("/a/2")]


def test_a_page_with_many_requisites_is_fetched_only_a_few_ahead(
        run: Any, web: LoopbackSite, monkeypatch: pytest.MonkeyPatch) -> None:
    """Answers fetched ahead wait in memory to be written: however many requisites a
    page has, no more are fetched ahead than twice the fetching threads (and pages)."""
    images = [f"/img/{number}.png" for number in range(60)]
    web.routes["/gallery"] = Route(
        ("<html><body>" + "".join(f'<img src="{image}">' for image in images)
         + "</body></html>").encode())
    for image in images:
        web.routes[image] = Route(image.encode() * 100, "image/png")
    waiting: list[int] = []
    real_fetch = crawler_module._Crawler._fetch

    def counting_fetch(self: Any, *args: Any, **kwargs: Any) -> Any:
        waiting.append(len(self.pending))
        return real_fetch(self, *args, **kwargs)

    monkeypatch.setattr(crawler_module._Crawler, "_fetch", counting_fetch)
    report = crawl(run, web, "--no-describe", start="/gallery")
    assert report["resources"] == 60
    assert {web.url(image) for image in images} <= {r["url"] for r in report["responses"]}
    assert len(waiting) > 60 and max(waiting) <= 3 * crawler_module.CrawlOptions().concurrency


def test_progress_on_a_terminal_counts_pages_responses_and_bytes(
        run: Any, web: LoopbackSite, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    result = run("capture", web.url("/a/1"), "--collection", "crawl", "--scope", "prefix",
                 "--depth", "5")
    assert result.status == 0, result.err
    shown = [line for line in result.err.split("\r") if line.startswith("fetched")]
    # robots.txt, four pages, the stylesheet and its image; the last counts shown last
    assert shown[-1].split(" (")[0] == "fetched 4 pages, 7 responses, 0.0 MB"
    assert len(shown) < 7 + 2  # never more than once a response, and the last again


def test_a_warc_rolls_over_at_its_record_limit_and_revisits_still_find_originals(
        run: Any, web: LoopbackSite, home: Path, monkeypatch: pytest.MonkeyPatch,
        database_url: str) -> None:
    """The open file's index is what a crawl keeps in memory: a file is sealed at a
    number of records too, and the payloads it held are found in the catalog after."""
    monkeypatch.setattr(jobs, "WARC_RECORD_LIMIT", 4)
    web.routes["/a/2"] = Route(web.routes["/a/1"].body)  # the same page under two URLs
    kept: list[int] = []
    real_checkpoint = crawler_module._Crawler._checkpoint

    def checkpoint(self: Any) -> None:
        real_checkpoint(self)
        kept.append(len(self.payloads))

    monkeypatch.setattr(crawler_module._Crawler, "_checkpoint", checkpoint)
    report = crawl(run, web, "--scope", "prefix", "--depth", "5", "--no-describe")
    # robots.txt, /a/1, its stylesheet and image: 9 records with the warcinfo, sealed
    # there; then /a/2, whose payload is /a/1's, found in the catalog (the crawl
    # forgot the payloads of the file it sealed).
    assert len(report["warcs"]) == 2 and report["revisits"] == 1
    assert kept == [0, 0]
    revisit = next(r for r in report["responses"] if r["revisit"])
    assert revisit["url"] == web.url("/a/2")
    for warc in report["warcs"]:
        with (home / "objects" / warc["key"]).open("rb") as stream:
            records = list(ArchiveIterator(stream))
        for record in records:
            if record.rec_type == "revisit":
                assert record.rec_headers.get_header("WARC-Refers-To-Target-URI") == \
                    web.url("/a/1")
    assert run("get", web.url("/a/2"), "--payload").out == web.routes["/a/1"].body


def test_the_report_lists_the_first_responses_and_errors_and_counts_the_rest(
        run: Any, web: LoopbackSite, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(crawler_module, "REPORTED", 2)
    web.routes["/img/shared.png"] = Route(b"x" * 5_000, "image/png")
    web.routes["/a/4"] = Route(article(4, []) + b" " * 5_000)
    args = ("--scope", "prefix", "--depth", "5", "--max-resource-bytes", "4000")
    report = crawl(run, web, *args)
    assert report["pages"] == 4 and report["resources"] == 2
    assert len(report["responses"]) == 2 and report["responses_omitted"] == 7 - 2
    assert report["status_codes"] == {"200": 7}  # counts cover every response
    assert len(report["errors"]) == 2 and report["errors_omitted"] == 0
    assert all("cut at 4000 bytes" in error for error in report["errors"])
    text = run("capture", web.url("/a/1"), "--collection", "crawl", *args)
    assert "and 5 more responses: see the crawl log" in text.out.decode()
    monkeypatch.setattr(crawler_module, "REPORTED", 1)
    again = crawl(run, web, *args)
    assert len(again["errors"]) == 1 and again["errors_omitted"] == 1
    with Path(again["log"]).open() as log:
        logged = [json.loads(line)["error"] for line in log if '"error"' in line]
    assert sorted(logged) == sorted(report["errors"])


@pytest.mark.parametrize("disk", ["room", "full"])
def test_the_frontier_keeps_its_order_with_most_of_it_in_a_file(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, disk: str) -> None:
    monkeypatch.setattr(frontier_module, "BLOCK", 3)
    monkeypatch.setattr(frontier_module, "COPY", 7)  # the file's space moved in small steps
    if disk == "full":  # no file can be made: the blocks stay in memory
        def no_room(**_: Any) -> Any:
            raise OSError(28, "No space left on device")
        monkeypatch.setattr(frontier_module.tempfile, "TemporaryFile", no_room)
    queue: frontier_module.Frontier[int] = frontier_module.Frontier(range(5), tmp_path)
    model = collections.deque(range(5))
    chance = random.Random(7)
    added, largest = 5, 0
    for step in range(4_000):  # appends and takes at random, growing, then draining
        if chance.random() < (0.6 if step < 2_000 else 0.35):
            queue.append(added)
            model.append(added)
            added += 1
        elif model:
            assert queue.next_in_line(2) == list(model)[:len(queue.next_in_line(2))]
            assert queue.next_in_line(2)  # never nothing while something waits
            assert queue.popleft() == model.popleft()
        assert len(queue) == len(model)
        if disk == "room":
            assert len(queue._head) + len(queue._tail) <= 2 * 3  # the rest is in the file
        largest = max(largest, queue._end)
        waiting = sum(length for block in queue._blocks if isinstance(block, tuple)
                      for length in block[1:])
        assert queue._end <= 2 * waiting + 64  # read blocks' space is given back
    while model:
        assert queue.popleft() == model.popleft()
    assert not queue and queue._end == 0
    assert (largest > 0) == (disk == "room")
    with pytest.raises(IndexError):
        queue.popleft()
    queue.close()


def test_fingerprints_know_what_was_added() -> None:
    met = frontier_module.Fingerprints()
    met.add("com,example)/a")
    assert "com,example)/a" in met and "com,example)/b" not in met
    met.close()


@pytest.mark.parametrize("disk", ["room", "full"])
def test_fingerprints_in_runs_and_files_know_what_was_added(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, disk: str) -> None:
    monkeypatch.setattr(frontier_module, "RECENT", 8)
    monkeypatch.setattr(frontier_module, "RUN_IN_MEMORY", 32)
    monkeypatch.setattr(frontier_module, "PAGE", 4)
    monkeypatch.setattr(frontier_module, "_MERGE_READ", 12)
    if disk == "full":
        def no_room(**_: Any) -> Any:
            raise OSError(28, "No space left on device")
        monkeypatch.setattr(frontier_module.tempfile, "TemporaryFile", no_room)
    met = frontier_module.Fingerprints(tmp_path)
    model: set[str] = set()
    chance = random.Random(11)
    for step in range(3_000):
        key = f"com,example)/page/{chance.randrange(2_500)}"
        if chance.random() < 0.5:
            met.add(key)
            model.add(key)
        probe = f"com,example)/page/{chance.randrange(2_500)}"
        assert (probe in met) == (probe in model), (step, probe)
        assert len(met._runs) <= 12  # merged as they grow: about log2 of the count
        assert len(met._recent) < 8 and len(met._hits) <= 8  # however often asked
    assert all(f"com,example)/page/{n}" in met for n in range(2_500)
               if f"com,example)/page/{n}" in model)
    on_disk = [run for run in met._runs if run.on_disk]
    assert bool(on_disk) == (disk == "room")
    assert all(len(run) > 32 for run in on_disk)
    if disk == "room":  # else everything stays in memory, and the crawl goes on
        assert sum(len(run) for run in met._runs if not run.on_disk) <= 2 * 32
    met.close()


def test_a_crawl_whose_frontier_and_seen_urls_go_to_files_fetches_the_same_pages(
        run: Any, web: LoopbackSite, monkeypatch: pytest.MonkeyPatch) -> None:
    args = ("--scope", "host", "--depth", "5", "--no-describe")
    whole = crawl(run, web, *args)
    monkeypatch.setattr(frontier_module, "BLOCK", 1)
    monkeypatch.setattr(frontier_module, "RECENT", 1)
    monkeypatch.setattr(frontier_module, "RUN_IN_MEMORY", 1)
    monkeypatch.setattr(frontier_module, "PAGE", 1)
    monkeypatch.setattr(frontier_module, "_MERGE_READ", 1)
    small = crawl(run, web, *args)
    assert pages(small, web) == pages(whole, web) == ["/a/1", "/a/2", "/b/1", "/a/3", "/a/4"]
    assert small["out_of_scope"] == whole["out_of_scope"] == 1


@pytest.mark.parametrize(("body", "error"), [
    ("<template>" * 2_000 + '<img src="/img/deep.png">', None),
    ("<ul><li>" * 20_000 + '<img src="/img/deep.png">', "nests 20000 elements deep"),
])
def test_a_page_too_odd_to_read_is_archived_and_the_crawl_goes_on(
        run: Any, web: LoopbackSite, body: str, error: str | None) -> None:
    web.routes["/a/2"] = Route(body.encode())
    web.routes["/img/deep.png"] = Route(SHARED_PNG + b"deep", "image/png")
    report = crawl(run, web, "--scope", "prefix", "--depth", "5", "--no-describe")
    assert pages(report, web) == ["/a/1", "/a/2"]
    fetched = {r["url"] for r in report["responses"]}
    if error is None:  # templates inside templates, two thousand deep, read in turn
        assert web.url("/img/deep.png") in fetched and not report["errors"]
    else:  # archived, not read for links, and the report says so
        assert web.url("/img/deep.png") not in fetched
        assert report["errors"] == [f"{web.url('/a/2')}: not read for links: it {error} "
                                    f"(more than {links_module.MAX_NESTING})"]


def test_an_answer_the_reader_fails_on_is_listed_and_the_crawl_goes_on(
        run: Any, web: LoopbackSite, monkeypatch: pytest.MonkeyPatch) -> None:
    real_fetch = crawler_module.fetch

    def failing(url: str, *args: Any) -> Any:
        if url.endswith("/a/2"):
            raise ValueError("an unforeseen oddity")
        return real_fetch(url, *args)

    monkeypatch.setattr(crawler_module, "fetch", failing)
    report = crawl(run, web, "--scope", "host", "--depth", "5")
    assert pages(report, web) == ["/a/1", "/b/1"]
    assert report["errors"] == [web.url("/a/2") + ": the answer could not be read "
                                "(ValueError: an unforeseen oddity)"]


def test_a_page_the_link_reader_fails_on_is_archived_and_the_crawl_goes_on(
        run: Any, web: LoopbackSite, monkeypatch: pytest.MonkeyPatch) -> None:
    real = crawler_module.html_links

    def failing(html: str, base: str) -> Any:
        if base.endswith("/a/2"):
            raise RuntimeError("the parser gave up")
        return real(html, base)

    monkeypatch.setattr(crawler_module, "html_links", failing)
    report = crawl(run, web, "--scope", "prefix", "--depth", "5", "--no-describe")
    assert pages(report, web) == ["/a/1", "/a/2"]
    assert report["errors"] == [f"{web.url('/a/2')}: not read for links "
                                "(RuntimeError: the parser gave up)"]
    assert run("get", web.url("/a/2"), "--payload").out == web.routes["/a/2"].body


def test_warcs_roll_over_and_each_is_catalogued(run: Any, web: LoopbackSite,
                                                database_url: str) -> None:
    report = crawl(run, web, "--scope", "host", "--depth", "5", "--warc-size", "3000")
    assert len(report["warcs"]) >= 3
    assert sum(1 for _ in report["warcs"]) == len({w["key"] for w in report["warcs"]})
    engine = create_engine(database_url)
    with engine.connect() as connection:
        stored = {row.key for row in connection.execute(select(warc_files))}
        assert ledger.verify(connection).passed
    engine.dispose()
    assert stored == {w["key"] for w in report["warcs"]}
    for path_ in ("/a/1", "/a/4", "/b/1"):
        assert run("get", web.url(path_), "--payload").out == web.routes[path_].body


def test_a_rollover_at_the_end_leaves_no_empty_file(run: Any, web: LoopbackSite,
                                                   database_url: str) -> None:
    # Every page fills a file: the one opened after the last holds its warcinfo alone,
    # and is not stored.
    report = crawl(run, web, "--scope", "host", "--depth", "5", "--warc-size", "1",
                   "--no-describe")
    engine = create_engine(database_url)
    with engine.connect() as connection:
        records = [row.records for row in connection.execute(select(warc_files))]
    engine.dispose()
    assert len(records) == len(report["warcs"]) == report["pages"]  # a file per page
    assert min(records) > 1


def test_the_index_kept_while_writing_is_what_the_file_says(
        run: Any, web: LoopbackSite, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ingest takes the index the writer kept; reading the sealed file must give the same,
    or a catalog rebuilt from storage would differ from the one the crawl made."""
    web.routes["/a/2"] = Route(b"", status=302, headers=(("Location", "/a/3"),))
    web.routes["/a/4"] = Route(article(4, ["/a/missing"]))
    web.routes["/img/shared.png"] = Route(b"x" * 50_000, "image/png")
    compared: list[tuple[WarcIndex | None, WarcIndex]] = []
    real_ingest = jobs.ingest

    def checking_ingest(sealed: SealedWarc, **kwargs: Any) -> Any:
        with sealed.path.open("rb") as stream:
            compared.append((sealed.index, index_warc(stream, sealed.path.name)))
        return real_ingest(sealed, **kwargs)

    monkeypatch.setattr(jobs, "ingest", checking_ingest)
    for _ in range(2):  # the second crawl writes revisits of the first one's payloads
        crawl(run, web, "--scope", "prefix", "--depth", "5", "--max-resource-bytes", "20000",
              "--warc-size", "4000")
    kinds = {entry.record_type for _, read in compared for entry in read.captures}
    statuses = {entry.status for _, read in compared for entry in read.captures}
    assert kinds == {"response", "revisit"} and {200, 302, 404} <= statuses
    assert sum(len(read.descriptions) for _, read in compared) >= 6
    assert len(compared) > 2
    for kept, read in compared:
        assert kept == read


def killed_midway(web: LoopbackSite, home: Path, *args: str, interrupt: bool = False) -> str:
    """Start a crawl of /a/1 on, kill it (SIGKILL) while /a/3 is being fetched, and wait
    until nothing of it lingers (its description workers notice and leave too). With
    ``interrupt``, Ctrl-C instead: SIGINT to every process of the command, as a terminal
    sends it. Returns what the command wrote on standard error."""
    import os
    import signal
    import subprocess

    web.routes["/a/3"] = Route(article(3, ["/a/4"]), delay_seconds=30)
    preserve = Path(sys.executable).parent / "preserve"
    process = subprocess.Popen(
        [str(preserve), "capture", web.url("/a/1"), "--collection", "killed", "--scope",
         "prefix", "--depth", "5", *args],
        env=os.environ.copy(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        start_new_session=True)
    wait_until(lambda: "/a/3" in web.requests, 20)
    assert "/a/3" in web.requests, "the crawl never reached the slow page"
    if interrupt:
        os.killpg(process.pid, signal.SIGINT)
    else:
        process.send_signal(signal.SIGKILL)
    # Gone well before the slow page's 30 s: a fetch in flight does not hold it.
    said = process.communicate(timeout=10)[1].decode()
    marker = f"PRESERVE_HOME={home}".encode()

    def lingering() -> list[int]:
        found = []
        for proc in Path("/proc").iterdir():
            try:
                if proc.name.isdigit() and marker in (proc / "environ").read_bytes().split(b"\0"):
                    found.append(int(proc.name))
            except OSError:
                continue
        return found

    deadline = time.monotonic() + 10
    while lingering() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert lingering() == []
    web.routes["/a/3"] = Route(article(3, ["/a/4"]))
    return said


def test_a_crawl_killed_midway_leaves_the_catalog_consistent(web: LoopbackSite,
                                                             home: Path) -> None:
    killed_midway(web, home, "--warc-size", "2000")
    engine = create_engine(f"sqlite:///{home / 'catalog.db'}")
    with engine.connect() as connection:
        catalogued = {row.key: row.sha256 for row in connection.execute(select(warc_files))}
        check = ledger.verify(connection)
    engine.dispose()
    stored = {p.relative_to(home / "objects").as_posix()
              for p in (home / "objects").rglob("*.warc.gz")}
    assert catalogued, "files sealed before the kill were preserved"
    assert stored == set(catalogued)  # nothing stored that the catalog does not know
    assert check.passed, check.problems
    from preserve import cli
    assert cli.main(["fixity", "run"]) == 0


def test_ctrl_c_stops_a_crawl_with_one_line(web: LoopbackSite, home: Path) -> None:
    # Ctrl-C reaches the description workers too: none prints a traceback.
    said = killed_midway(web, home, "--warc-size", "2000", interrupt=True)
    assert said == "preserve: interrupted\n"


def test_ctrl_c_does_not_wait_out_a_politeness_delay(web: LoopbackSite, home: Path) -> None:
    import os
    import signal
    import subprocess

    preserve = Path(sys.executable).parent / "preserve"
    process = subprocess.Popen(
        [str(preserve), "capture", web.url("/a/1"), "--collection", "polite", "--scope",
         "prefix", "--depth", "3", "--delay", "30"],
        env=os.environ.copy(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        start_new_session=True)
    wait_until(lambda: "/a/1" in web.requests, 20)
    time.sleep(0.5)  # the next request waits its 30 s turn
    os.killpg(process.pid, signal.SIGINT)
    said = process.communicate(timeout=10)[1].decode()  # not the 30 s
    assert said == "preserve: interrupted\n"


def test_what_a_killed_crawl_fetched_is_named_and_can_still_be_preserved(
        run: Any, web: LoopbackSite, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The file being written when the crawl died holds what it fetched: the next
    # command names it, and importing it preserves its whole records.
    killed_midway(web, home)  # one file for the whole crawl: nothing was sealed
    [left] = (home / "work").glob("*.warc.gz")
    from preserve import workdir
    monkeypatch.setattr(workdir, "QUIET_SECONDS", 0.0)
    later = run("capture", web.url("/b/1"), "--collection", "later")
    assert later.status == 0, later.err
    command = f"preserve import --lenient {left} --collection killed"
    assert f"preserve: note: {left} (" in later.err and command in later.err, later.err

    imported = run(*command.split()[1:])
    assert imported.status == 0, imported.err
    assert "removed from the work folder" in imported.text
    assert not left.exists()
    assert run("capture", web.url("/b/1"), "--collection", "later").err == ""  # said once
    engine = create_engine(f"sqlite:///{home / 'catalog.db'}")
    try:
        urls = catalogued_urls(engine, home)
    finally:
        engine.dispose()
    assert {web.url("/a/1"), web.url("/a/2"), web.url("/css/site.css")} <= urls
    assert run("fixity", "run").status == 0


def test_a_sealed_file_that_cannot_be_stored_is_kept_for_an_import(
        run: Any, web: LoopbackSite, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Its pages were fetched once and may not be there to fetch again: when no copy
    # can be made, the error says where the sealed file is kept and how to preserve it.
    from preserve.errors import StorageError

    def store_down(*args: Any, **kwargs: Any) -> None:
        raise StorageError("local: the disk is full")

    real_ingest = jobs.ingest
    monkeypatch.setattr(jobs, "ingest", store_down)
    failed = run("capture", web.url("/a/1"), "--collection", "crawl", "--scope", "prefix",
                 "--depth", "1")
    [kept] = (home / "work").glob("*.warc.gz")
    assert failed.status == 1
    assert failed.err == (f"preserve: error: local: the disk is full; the sealed file is kept: "
                          f"`preserve import {kept} --collection crawl` preserves it once that "
                          "is mended\n")

    monkeypatch.setattr(jobs, "ingest", real_ingest)
    imported = run("import", kept, "--collection", "crawl")
    assert imported.status == 0, imported.err
    engine = create_engine(f"sqlite:///{home / 'catalog.db'}")
    try:
        assert {web.url("/a/1"), web.url("/a/2")} <= catalogued_urls(engine, home)
    finally:
        engine.dispose()
    assert not kept.exists()


@pytest.mark.parametrize("backlog", [None, 1], ids=["backlog-default", "backlog-of-one"])
def test_every_page_of_a_crawl_is_described(run: Any, web: LoopbackSite,
                                            monkeypatch: pytest.MonkeyPatch,
                                            backlog: int | None) -> None:
    # A crawl describes in worker processes; each metadata record still lands,
    # linked to its page, even across WARC files that roll over, and when the
    # crawl has to wait for each description in turn (a backlog of one character).
    waiting: list[int] = []
    real_describe = crawler_module._Crawler._describe

    def describe(self: Any, *args: Any) -> None:
        real_describe(self, *args)
        waiting.append(len(self.descriptions))

    monkeypatch.setattr(crawler_module._Crawler, "_describe", describe)
    if backlog is not None:
        monkeypatch.setattr(crawler_module, "DESCRIBE_BACKLOG_CHARS", backlog)
    crawl(run, web, "--scope", "host", "--depth", "5", "--warc-size", "3000")
    assert len(waiting) == 5
    if backlog is not None:
        assert max(waiting) == 0  # each page waited for its own description
    for number, path in ((1, "/a/1"), (2, "/a/2"), (4, "/a/4"), (5, "/b/1")):
        meta = json.loads(run("get", web.url(path), "--json").out)
        assert meta["title"] == f"Article {number}", path
        assert f"Words of article {number}." in meta["text"]
    assert run("ledger", "verify").status == 0


def test_no_describe_then_redescribe(run: Any, web: LoopbackSite, home: Path) -> None:
    report = crawl(run, web, "--scope", "prefix", "--depth", "5", "--no-describe")
    captured_keys = {w["key"] for w in report["warcs"]}
    before = {key: (home / "objects" / key).read_bytes() for key in captured_keys}
    assert json.loads(run("get", web.url("/a/2"), "--json").out)["title"] is None

    result = run("redescribe", "--json")
    assert result.status == 0, result.err
    redescribed = json.loads(result.out)
    assert redescribed["described"] == 4 and redescribed["errors"] == []
    [companion] = redescribed["warcs"]
    assert companion["key"] not in captured_keys
    # The captures themselves are untouched; the descriptions refer to them.
    assert {key: (home / "objects" / key).read_bytes() for key in captured_keys} == before
    with (home / "objects" / companion["key"]).open("rb") as stream:
        metadata = [r for r in ArchiveIterator(stream) if r.rec_type == "metadata"]
    assert len(metadata) == 4
    assert all(r.rec_headers.get_header("WARC-Refers-To") for r in metadata)
    for number, path in ((1, "/a/1"), (3, "/a/3")):
        assert json.loads(run("get", web.url(path), "--json").out)["title"] == f"Article {number}"
    again = json.loads(run("redescribe", "--json").out)
    assert again["described"] == 0 and again["warcs"] == []
    assert run("ledger", "verify").status == 0 and run("fixity", "run").status == 0


def test_redescribe_appends_and_the_catalog_shows_the_newest(run: Any, web: LoopbackSite,
                                                             home: Path) -> None:
    report = crawl(run, web, "--scope", "prefix", "--depth", "5")
    first = json.loads(run("get", web.url("/a/1"), "--json").out)
    first_description = _description_of(home, first)
    engine = create_engine(f"sqlite:///{home / 'catalog.db'}")
    with engine.begin() as connection:  # as if an older extractor had described /a/1
        connection.execute(update(descriptions).where(
            descriptions.c.record_id == first_description["record_id"]
        ).values(extractor_version="0.1", title="Old title"))
    engine.dispose()

    outdated = json.loads(run("redescribe", "--json").out)
    everything = json.loads(run("redescribe", "--all", "--json").out)
    latest = json.loads(run("get", web.url("/a/1"), "--json").out)

    assert outdated["described"] == 1  # only the page an older version described
    assert everything["described"] == 4
    assert latest["title"] == "Article 1"
    descriptions_made = [record for record in latest["related"]
                         if record["record_type"] == "metadata"]
    # The archive keeps all three; the catalog shows the newest.
    assert len(descriptions_made) == 3
    assert _description_of(home, latest)["record_id"] == descriptions_made[-1]["record_id"]
    keys = {w["key"] for w in report["warcs"]}
    assert {record["warc"]["key"] for record in descriptions_made} - keys == {
        w["key"] for run_report in (outdated, everything) for w in run_report["warcs"]}
    assert run("ledger", "verify").status == 0


def _description_of(home: Path, snapshot: dict[str, Any]) -> dict[str, Any]:
    """The metadata record the catalog's description of a snapshot came from."""
    engine = create_engine(f"sqlite:///{home / 'catalog.db'}")
    with engine.connect() as connection:
        row = connection.execute(select(descriptions.c.record_id).join(
            captures, captures.c.id == descriptions.c.capture_id).where(
            captures.c.id == snapshot["id"])).one()
    engine.dispose()
    return {"record_id": row.record_id}


def test_list_marks_captures_whose_text_changed(run: Any, web: LoopbackSite) -> None:
    crawl(run, web, "--scope", "page")
    crawl(run, web, "--scope", "page")
    web.routes["/a/1"] = Route(article(1, []).replace(b"Words of article 1.",
                                                     b"Entirely different words now."))
    crawl(run, web, "--scope", "page")

    listed = json.loads(run("list", web.url("/a/1"), "--json").out)["captures"]
    text = run("list", web.url("/a/1")).out.decode()

    assert [capture["text_change"] for capture in listed] == ["first", "same", "changed"]
    assert [line.split()[5] for line in text.splitlines()] == ["text", "same", "CHANGED"]
