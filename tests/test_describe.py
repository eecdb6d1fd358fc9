"""Description: main text without page chrome, and the page's metadata."""

from __future__ import annotations

import json
import random
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from preserve.catalog import Snapshot
from preserve.describe import _name, decode_html, describe
from preserve.fingerprint import NEAR_BITS, simhash, simhash_distance
from preserve.retrieve import text_changes

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


_SEMANTIC = re.compile(r"<(/?)(?:nav|main|article|aside|header|footer|section|figure|figcaption"
                       r"|time)\b")
_NAMES = re.compile(r'\s(?:class|id|role|aria-label|itemprop)="[^"]*"')


@pytest.mark.parametrize("names", [True, False])
def test_page_chrome_is_dropped_from_div_soup(names: bool) -> None:
    # The reference page with every semantic element a <div>, and then without the
    # classes and ids that name its parts either: the promos still go, the story stays.
    html = _SEMANTIC.sub(r"<\1div", decode_html(
        (DATA / "financial-district-bachelet.html").read_bytes()))
    html = html if names else _NAMES.sub("", html)
    assert not re.search(r"<(?:nav|main|article|aside|header|footer|section)\b", html)
    assert ("promo-banner" in html) == names

    text = describe(html, PAGE_URL).text

    assert [chrome for chrome in EXPECTED["text_must_exclude"] + EXPECTED["text_should_exclude"]
            if chrome.lower() in text.lower()] == []
    assert [paragraph for paragraph in EXPECTED["text_must_include"]
            if paragraph not in text] == []


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
])
def test_declared_language(html: str, language: str | None) -> None:
    described = describe(html)
    assert (described.language, described.language_detected) == (language, False)


@pytest.mark.parametrize(("text", "language"), [
    ("Die Stadt hat am Montag beschlossen, die alte Brücke über den Fluss zu erneuern. "
     "Die Arbeiten sollen im Frühjahr beginnen und zwei Jahre dauern, sagte der "
     "Bürgermeister vor den Mitgliedern des Rates.", "de"),
    ("La ville a décidé lundi de rénover le vieux pont sur la rivière. Les travaux "
     "commenceront au printemps et dureront deux ans, a déclaré le maire devant le "
     "conseil municipal.", "fr"),
    ("The city decided on Monday to renew the old bridge over the river. The work will "
     "begin in spring and last two years, the mayor told the members of the council.",
     "en"),
])
def test_undeclared_language_is_detected_from_the_text(text: str, language: str) -> None:
    described = describe(f"<html><body><article><p>{text}</p></article></body></html>")
    assert (described.language, described.language_detected) == (language, True)


def test_too_little_text_to_tell_its_language_gives_none() -> None:
    described = describe("<html><body><article><p>Ja, gut.</p></article></body></html>")
    assert (described.language, described.language_detected) == (None, False)


def test_modified_date_and_canonical_url_come_from_the_page() -> None:
    head = ('<link rel="canonical" href="/story/bridge">'
            '<meta property="article:modified_time" content="2026-03-04T10:00:00Z">')
    described = describe(page(head), "https://news.example.org/story/bridge?utm=x")
    assert described.canonical_url == "https://news.example.org/story/bridge"
    assert described.modified == "2026-03-04T10:00:00Z"
    ld = ('<script type="application/ld+json">{"@type": "NewsArticle", '
          '"dateModified": "2026-05-06"}</script><meta property="og:url" '
          'content="https://news.example.org/og">')
    described = describe(page(ld), "https://news.example.org/x")
    assert (described.modified, described.canonical_url) == ("2026-05-06",
                                                             "https://news.example.org/og")


def test_decode_html_uses_the_declared_charset() -> None:
    text = "Café crème"
    latin = f'<meta charset="iso-8859-1"><p>{text}</p>'.encode("iso-8859-1")
    assert text in decode_html(latin)
    assert text in decode_html(f"<p>{text}</p>".encode("cp1252"), "text/html; charset=cp1252")
    assert text in decode_html(f"<p>{text}</p>".encode()), "UTF-8 is the default"


