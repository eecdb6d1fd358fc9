"""Page requisites of HTML and the references of CSS; hyperlinks are not requisites."""

from __future__ import annotations

import random
from urllib.parse import urldefrag, urljoin

import pytest

from preserve.capture.links import _absolute, css_links, html_links, html_requisites

PAGE = "http://news.test/section/article.html"
SHEET = "http://cdn.test/css/site/main.css"


def test_stylesheet_and_icon_links_are_requisites() -> None:
    html = """<html><head>
      <link rel="stylesheet" href="/css/a.css">
      <link rel="Alternate Stylesheet" href="b.css">
      <link rel="icon" href="/favicon.ico">
      <link rel="shortcut icon" href="/short.ico">
      <link rel="apple-touch-icon" href="touch.png">
      <link rel="canonical" href="/canonical.html">
      <link rel="alternate" type="application/rss+xml" href="/feed.xml">
      <link rel="stylesheet">
    </head></html>"""

    assert html_requisites(html, PAGE) == [
        "http://news.test/css/a.css",
        "http://news.test/section/b.css",
        "http://news.test/favicon.ico",
        "http://news.test/short.ico",
        "http://news.test/section/touch.png",
    ]


def test_scripts_and_images_are_requisites() -> None:
    html = """<body><script src="/js/app.js"></script><script>var x = "url(no.png)";</script>
      <img src="photo.jpg" alt="x"><img alt="no source"><img src="">"""

    assert html_requisites(html, PAGE) == [
        "http://news.test/js/app.js", "http://news.test/section/photo.jpg"]


def test_what_follows_the_closing_html_tag_is_read_as_a_browser_reads_it() -> None:
    html = ('<html><body><p>x</p></body></html>\n<img src="/after.jpg">'
            '<script src="/late.js"></script><a href="/next.html">next</a>')
    links = html_links(html, PAGE)
    assert links.requisites == ["http://news.test/after.jpg", "http://news.test/late.js"]
    assert links.outlinks == ["http://news.test/next.html"]


def test_noscript_fallbacks_and_template_contents_are_followed() -> None:
    """A lazy-loading page's real image is often only in <noscript>; a <template>'s
    content is outside the document tree, but scripts make elements of it."""
    html = """<html><head><noscript><img src="/pixel.gif"></noscript>
      <link rel="stylesheet" href="/after-noscript.css"></head>
      <body><template><img src="/row.png"><a href="/from-template.html">t</a></template>
      <img src="data:image/gif;base64,R0lGODlh" data-src="/lazy.jpg">
      <noscript><img src="/lazy.jpg"></noscript><a href="/next.html">next</a></body></html>"""
    links = html_links(html, PAGE)
    assert links.requisites == ["http://news.test/pixel.gif", "http://news.test/after-noscript.css",
                                "http://news.test/lazy.jpg", "http://news.test/row.png"]
    assert links.outlinks == ["http://news.test/next.html", "http://news.test/from-template.html"]


@pytest.mark.parametrize("html", [
    "", "   ", "<", "\x00\x00", "<html><body>\ud800</body>", "<img src='/a.png'" * 5000,
    "<link rel href=/a.png><input type src=/a.png><img srcset style>",  # attributes, no values
])
def test_odd_documents_give_what_links_they_can_without_failing(html: str) -> None:
    assert set(html_requisites(html, PAGE)) <= {"http://news.test/a.png"}


def test_srcset_of_img_and_picture_sources() -> None:
    html = """<picture>
        <source srcset="/m/wide.webp 1200w, /m/narrow.webp 600w" type="image/webp">
        <source srcset=" /m/wide.jpg 2x ,/m/narrow.jpg  1x ">
        <img src="/m/fallback.jpg" srcset="/m/small.jpg 320w,/m/large.jpg 1024w">
      </picture>"""

    assert html_requisites(html, PAGE) == [
        "http://news.test/m/wide.webp",
        "http://news.test/m/narrow.webp",
        "http://news.test/m/wide.jpg",
        "http://news.test/m/narrow.jpg",
        "http://news.test/m/fallback.jpg",
        "http://news.test/m/small.jpg",
        "http://news.test/m/large.jpg",
    ]


