"""`make run`'s walk-through, the bundled page, and the generated CLI reference."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from preserve.clidoc import render

ROOT = Path(__file__).parent.parent


def test_walkthrough_archives_retrieves_and_audits(run: Any, home: Path) -> None:
    result = run("demo")
    assert result.status == 0, result.err
    out = result.text
    for expected in ("1. capture", "fetched 1 page and 10 resources (and robots.txt)",
                     "verified in: local",
                     "2. describe", "publisher  The Financial District",
                     "3. retrieve", "identical to what the server sent",
                     "4. fixity", "all hold"):
        assert expected in out, expected
    assert list((home / "objects" / "warcs" / "demo").rglob("*.warc.gz"))
    again = run("demo")
    assert again.status == 0 and "2 WARC files, 2 copies" in again.text


def test_bundled_page_is_the_test_fixture() -> None:
    bundled = (ROOT / "preserve" / "demo_site" / "post.html").read_bytes()
    assert bundled == (ROOT / "tests" / "data" / "financial-district-bachelet.html").read_bytes()


def test_cli_reference_is_current() -> None:
    assert (ROOT / "docs" / "cli.md").read_text() == render(), "run `make docs`"


def test_walkthrough_as_json(run: Any) -> None:
    import json
    result = run("demo", "--json")
    assert result.status == 0, result.err
    summary = json.loads(result.out)
    assert summary["passed"] is True and summary["payload_identical"] is True
    # warcinfo, request and response for robots.txt, the page and 10 resources, metadata
    assert summary["record_digests"] == {"records": 26, "problems": []}
    assert summary["description"]["publisher"] == "The Financial District"
    assert summary["fixity"]["findings"] == []


def test_bytes_are_not_written_to_a_terminal(run: Any, home: Path) -> None:
    import json
    import os
    import pty
    import subprocess
    import sys
    url = json.loads(run("demo", "--json").out)["url"]
    leader, follower = pty.openpty()
    try:
        preserve = Path(sys.executable).parent / "preserve"
        done = subprocess.run([str(preserve), "get", url, "--payload"], stdout=follower,
                              stderr=subprocess.PIPE, text=True, env=os.environ.copy())
    finally:
        os.close(leader)
        os.close(follower)
    assert done.returncode == 2
    assert "-o FILE" in done.stderr