def test_latin_1_is_read_as_browsers_read_it_and_so_is_an_undeclared_western_page() -> None:
    # Pages labelled ISO-8859-1 hold windows-1252's quotes and dashes (0x93, 0x94, 0x96):
    # read as Latin-1 they were control characters, and the quotes vanished from titles.
    quoted = "\u201cQuoted\u201d \u2013 dash"
    page = f"<html><head><title>{quoted}</title></head></html>".encode("cp1252")
    assert quoted in decode_html(page, "text/html; charset=ISO-8859-1")
    # No charset anywhere, and not UTF-8: windows-1252, not replacement characters.
    western = "Na\u00efve r\u00e9sum\u00e9 \u2014 caf\u00e9"
    assert western in decode_html(f"<p>{western}</p>".encode("cp1252"))
    # A byte windows-1252 leaves undefined still decodes (as Latin-1 does).
    assert decode_html(b"<p>\x81</p>", "text/html; charset=latin1") == "<p>\x81</p>"
    # A page labelled ASCII that is UTF-8 is read as UTF-8.
    assert "caf\u00e9" in decode_html("<p>caf\u00e9</p>".encode(), "text/html; charset=us-ascii")


def test_describe_command_prints_json(run: Any) -> None:
    result = run("describe", DATA / "financial-district-bachelet.html", "--url", PAGE_URL)
    assert result.status == 0, result.err
    document = json.loads(result.out)
    assert set(document) == {"text", "title", "publisher", "author", "published", "modified",
                             "language", "language_detected", "canonical_url", "text_sha256",
                             "text_simhash"}
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
    # Of several headings the title holds, the longest; never the site's own.
    ("<title>Zoll online - Fachmeldungen - Verkündung des Gesetzes</title>",
     "<h1>Zoll online</h1><h1>Fachmeldungen</h1><h1>Verkündung des Gesetzes</h1>",
     "https://www.zoll.de/x", "Verkündung des Gesetzes"),
    ("<title>Ins neue Jahr | Literaturgefluester</title>", "<h1>Literaturgefluester</h1>",
     "https://literaturgefluester.wordpress.com/x", "Ins neue Jahr"),
    # A heading's kicker, topic label or date is not its title.
    (og_title("Klimaschutz: Bohren, bis es heiß wird"),
     '<h1><span class="article-heading__kicker">Klimaschutz</span><span '
     'class="visually-hidden">: </span><span>Bohren, bis es heiß wird</span></h1>', None,
     "Bohren, bis es heiß wird"),
    ("<title>Ministerin Raab: Neue Regeln gestalten - Bundeskanzleramt</title>",
     '<h1><span class="supertitle"><time>1. Februar 2022</time></span>'
     "<span>Ministerin Raab: Neue Regeln gestalten</span></h1>", None,
     "Ministerin Raab: Neue Regeln gestalten"),
    # A heading that says more than the title kept.
    ("<title>Saftiger Zitronenkuchen vom Blech | Backen macht glücklich</title>",
     "<h1>Saftiger Zitronenkuchen vom Blech: einfach köstlich!</h1>",
     "https://www.backenmachtgluecklich.de/x", "Saftiger Zitronenkuchen vom Blech: einfach "
     "köstlich!"),
    # A section's name in place of the title: the <title>'s.
    ("<title>Malaga, die quirlige Metropole in Andalusien</title>",
     '<div class="category"><h2>Allgemein</h2></div>', None,
     "Malaga, die quirlige Metropole in Andalusien"),
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


# An article of 700 words that do not repeat in threes, as real text does not.
_WORDS = random.Random(7).choices([f"word{n}" for n in range(800)], k=700)
STORY = " ".join(_WORDS)


