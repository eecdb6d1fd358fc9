"""Bad input: one clear line on standard error, exit 2, and nothing written anywhere."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, func, select

from preserve.catalog.schema import captures, ledger, warc_files
from preserve.demo import REFERENCE_PATH, LoopbackSite
from preserve.storage.filesystem import MARKER


def assert_nothing_written(home: Path) -> None:
    objects = home / "objects"
    stored = ([p for p in objects.rglob("*") if p.is_file() and p.name != MARKER]
              if objects.exists() else [])
    assert stored == [], f"objects were stored: {stored}"
    work = home / "work"
    assert not work.exists() or list(work.iterdir()) == [], "an unfinished WARC was left"
    database = home / "catalog.db"
    if database.exists():
        engine = create_engine(f"sqlite:///{database}")
        with engine.connect() as connection:
            for table in (warc_files, captures, ledger):
                count = connection.execute(select(func.count()).select_from(table)).scalar()
                assert count == 0, f"{table.name} has {count} rows"
        engine.dispose()


def assert_one_line_error(result: Any, *fragments: str) -> None:
    assert result.status == 2, (result.status, result.err)
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err
    assert lines[0].startswith("preserve: error: ")
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert "Traceback" not in result.err


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_unreachable_host(run: Any, home: Path) -> None:
    url = f"http://127.0.0.1:{closed_port()}/page"
    assert_one_line_error(run("capture", url, "--collection", "c"), url, "refused")
    assert_nothing_written(home)


def test_unknown_host_name(run: Any, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The answer a resolver gives for a name that does not exist, without asking one.
    def no_such_name(host: str, *args: Any, **kwargs: Any) -> Any:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_such_name)
    url = "http://no-such-host.invalid/"
    assert_one_line_error(run("capture", url, "--collection", "c"), url, "cannot resolve")
    assert_nothing_written(home)


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/file", "file:///etc/passwd",
                                 "javascript:alert(1)", "http:///no-host", "http://[::1/"])
def test_non_http_or_malformed_url(run: Any, home: Path, url: str) -> None:
    assert_one_line_error(run("capture", url, "--collection", "c"), url)
    assert_nothing_written(home)


def test_page_over_the_size_limit(run: Any, site: LoopbackSite, home: Path) -> None:
    url = site.url(REFERENCE_PATH)
    result = run("capture", url, "--collection", "c", "--max-resource-bytes", "1000")
    assert_one_line_error(result, url, "larger than the limit of 1000 bytes")
    assert_nothing_written(home)


@pytest.mark.parametrize("url", ["http://127.0.0.1:{port}/", "http://localhost:{port}/",
                                 "http://10.0.0.1:{port}/", "http://169.254.169.254/",
                                 "http://[::1]:{port}/", "http://0.0.0.0:{port}/"])
def test_private_addresses_are_refused_by_default(run: Any, site: LoopbackSite, home: Path,
                                                  monkeypatch: pytest.MonkeyPatch,
                                                  url: str) -> None:
    monkeypatch.delenv("PRESERVE_ALLOW_PRIVATE_ADDRESSES")
    target = url.format(port=site.base_url.rsplit(":", 1)[1])
    result = run("capture", target, "--collection", "c")
    assert_one_line_error(result, "non-public address", "PRESERVE_ALLOW_PRIVATE_ADDRESSES")
    assert_nothing_written(home)
    assert site.requests == []


def test_the_setting_lifts_the_guard(run: Any, site: LoopbackSite,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRESERVE_ALLOW_PRIVATE_ADDRESSES", "0")
    assert run("capture", site.url("/gone"), "--collection", "c").status == 2
    monkeypatch.setenv("PRESERVE_ALLOW_PRIVATE_ADDRESSES", "1")
    assert run("capture", site.url("/gone"), "--collection", "c").status == 0


@pytest.mark.parametrize("name", ["../etc", "a b", "-dash", "news\n", "x" * 101])
def test_bad_collection_name(run: Any, site: LoopbackSite, home: Path, name: str) -> None:
    result = run("capture", site.url(REFERENCE_PATH), f"--collection={name}")
    assert_one_line_error(result)
    assert_nothing_written(home)
    assert site.requests == []


def test_missing_collection(run: Any, site: LoopbackSite, home: Path) -> None:
    assert_one_line_error(run("capture", site.url(REFERENCE_PATH)), "--collection")
    assert_nothing_written(home)


def test_a_failing_second_start_page_is_named_and_the_first_is_kept(
        run: Any, site: LoopbackSite, home: Path) -> None:
    # One of several start pages that cannot be fetched does not cost the others
    # (tests/test_crawl.py has more); the command failed in part: exit 1.
    bad = f"http://127.0.0.1:{closed_port()}/"
    result = run("capture", site.url(REFERENCE_PATH), bad, "--collection", "c")
    assert result.status == 1 and result.err == ""
    assert f"  problem: start page not fetched: {bad}: connection refused\n" in result.text
    assert result.text.startswith("captured 1 page and 10 resources")
    assert run("ledger", "verify").status == 0


def test_a_command_that_reads_refuses_a_catalog_that_is_not_there(run: Any,
                                                                   home: Path) -> None:
    # A mistyped PRESERVE_HOME (or database path) must not give a new, empty catalog
    # in which every audit passes.
    for command in (("get", "http://example.com/never"), ("fixity", "run"),
                    ("fixity", "report"), ("ledger", "verify"), ("reconcile",),
                    ("search", "words")):
        assert_one_line_error(run(*command), f"no catalog at {home / 'catalog.db'}: nothing "
                                             "has been captured or imported")
    assert not (home / "catalog.db").exists()


def test_get_of_an_unknown_url(run: Any, home: Path) -> None:
    from preserve.catalog import open_engine
    open_engine(f"sqlite:///{home / 'catalog.db'}").dispose()  # a catalog, without that URL
    assert_one_line_error(run("get", "http://example.com/never"), "no capture")
    listed = run("list", "http://example.com/never")
    assert listed.status == 0 and listed.out == b"" and "no capture" in listed.err
    assert run("list", "http://example.com/never", "--json").text.count('"captures": []') == 1


def test_url_without_a_scheme(run: Any, home: Path) -> None:
    assert_one_line_error(run("capture", "example.com/page", "--collection", "c"),
                          "no scheme (did you mean http://example.com/page?)")


def test_get_with_a_bad_datetime(run: Any) -> None:
    result = run("get", "http://example.com/", "--at", "yesterday-ish")
    assert result.status == 2
    assert "'yesterday-ish' is not a date/time" in result.err


def test_describe_of_a_missing_file(run: Any, tmp_path: Path) -> None:
    assert_one_line_error(run("describe", tmp_path / "nope.html"), "nope.html")


# "²" is a digit to str.isdigit, and int("²") raises: a number read from what others
# wrote (a server's header, a request's parameter) is only ASCII digits.
SUPERSCRIPT_TWO = "\u00b2"


def test_a_number_that_is_no_ascii_number_is_bad_input_not_a_crash() -> None:
    import argparse

    from preserve.api.cdx import _bound
    from preserve.capture.crawl import _retry_after_seconds
    from preserve.cli import _whole
    from preserve.errors import BadInput
    from preserve.numbers import is_digits
    from preserve.web.pages import _status

    assert is_digits("2014") and not is_digits("") and not is_digits(SUPERSCRIPT_TWO)
    assert not is_digits("\u0662\u0660\u0660")  # Arabic-Indic 200: int reads it, HTTP does not
    assert _retry_after_seconds(SUPERSCRIPT_TWO) == 0.0  # a 503's Retry-After: no wait
    with pytest.raises(BadInput, match="timestamp"):
        _bound(SUPERSCRIPT_TWO, upper=False)  # /cdx?from=²: 400, not 500
    with pytest.raises(BadInput, match="status"):
        _status(SUPERSCRIPT_TWO)  # /?status=²: 400, not 500
    with pytest.raises(argparse.ArgumentTypeError, match="whole number"):
        _whole(SUPERSCRIPT_TWO)
