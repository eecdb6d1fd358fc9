"""Full-text search over descriptions, on SQLite (FTS5) and PostgreSQL (tsvector): words and
phrases, ranking, snippets, filters, embargo; `preserve search` and `/api/search`."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import api_client, bearer

from preserve.catalog import SearchFilters, open_engine
from preserve.demo import LoopbackSite, Route
from preserve.retrieve import search


def article(title: str, publisher: str, body: str) -> bytes:
    return (f'<html lang="en"><head><title>{title}</title>'
            f'<meta property="og:site_name" content="{publisher}"></head><body><article>'
            f"<h1>{title}</h1>" + "".join(f"<p>{body} Paragraph {n} says more about it, "
                                          "at some length, as articles do.</p>"
                                          for n in range(4))
            + "</article></body></html>").encode()


@pytest.fixture
def archive(run: Any, database_url: str) -> dict[str, str]:
    pages = {
        "/glaciers": article("Glaciers retreat in the Alps", "Mountain Post",
                             "The glaciers of the Alps lost ice again this summer."),
        "/budget": article("City budget approved", "Town Herald",
                           "The council approved the budget after a long debate."),
        "/ice": article("Ice hockey final", "Town Herald",
                        "The final went to overtime on the ice rink downtown."),
    }
    with LoopbackSite({path: Route(body) for path, body in pages.items()}) as site:
        urls = {path: site.url(path) for path in pages}
        for path, url in urls.items():
            collection = "sport" if path == "/ice" else "news"
            assert run("capture", url, "--collection", collection).status == 0
    return urls


def urls_of(hits: list[Any]) -> list[str]:
    return [hit.snapshot.url for hit in hits]


def test_words_phrases_ranking_and_snippets(archive: dict[str, str], database_url: str) -> None:
    engine = open_engine(database_url)

    total, hits = search(engine, "glaciers")
    both_total, both = search(engine, "ice")
    phrase_total, _ = search(engine, '"budget approved"')
    wrong_order, _ = search(engine, '"approved budget"')
    nothing, _ = search(engine, "volcano")
    every_word, _ = search(engine, "ice glaciers")

    assert (total, urls_of(hits)) == (1, [archive["/glaciers"]])
    assert "«glaciers»" in hits[0].snippet.lower()
    assert both_total == 2
    # A title match ranks above a match in the text only.
    assert urls_of(both)[0] == archive["/ice"]
    assert (phrase_total, wrong_order, nothing, every_word) == (1, 0, 0, 1)
    engine.dispose()


def test_an_unfiltered_search_finds_what_the_filtered_form_finds(
        archive: dict[str, str], database_url: str) -> None:
    """On SQLite an unfiltered search is counted and ranked inside FTS5; an embargo of a
    collection nobody has forces the joined form, which must give the same page."""
    engine = open_engine(database_url)
    nobody = {"no-such-collection": datetime.now(UTC)}
    for words in ("ice", "the", '"budget approved"', "volcano"):
        for limit, offset in ((20, 0), (1, 0), (1, 1), (5, 2)):
            fast = search(engine, words, SearchFilters(), limit, offset)
            joined = search(engine, words, SearchFilters(), limit, offset, hidden=nobody)
            assert fast[0] == joined[0], words
            assert [(hit.snapshot, hit.snippet) for hit in fast[1]] == [
                (hit.snapshot, hit.snippet) for hit in joined[1]], (words, limit, offset)
            assert [hit.score for hit in fast[1]] == pytest.approx(
                [hit.score for hit in joined[1]])
    engine.dispose()


def test_filters(archive: dict[str, str], database_url: str) -> None:
    engine = open_engine(database_url)

    def count(**filters: Any) -> int:
        return search(engine, "the", SearchFilters(**filters))[0]

    assert count() == 3
    assert count(collection="news") == 2
    assert count(publisher="town herald") == 2
    assert count(publisher="Town Herald", collection="sport") == 1
    assert count(start=datetime.now(UTC) + timedelta(days=1)) == 0
    assert count(end=datetime.now(UTC) + timedelta(days=1), status=200) == 3
    assert count(mime="text/html") == 3 and count(mime="image/png") == 0
    hidden = {"news": datetime.now(UTC) - timedelta(days=30)}
    assert search(engine, "the", hidden=hidden)[0] == 1  # news under embargo
    _, page = search(engine, "the", limit=2, offset=2)
    assert len(page) == 1
    engine.dispose()


def test_the_cli_and_the_api(run: Any, archive: dict[str, str], api_tokens: Path) -> None:
    text = run("search", "budget")
    as_json = json.loads(run("search", "herald", "--publisher", "TOWN HERALD", "--json").out)
    empty = run("search", "  ")

    assert text.status == 0 and text.text.startswith("search: 1 captures match, the best 1:")
    assert "City budget approved" in text.text and archive["/budget"] in text.text
    assert as_json["total"] == 2
    assert {result["url"] for result in as_json["results"]} == {archive["/budget"],
                                                               archive["/ice"]}
    assert empty.status == 2 and "give some words" in empty.err
    for client in api_client():
        answer = client.get("/api/search", params={"q": "glaciers", "collection": "news"},
                            headers=bearer("researcher"))
        refused = client.get("/api/search", params={"q": "glaciers", "limit": "0"},
                             headers=bearer("researcher"))
    body = answer.json()
    assert body["total"] == 1 and body["results"][0]["url"] == archive["/glaciers"]
    assert "«" in body["results"][0]["snippet"] and body["results"][0]["score"] > 0
    assert refused.status_code == 400