def test_simhash_tells_near_identical_texts_from_changed_ones() -> None:
    dated = " ".join([*_WORDS[:350], "2027", *_WORDS[351:]])  # one word of 700
    rewritten = " ".join(_WORDS[:500] + random.Random(8).choices(_WORDS, k=200))

    assert simhash(STORY) == simhash(STORY.upper().replace(" ", ", "))  # case, punctuation
    assert 0 < simhash_distance(simhash(STORY), simhash(dated)) <= NEAR_BITS
    assert simhash_distance(simhash(STORY), simhash(rewritten)) > NEAR_BITS
    assert simhash("") == "0" * 16 and len(simhash(STORY)) == 16


def snapshot(number: int, text: str | None) -> Snapshot:
    return Snapshot(id=number, url="https://example.org/", capture_time=datetime(2026, 1, number,
                    tzinfo=UTC), collection="c", record_type="response", record_id=f"<{number}>",
                    status=200, mime="text/html", payload_digest=None, warc_key="k", offset=0,
                    length=1, title=None, publisher=None, author=None, published=None,
                    language=None, text=text, text_simhash=None if text is None else simhash(text))


def test_text_changes_compare_each_capture_with_the_previous_described_one() -> None:
    dated = " ".join([*_WORDS[:350], "2027", *_WORDS[351:]])
    texts = [STORY, None, STORY, dated, "Something else entirely."]
    assert text_changes([snapshot(n, t) for n, t in enumerate(texts, start=1)]) == [
        "first", None, "same", "near-identical", "changed"]


@pytest.mark.parametrize(("head", "author"), [
    # trafilatura drops a one-word name; the page's metadata gives it
    ('<meta name="author" content="gnaddrig">', "gnaddrig"),
    # trafilatura respells a name; it is spelled as the page spells it
    ('<script type="application/ld+json">{"@type": "NewsArticle", "author": '
     '{"@type": "Person", "name": "Isabella.DiBiase"}}</script>', "Isabella.DiBiase"),
    # a placeholder is not an author
    ('<meta name="author" content="No Author">', None),
    # a site beside a person is not an author; a site alone is
    ('<meta property="og:site_name" content="Daily Example"><script type="application/ld+json">'
     '{"@type": "NewsArticle", "author": [{"name": "Rob Picheta"}, {"name": "Daily Example"}]}'
     '</script>', "Rob Picheta"),
    ('<meta property="og:site_name" content="Daily Example"><meta name="author" '
     'content="Daily Example">', "Daily Example"),
])
def test_author_from_the_pages_metadata(head: str, author: str | None) -> None:
    assert describe(page(head), "https://www.dailyexample.org/a").author == author


@pytest.mark.parametrize(("head", "published"), [
    # stated in the page's own time zone: that day, not the day in UTC
    ('<script type="application/ld+json">{"@type": "NewsArticle", '
     '"datePublished": "2022-05-07T23:43:46-05:00"}</script>', "2022-05-07"),
    ('<meta property="article:published_time" content="2021-03-14T00:30:00+01:00">',
     "2021-03-14"),
])
def test_the_publication_day_where_it_was_published(head: str, published: str) -> None:
    assert describe(page(head)).published == published


def _json_ld(**fields: str) -> str:
    return ('<script type="application/ld+json">'
            + json.dumps({"@type": "NewsArticle", **fields}) + "</script>")


A_STORY = "<p>" + "Some words of the story. " * 20 + "</p>"