@pytest.mark.parametrize(("srcset", "expected"), [
    ("/img/w_300,c_fill/a.jpg 300w, /img/w_600,c_fill/a.jpg 600w",
     ["http://news.test/img/w_300,c_fill/a.jpg", "http://news.test/img/w_600,c_fill/a.jpg"]),
    # A lazy-loading placeholder: the data: URI is skipped whole, nothing else is invented.
    ("data:image/gif;base64,R0lGODlhAQABAAAAACw= 1x, /real.png 2x",
     ["http://news.test/real.png"]),
], ids=["cdn-transform", "data-placeholder"])
def test_srcset_url_with_a_comma_is_kept_whole(srcset: str, expected: list[str]) -> None:
    assert html_requisites(f'<img srcset="{srcset}">', PAGE) == expected


def test_video_poster_and_media_sources() -> None:
    html = """<video src="/v/clip.mp4" poster="/v/poster.jpg">
        <source src="/v/clip.webm" type="video/webm"><track src="/v/subs.vtt">
      </video><audio src="/a/sound.ogg"></audio>"""

    assert html_requisites(html, PAGE) == [
        "http://news.test/v/clip.mp4",
        "http://news.test/v/poster.jpg",
        "http://news.test/v/clip.webm",
        "http://news.test/v/subs.vtt",
        "http://news.test/a/sound.ogg",
    ]


def test_image_inputs_are_requisites_but_other_inputs_are_not() -> None:
    html = """<form><input type="image" src="/btn/go.png"><input type="IMAGE" src="/btn/up.png">
      <input type="text" src="/not/text.png"><input src="/not/untyped.png"></form>"""

    assert html_requisites(html, PAGE) == [
        "http://news.test/btn/go.png", "http://news.test/btn/up.png"]


def test_inline_style_elements_and_attributes() -> None:
    html = """<head><style>
        @import "/css/print.css";
        @import url(/css/fonts.css);
        /* background: url(/commented/out.png); */
        body { background: url('/img/bg.png') }
        h1 { background-image: url("../img/h1.png") }
      </style></head>
      <body><div style="background: url(tile.gif) repeat">x</div>
      <p>url(/paragraph/text.png) is only text</p></body>"""

    assert html_requisites(html, PAGE) == [
        "http://news.test/css/print.css",
        "http://news.test/css/fonts.css",
        "http://news.test/img/bg.png",
        "http://news.test/img/h1.png",
        "http://news.test/section/tile.gif",
    ]


def test_base_href_changes_resolution() -> None:
    html = """<head><base href="http://static.test/assets/"><base href="http://ignored.test/">
      <link rel="stylesheet" href="site.css"></head>
      <body><img src="logo.png"><img src="/root.png"><img src="//other.test/p.png">
      <div style="background: url(bg.png)"></div></body>"""

    assert html_requisites(html, PAGE) == [
        "http://static.test/assets/site.css",
        "http://static.test/assets/logo.png",
        "http://static.test/root.png",
        "http://other.test/p.png",
        "http://static.test/assets/bg.png",
    ]


def test_relative_base_href_resolves_against_the_page() -> None:
    assert html_requisites('<base href="/static/"><img src="a.png">', PAGE) == [
        "http://news.test/static/a.png"]


def test_data_and_javascript_urls_are_ignored() -> None:
    html = """<img src="data:image/png;base64,iVBORw0KGgo=">
      <script src="javascript:void(0)"></script>
      <link rel="icon" href="data:,">
      <img srcset="/real.png 2x">
      <div style="background: url(data:image/svg+xml;utf8,abc)"></div>
      <img src="mailto:someone@news.test"><img src="ftp://files.test/x.png">
      <img src="/kept.png">"""

    assert html_requisites(html, PAGE) == ["http://news.test/real.png", "http://news.test/kept.png"]


