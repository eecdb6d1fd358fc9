"""Description: main text without page chrome, and the page's metadata."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from preserve.describe import decode_html, describe

DATA = Path(__file__).parent / "data"
EXPECTED = json.loads((DATA / "financial-district-bachelet.expected.json").read_text())
PAGE_URL = ("https://www.thefinancialdistrict.example/post/"
            "bachelet-ends-term-as-un-rights-chief-by-blasting-china-s-uyghur-genocide")


@pytest.fixture(scope="module")
def reference() -> Any:
    html = decode_html((DATA / "financial-district-bachelet.html").read_bytes())
    return describe(html, PAGE_URL)


def test_reference_metadata(reference: Any) -> None:
    assert reference.title == EXPECTED["title"]
    assert reference.publisher == EXPECTED["publisher"]
    assert reference.published == EXPECTED["published"]
    assert reference.language == EXPECTED["language"]


@pytest.mark.parametrize("paragraph", EXPECTED["text_must_include"])
def test_every_paragraph_is_kept(reference: Any, paragraph: str) -> None:
    assert paragraph in reference.text


@pytest.mark.parametrize("chrome", EXPECTED["text_must_exclude"] + EXPECTED["text_should_exclude"])
def test_page_chrome_is_dropped(reference: Any, chrome: str) -> None:
    assert chrome.lower() not in reference.text.lower()


def page(head: str, body: str = "<article><p>" + "Some words of the story. " * 20
         + "</p></article>", lang: str = "") -> str:
    return f"<html{lang}><head>{head}</head><body>{body}</body></html>"


JSON_LD = ('<script type="application/ld+json">{"@context": "https://schema.org", "@graph": '
           '[{"@type": "NewsArticle", "publisher": {"@type": "Organization", '
           '"name": "From JSON-LD"}}]}</script>')
OG = '<meta property="og:site_name" content="From Open Graph">'
DC = '<meta name="DC.publisher" content="From Dublin Core">'


@pytest.mark.parametrize(("head", "publisher"), [
    (JSON_LD + OG + DC, "From JSON-LD"),
    (OG + DC, "From Open Graph"),
    (DC, "From Dublin Core"),
    ('<meta name="application-name" content="From App Name">', "From App Name"),
    ("", "news.example.org"),
    ('<script type="application/ld+json">{not json</script>' + OG, "From Open Graph"),
    ('<script type="application/ld+json">{"publisher": "Plain Name"}</script>', "Plain Name"),
])
def test_publisher_resolution_order(head: str, publisher: str) -> None:
    assert describe(page(head), "https://www.news.example.org/a").publisher == publisher


@pytest.mark.parametrize(("html", "language"), [
    (page("", lang=' lang="de-AT"'), "de-AT"),
    (page('<meta http-equiv="Content-Language" content="fr, en">'), "fr"),
    (page('<meta property="og:locale" content="pt_BR">'), "pt-BR"),
    (page(""), None),
])
def test_declared_language(html: str, language: str | None) -> None:
    assert describe(html).language == language


def test_decode_html_uses_the_declared_charset() -> None:
    text = "Café crème"
    latin = f'<meta charset="iso-8859-1"><p>{text}</p>'.encode("iso-8859-1")
    assert text in decode_html(latin)
    assert text in decode_html(f"<p>{text}</p>".encode("cp1252"), "text/html; charset=cp1252")
    assert text in decode_html(f"<p>{text}</p>".encode()), "UTF-8 is the default"


def test_describe_command_prints_json(run: Any) -> None:
    result = run("describe", DATA / "financial-district-bachelet.html", "--url", PAGE_URL)
    assert result.status == 0, result.err
    document = json.loads(result.out)
    assert set(document) == {"text", "title", "publisher", "author", "published", "language",
                             "text_sha256"}
    assert document["title"] == EXPECTED["title"]
    assert EXPECTED["text_must_include"][-1] in document["text"]


def test_describe_reads_standard_input(run: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import io
    import sys
    html = (DATA / "financial-district-bachelet.html").read_bytes()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(html)))
    document = json.loads(run("describe", "-").out)
    assert document["publisher"] == EXPECTED["publisher"]


def test_describe_many_files_in_one_process(run: Any, tmp_path: Path) -> None:
    """A benchmark of hundreds of pages pays one process start: one JSON line per file,
    with its file; a file that cannot be read is a line with its error, and exit 1."""
    reference = DATA / "financial-district-bachelet.html"
    other = tmp_path / "other.html"
    other.write_text("<html><head><title>Short</title></head><body><article><p>"
                     + "A paragraph of plain words. " * 30 + "</p></article></body></html>")
    absent = tmp_path / "absent.html"

    result = run("describe", reference, other, absent)
    with_url = run("describe", reference, other, "--url", PAGE_URL)

    lines = [json.loads(line) for line in result.text.splitlines()]
    assert result.status == 1
    assert [line["file"] for line in lines] == [str(reference), str(other), str(absent)]
    assert lines[0]["title"] == EXPECTED["title"] and "text_sha256" in lines[0]
    assert lines[1]["title"] == "Short" and "plain words" in lines[1]["text"]
    assert lines[2] == {"file": str(absent), "error": "cannot read: No such file or directory"}
    assert with_url.status == 2 and "--url names one page's URL" in with_url.err


def og_title(title: str) -> str:
    return f'<meta property="og:title" content="{title}">'


# trafilatura takes og:title as it is; these are titles it leaves with the site's name.
@pytest.mark.parametrize(("head", "body", "url", "title"), [
    # The site's name after the story: by og:site_name, or by the host.
    (og_title("Glaciers retreat again | Mountain Post")
     + '<meta property="og:site_name" content="Mountain Post">', "", None,
     "Glaciers retreat again"),
    (og_title("Irme Stetter-Karp ist neue ZdK-Präsidentin | DOMRADIO.DE"), "",
     "https://www.domradio.de/artikel/x", "Irme Stetter-Karp ist neue ZdK-Präsidentin"),
    (og_title("Rasende Polizisten - strafprozess.ch"), "",
     "https://www.strafprozess.ch/rasende-polizisten/", "Rasende Polizisten"),
    # The page's main heading, when the title holds it with more around it.
    (og_title("Heute: Margot Friedländer wird 100 Jahre"),
     "<h1>Margot Friedländer wird 100 Jahre</h1>", None, "Margot Friedländer wird 100 Jahre"),
    # Nothing that names the site: the title stands, hyphens and all.
    (og_title("Jean-Paul Sartre - a life in letters"), "", "https://books.example/x",
     "Jean-Paul Sartre - a life in letters"),
    (og_title("Ice - the final"), "", "https://t.co/x", "Ice - the final"),
])
def test_the_title_without_the_sites_name(head: str, body: str, url: str | None,
                                          title: str) -> None:
    html = (f'<html lang="en"><head>{head}</head><body>{body}<article>'
            + "<p>Some words of the article, at some length, as articles go.</p>" * 5
            + "</article></body></html>")
    assert describe(html, url).title == title


def test_a_publisher_with_accents_keeps_them() -> None:
    html = ('<html><head><meta property="og:site_name" content="Süddeutsche Zeitung">'
            "<title>Ein Artikel</title></head><body><article>"
            + "<p>Wörter eines Artikels, in einiger Länge.</p>" * 5 + "</article></body></html>")
    assert describe(html).publisher == "Süddeutsche Zeitung"