@pytest.mark.parametrize(("url", "head", "body", "published"), [
    # A UTC time is read in the zone of the offset the page gives its other times:
    # 23:37 on the 3rd in New York is the 4th in UTC.
    ("https://news.example/a", _json_ld(datePublished="2022-05-04T03:37:37+00:00"),
     f'<article><time datetime="2022-05-03T23:37:37-04:00">3 May</time>{A_STORY}</article>',
     "2022-05-03"),
    # ... else in its country's zone: 23:00 UTC on 6 November is the 7th in Berlin,
    ("https://beige.de/artikel/a",
     '<meta property="article:published_time" content="2022-11-06T23:00:00.000Z">', "",
     "2022-11-07"),
    # and an e-mail date too (La Paz is four hours behind UTC),
    ("https://eldeber.com.bo/a", _json_ld(datePublished="Wed, 04 May 2022 02:41:00 GMT"), "",
     "2022-05-03"),
    # ... else its day in UTC only when it is that day from UTC-8 to UTC+10,
    # (a page's <meta name="date"> is often when it last changed)
    ("https://news.example/a", _json_ld(datePublished="2020-01-19T12:25:36Z")
     + '<meta name="date" content="2020-01-20T09:49:32Z">', "", "2020-01-19"),
    # JSON-LD's dateCreated where no object has a datePublished,
    ("https://news.example/a", _json_ld(dateCreated="2020-04-27T17:58:19+02:00")
     + '<meta name="date" content="2020-07-08">', "", "2020-04-27"),
    # with no publication metadata, a date labelled as the publication's, also when the
    # page runs the label into the text before it,
    ("https://literature.example/a", "",
     f"<article>{A_STORY}</article><p>Letzte Änderung: 31.10.2023 - 14:49:39<br>"
     "Erschienen am: 01.11.2023</p>", "2023-11-01"),
    # not a script's, nor a change's
    ("https://news.example/a", '<meta name="date" content="2020-07-08">',
     "<script>// date: 2019-05-05</script><p>Last modified date: 2020-01-02</p>"
     f"<article><p>Published: 2020-01-01</p>{A_STORY}</article>", "2020-01-01"),
    # a day to come is a mistake: the other metadata's day stands
    ("https://news.example/a", _json_ld(datePublished="2020-01-01T10:00:00+01:00")
     + '<meta property="article:published_time" content="2099-01-01T10:00:00+01:00">'
     + '<meta name="date" content="2020-03-03">', "", "2020-01-01"),
    # not a release's, nor an event's
    ("https://news.example/a", "",
     "<p>Release date: May 3, 1999</p><p>Event date: 2022-01-01</p>"
     f"<article><p>Posted on June 1, 2021</p>{A_STORY}</article>", "2021-06-01"),
    # in other words and languages ("created": the page says when it was made)
    ("http://simmentalzeitung.ch/a", '<meta name="date" content="11/01/2023 12:43:42">',
     f"<article>{A_STORY}<p>Erstellt am: 01.11.2023</p></article>", "2023-11-01"),
    ("https://nieuws.example/a", '<meta name="date" content="2021-02-03">',
     f"<article><p>Gepubliceerd op 2 februari 2021</p>{A_STORY}</article>", "2021-02-02"),
    # an element whose class names the publication date, but not in an aside, a list
    # item, nor one long enough to be a paragraph, nor a date it says is an update's
    ("https://news.example/a", '<meta name="date" content="2020-05-05">',
     '<aside><span class="pubdate">1.1.2020</span></aside><ul><li><span class="pubdate">'
     '2.1.2020</span></li></ul><div class="pubdate">' + "Words. " * 20 + "3.1.2020</div>"
     f'<div class="publish-date">Updated 3.4.2021 · 1.2.2020</div>{A_STORY}',
     "2020-02-01"),
    # an element whose class names the publication date, its day and month spaced,
    ("https://www.dtb-tennis.de/a", '<meta name="date" content="2022-04-02">',
     '<div class="post status-publish"><div class="att-publish-date">Von <span>Deutscher '
     f'Tennis Bund</span> 4.&thinsp;2.&thinsp;2022.</div>{A_STORY}</div>', "2022-02-04"),
    # the day the address gives, where the metadata's is a month or more later (a move),
    ("https://www.befifty.de/home/2017/7/12/unter-uns",
     _json_ld(datePublished="2019-06-17T18:28:00+0200"), "", "2017-07-12"),
    # (six weeks is a move too)
    ("https://blog.example/2021/3/1/a", _json_ld(datePublished="2021-04-15T10:00:00+02:00"),
     "", "2021-03-01"),
    # not where it is only days later (written one day, published the next)
    ("https://elpais.example/2020/02/18/ciencia/a",
     _json_ld(datePublished="2020-02-19T10:00:00+01:00"), "", "2020-02-19"),
    # and a label after a word that only holds a word for a change ("Länder")
    ("https://news.example/a", '<meta name="date" content="2021-05-09">',
     f"<article><p>Länder · Datum: 05.05.2021</p>{A_STORY}</article>", "2021-05-05"),
    # a specific label stands whatever word comes before it (a breadcrumb's)
    ("https://news.example/a", '<meta name="date" content="2023-11-05">',
     "<p><a>Startseite</a> <a>Events</a></p><p>Erschienen am 4. 2. 2022</p>"
     f"<article>{A_STORY}</article>", "2022-02-04"),
    # an impossible day is none (htmldate would read 2021-02-01 of "31.2.2021")
    ("https://news.example/a", '<meta name="date" content="2021-03-09">',
     f"<article><p>Published: 31.2.2021</p>{A_STORY}</article>", "2021-03-09"),
    # a <time> without a zone is the page's local time, its day as written
    ("https://news.example/a", '<meta name="date" content="2020-04-30">',
     f'<article><time datetime="2021-06-01T23:30:00">Tuesday</time>{A_STORY}</article>',
     "2021-06-01"),
    ("https://news.example/a", '<meta name="date" content="2020-04-30">',
     f'<article><time datetime="2021-06-01 10:00:00+02:00">Tuesday</time>{A_STORY}'
     "</article>", "2021-06-01"),
    # then the first <time> of the page's article, not one of a list of other stories
    ("https://news.example/a", '<meta name="date" content="2020-04-30">',
     '<ul><li><article><time datetime="2017-09-06">6 Sept 2017</time></article></li></ul>'
     f'<article><ul><li class="Date"><time>29.04.2020, 12:01 Uhr</time></li></ul>{A_STORY}'
     "</article>", "2020-04-29"),
])
def test_the_publication_day_read_as_the_page_states_it(url: str, head: str, body: str,
                                                        published: str) -> None:
    assert describe(page(head, body or f"<article>{A_STORY}</article>"), url).published == published