def test_fragments_are_stripped_and_duplicates_removed() -> None:
    html = """<img src="/sprite.svg#icon-a"><img src="/sprite.svg#icon-b">
      <img src="http://news.test/sprite.svg"><script src="/app.js"></script>
      <script src="../section/../app.js"></script><img src="#only-a-fragment">"""

    assert html_requisites(html, PAGE) == ["http://news.test/sprite.svg", "http://news.test/app.js"]


def test_hyperlinks_are_not_requisites() -> None:
    html = """<body><a href="/other-article.html">next</a><a href="style.css">a css file</a>
      <area href="/map-target.html"><form action="/search"></form>
      <iframe src="/embedded.html"></iframe></body>"""

    assert html_requisites(html, PAGE) == ["http://news.test/embedded.html"]


def test_a_page_without_resources_has_none() -> None:
    assert html_requisites("<p>Just text, <a href='/x'>and a link</a>.</p>", PAGE) == []


def test_css_comments_are_ignored() -> None:
    css = """/* @import "gone.css"; */
      a { background: url(kept.png) } /* b { background: url(gone.png) }
      still a comment: url("gone2.png") */ c { color: red }"""

    assert css_links(css, SHEET) == ["http://cdn.test/css/site/kept.png"]


def test_css_url_with_any_quoting() -> None:
    css = """a { background: url("double.png") }
      b { background: url('single.png') }
      c { background: url(bare.png) }
      d { background: URL(  spaced.png  ) }
      e { src: url("with space.woff") format("woff") }"""

    assert css_links(css, SHEET) == [
        "http://cdn.test/css/site/double.png",
        "http://cdn.test/css/site/single.png",
        "http://cdn.test/css/site/bare.png",
        "http://cdn.test/css/site/spaced.png",
        "http://cdn.test/css/site/with space.woff",
    ]


def test_css_imports_in_both_forms() -> None:
    css = """@import "quoted.css";
      @import 'single.css' screen;
      @import url(plain.css);
      @import url("url-quoted.css") print;
      body { margin: 0 }"""

    assert sorted(css_links(css, SHEET)) == [
        "http://cdn.test/css/site/plain.css",
        "http://cdn.test/css/site/quoted.css",
        "http://cdn.test/css/site/single.css",
        "http://cdn.test/css/site/url-quoted.css",
    ]


def test_css_urls_resolve_against_the_stylesheet_not_the_page() -> None:
    css = """@import "../base.css";
      a { background: url(../../img/a.png) }
      b { background: url(/abs.png) }
      c { background: url(https://fonts.test/f.woff2#iefix) }
      d { background: url(img/b.png) } e { background: url(img/b.png) }
      f { background: url(data:image/png;base64,AAAA) }"""

    assert css_links(css, SHEET) == [
        "http://cdn.test/css/base.css",
        "http://cdn.test/img/a.png",
        "http://cdn.test/abs.png",
        "https://fonts.test/f.woff2",
        "http://cdn.test/css/site/img/b.png",
    ]


def test_css_without_references_gives_nothing() -> None:
    assert css_links("body { color: #333; font: 12px/1.5 sans-serif }", SHEET) == []


def test_plain_links_resolve_exactly_as_urljoin_does() -> None:
    """The shortcuts for links like ``/a/b`` and ``https://h/a`` give what urljoin gives."""
    rng = random.Random(20261128)
    alphabet = list("/abc.?=&%#\\ :;@!x\t\x00é[]")
    bases = ["http://h.test/a/b?q=1", "https://user@h.test:8080/", "http://h.test",
             "http://h.test/a/b/c.html#frag", "http://[::1]:80/x/", "http://h.test/a;p?x"]
    starts = ["/", "http://", "https://", "http://h.test", "https://x.test/", "http://a:1",
              "HTTP://q", "//h.test/"]
    for _ in range(50_000):
        raw = rng.choice(starts) + "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
        base = rng.choice(bases)
        try:
            joined = urldefrag(urljoin(base, raw.strip())).url
        except ValueError:  # an unclosed IPv6 bracket: skipped, not a crash
            joined = ""
        expected = [joined] if joined.startswith(("http://", "https://")) else []
        assert _absolute([raw], base) == expected, (raw, base)