@pytest.mark.parametrize(("url", "head", "body"), [
    # a UTC time near midnight with no zone to read it in: its day is not known
    ("https://news.example/a", _json_ld(datePublished="2020-02-25T02:25:54Z"), ""),
    # metadata that disagrees with itself (JSON-LD against Open Graph),
    ("https://utopia.de/news/a", _json_ld(datePublished="2023-11-03T10:25:56+00:00")
     + '<meta property="article:published_time" content="2023-11-06T14:25:00+00:00">', ""),
    # also where one says only the day
    ("https://news.example/a", _json_ld(datePublished="2020-01-01")
     + '<meta property="article:published_time" content="2020-01-05T10:00:00+02:00">', ""),
    # a placeholder, read in the country's zone or not
    ("https://zeitung.de/a", _json_ld(datePublished="1970-01-01T00:00:00Z"), ""),
    ("https://news.example/a", _json_ld(datePublished="1970-01-01T00:00:00+01:00"), ""),
    # a year no calendar holds, in an e-mail date or an offset
    ("https://news.example/a", '<meta property="article:published_time" '
     'content="Wed, 04 May 99999999999999999999 02:41:00 GMT">', ""),
    ("https://news.example/a", _json_ld(datePublished="2020-01-01T10:00:00+99999999999999"), ""),
    # <time>s that are no days: impossible, or written in other digits
    ("https://news.example/a", "",
     f'<article><time datetime="2020-13-45"></time>{A_STORY}</article>'),
    ("https://news.example/a", "",
     f'<article><time datetime="٢٠٢٠-٠١-٠١T10:00+02:00"></time>{A_STORY}</article>'),
    # a canonical URL that is none, on a page described without its URL
    (None, '<link rel="canonical" href="http://[oops/a">'
     + _json_ld(datePublished="2020-01-01T23:30:00Z"), ""),
])
def test_a_publication_day_the_metadata_cannot_tell_is_left_to_the_whole_page(
        url: str | None, head: str, body: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import trafilatura

    extract = trafilatura.bare_extraction

    def with_the_pages_date(*args: Any, **kwargs: Any) -> Any:
        found = extract(*args, **kwargs)
        found = found if found is None or isinstance(found, dict) else found.as_dict()
        return {**(found or {}), "date": "1999-12-31"}

    monkeypatch.setattr(trafilatura, "bare_extraction", with_the_pages_date)
    assert describe(page(head, body or f"<article>{A_STORY}</article>"), url).published == (
        "1999-12-31")


@pytest.mark.parametrize(("byline", "author"), [
    ('<div class="post-author">von KleineGrüneMonster am 3. Mai 2021</div>',
     "KleineGrüneMonster"),
    ('<div class="unAuteur"><p>Blog Beitrag von Didier Roy</p></div>', "Didier Roy"),
    ('<p class="byline">By Ann Lee on 3 May</p>', "Ann Lee"),
])
def test_the_author_from_the_byline_where_metadata_has_none(byline: str, author: str) -> None:
    html = page("", byline + '<article><p>' + "Some words of the story. " * 20
                + "</p></article>" + '<div class="comment-author">Leser sagt:</div>')
    assert describe(html, "https://blog.example/a").author == author


@pytest.mark.parametrize(("written", "name"), [
    ("Zeige alle Beiträge von Petra Ruland", "Petra Ruland"),
    ("Autor: gnaddrig", "gnaddrig"),
    ("Christoph von Ritter", "Christoph von Ritter"),  # a name's "von" stays
    ("Von Jörn Mecher am 08.12.2022", "Jörn Mecher"),
    ("Adam Aaronson PhillyVoice Staff", "Adam Aaronson"),
    ("Johanna Kropfitsch Alle Artikel", "Johanna Kropfitsch"),
    ("jesusfreak jesusfreak", "jesusfreak"),
    ("Dominique —", "Dominique"),
    ("Posted on", None),
    ("Name (erforderlich)", None),
])
def test_a_name_without_the_words_around_it(written: str, name: str | None) -> None:
    assert _name(written) == name


@pytest.mark.parametrize("stamps", [
    # an offset no zone has, then a time in UTC to read in it
    '<time datetime="2020-01-01T10:00+99:00"></time>',
    # a time at the calendar's edge, moved out of it by the page's zone
    '<time datetime="2020-01-01T10:00-04:00"></time>',
])
def test_times_out_of_range_are_no_publication_day_and_no_failure(stamps: str) -> None:
    head = _json_ld(datePublished="0001-01-01T01:00:00Z")
    assert describe(page(head, f"<article>{stamps}{A_STORY}</article>"),
                    "https://news.example/a").published != "0001-01-01"


def test_a_page_described_without_its_url_is_read_in_its_canonical_urls_country() -> None:
    head = ('<link rel="canonical" href="https://beige.de/artikel/a">'
            '<meta property="article:published_time" content="2022-11-06T23:00:00.000Z">')
    assert describe(page(head)).published == "2022-11-07"


def test_a_canonical_url_that_is_none_is_no_failure() -> None:
    found = describe(page('<link rel="canonical" href="http://[oops/a">'
                          + _json_ld(datePublished="2020-01-01T23:30:00Z")),
                     "https://news.example/a")
    assert found.canonical_url == "https://news.example/a"  # the page's own, not "[oops"
