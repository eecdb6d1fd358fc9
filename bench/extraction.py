"""Main-text extraction quality: ours against trafilatura, readability-lxml and html-text.

On the scrapinghub article-extraction benchmark in ``../shared/corpus/extraction``
(109 English news and blog pages with their expected article body; read in
place, never copied here: the publishers keep their copyright), each extractor's
text is scored as that benchmark's ``evaluate.py`` scores it: ``\\w+`` tokens, case
kept, 4-token shingles counted on both sides; per page the true positives, false
positives and false negatives, normalised to sum to 1; precision averaged over
the pages where something was extracted, recall over the pages with expected
text; F1 from those two means.

Then trafilatura's own evaluation set (594 pages in many languages) is scored as
upstream scores it: snippets that must appear in the text and snippets
(boilerplate) that must not, counted over all pages. Ours is
``preserve.describe.describe`` in this environment. The peers run as
that benchmark's runners call them (trafilatura's ``extract`` defaults,
readability-lxml's summary turned into text by html-text, and html-text on the
whole page) in their own environment, ``--peers`` (``make bench`` builds
``.venv-extract``; readability-lxml's pins clash with the test tools'). Pages/s
are printed too (one process, one core):

    .venv/bin/python bench/extraction.py [--peers .venv-extract/bin/python]
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from preserve.describe import decode_html, describe

CORPUS = (Path(__file__).resolve().parent.parent.parent / "shared" / "corpus" / "extraction"
          / "scrapinghub-aeb")
WORDS = re.compile(r"\w+")

# Run by the peers' interpreter: page id -> text for each extractor, and its seconds.
PEERS = r"""
import gzip, json, sys, time
import html_text, trafilatura
from readability import Document
pages, urls = json.load(sys.stdin)  # page id -> HTML, page id -> URL
def trafilatura_meta(html, url):
    found = trafilatura.bare_extraction(html, url=url, with_metadata=True)
    found = found if found is None or isinstance(found, dict) else found.as_dict()
    return {"title": (found or {}).get("title"), "author": (found or {}).get("author"),
            "published": (found or {}).get("date"), "publisher": (found or {}).get("sitename")}
runs = {
    "trafilatura": lambda html: trafilatura.extract(html, include_comments=False) or "",
    "readability-lxml": lambda html: html_text.extract_text(
        Document(html).summary(html_partial=True)),
    "html-text": lambda html: html_text.extract_text(html),
}
metas = {
    "trafilatura": trafilatura_meta,
    "readability-lxml": lambda html, url: {"title": Document(html).short_title()},
}
out = {}
for name, run in runs.items():
    started = time.perf_counter()
    texts, meta = {}, {}
    for key, html in pages.items():
        try:
            texts[key] = run(html)
        except Exception:  # a page one extractor cannot take counts as nothing extracted
            texts[key] = ""
    seconds = time.perf_counter() - started
    if name in metas:
        for key, html in pages.items():
            try:
                meta[key] = metas[name](html, urls.get(key))
            except Exception:
                meta[key] = {}
    out[name] = {"seconds": seconds, "texts": texts, "meta": meta}
print(json.dumps(out))
"""
SNIPPETS = CORPUS.parent / "trafilatura-eval"


def shingles(text: str, size: int = 4) -> Counter[tuple[str, ...]]:
    tokens = WORDS.findall(text or "")
    return Counter(tuple(tokens[at:at + size])
                   for at in range(max(1, len(tokens) - size + 1)) if tokens[at:at + size])


def page_counts(truth: str, found: str) -> tuple[float, float, float]:
    """True positives, false positives, false negatives of shingles, summing to 1."""
    expected, got = shingles(truth), shingles(found)
    tp = float(sum((expected & got).values()))
    fp = float(sum((got - expected).values()))
    fn = float(sum((expected - got).values()))
    total = tp + fp + fn
    return (tp / total, fp / total, fn / total) if total else (0.0, 0.0, 0.0)


def scores(counts: list[tuple[float, float, float]]) -> tuple[float, float, float]:
    """Precision, recall and F1 as the benchmark takes them."""
    def ratio(hit: float, miss: float, other: float) -> float:
        if miss == other == 0:
            return 1.0
        return 0.0 if hit == miss == 0 else hit / (hit + miss)

    precisions = [ratio(tp, fp, fn) for tp, fp, fn in counts if tp + fp > 0]
    recalls = [ratio(tp, fn, fp) for tp, fp, fn in counts if tp + fn > 0]
    precision = sum(precisions) / len(precisions) if precisions else 0.0
    recall = sum(recalls) / len(recalls) if recalls else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=CORPUS,
                        help="the benchmark's folder (html/, ground-truth.json)")
    parser.add_argument("--snippets", type=Path, default=SNIPPETS,
                        help="trafilatura's evaluation set (skipped when missing)")
    parser.add_argument("--peers", type=Path,
                        default=Path(__file__).resolve().parent.parent / ".venv-extract" / "bin"
                        / "python",
                        help="a Python with trafilatura, readability-lxml and html-text "
                             "(skipped when missing)")
    args = parser.parse_args()
    truth = {key: entry.get("articleBody", "") for key, entry in
             json.loads((args.corpus / "ground-truth.json").read_text()).items()}
    pages = {path.name.split(".")[0]: gzip.decompress(path.read_bytes())
             for path in sorted((args.corpus / "html").glob("*.html.gz"))}
    missing = set(truth) - set(pages)
    if missing:
        raise SystemExit(f"{len(missing)} pages of the ground truth have no HTML")

    html = {key: decode_html(data) for key, data in pages.items()}
    results = run_all(html, args.peers)
    print(f"extraction, scrapinghub article-extraction-benchmark: {len(truth)} pages, "
          "4-token shingles as its evaluate.py")
    print(f"  {'extractor':<18} {'precision':>9} {'recall':>8} {'F1':>7} {'pages/s':>9}")
    f1s = {}
    for name, (seconds, texts, _meta) in results.items():
        precision, recall, f1 = scores([page_counts(truth[key], texts.get(key, ""))
                                        for key in truth])
        f1s[name] = f1
        print(f"  {name:<18} {precision:9.3f} {recall:8.3f} {f1:7.3f} "
              f"{len(truth) / seconds:9.1f}")
    peers = {name: f1 for name, f1 in f1s.items() if name != "preserve"}
    if peers:
        best = max(peers, key=peers.__getitem__)
        verdict = "above" if f1s["preserve"] > peers[best] else "NOT above"
        print(f"  preserve F1 {f1s['preserve']:.3f}: {verdict} every peer "
              f"(best: {best} {peers[best]:.3f}; target: above every one)")
    if args.snippets.is_dir():
        snippet_scores(args.snippets, args.peers)
    sys.stdout.flush()


Result = tuple[float, dict[str, str], dict[str, dict[str, Any]]]  # seconds, texts, metadata


def run_all(html: dict[str, str], peers: Path, urls: dict[str, str] | None = None,
            ) -> dict[str, Result]:
    """Each extractor's seconds, texts and (where it gives any) metadata: ours here, the
    peers in their environment."""
    urls = urls or {}
    started = time.perf_counter()
    ours = {key: describe(page, urls.get(key)) for key, page in html.items()}
    seconds = time.perf_counter() - started
    results: dict[str, Result] = {"preserve": (
        seconds, {key: found.text or "" for key, found in ours.items()},
        {key: found.as_dict() for key, found in ours.items()})}
    if peers.exists():
        answer = subprocess.run([str(peers), "-c", PEERS], input=json.dumps([html, urls]),
                                capture_output=True, text=True, check=True)
        for name, run in json.loads(answer.stdout).items():
            results[name] = (run["seconds"], run["texts"], run["meta"])
    else:
        print(f"peers skipped: {peers} not found (make bench builds .venv-extract)")
    return results


def snippet_scores(folder: Path, peers: Path) -> None:
    """trafilatura's evaluation set: snippets that must be in the text and snippets that
    must not (boilerplate, navigation), counted over every page as upstream counts them."""
    entries = json.loads((folder / "ground-truth.json").read_text())
    html = {key: decode_html(gzip.decompress((folder / entry["file"]).read_bytes()))
            for key, entry in entries.items()}
    urls = {key: entry["url"].strip() for key, entry in entries.items()
            if entry.get("url", "").startswith("http")}
    results = run_all(html, peers, urls)
    print(f"extraction, trafilatura's evaluation set: {len(entries)} pages, snippets that "
          "must and must not be in the text (its tuning set: trafilatura's figures are "
          "optimistic)")
    print(f"  {'extractor':<18} {'precision':>9} {'recall':>8} {'F1':>7} {'accuracy':>9}")
    for name, (_seconds, texts, _meta) in results.items():
        tp = fp = fn = tn = 0
        for key, entry in entries.items():
            text = " ".join((texts.get(key) or "").split())
            for snippet in entry.get("with") or []:
                found = " ".join(snippet.split()) in text
                tp, fn = tp + found, fn + (not found)
            for snippet in entry.get("without") or []:
                found = " ".join(snippet.split()) in text
                fp, tn = fp + found, tn + (not found)
        precision, recall = tp / max(tp + fp, 1), tp / max(tp + fn, 1)
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        print(f"  {name:<18} {precision:9.3f} {recall:8.3f} {f1:7.3f} "
              f"{(tp + tn) / max(tp + tn + fp + fn, 1):9.3f}")
    metadata_scores(entries, results)


# Metadata fields: the ground truth's name, ours, and when a value counts as right.
FIELDS = (("title", "title", 0.8), ("date", "published", 0.9), ("author", "author", 0.65),
          ("sitename", "publisher", None))


def metadata_scores(entries: dict[str, Any], results: dict[str, Result]) -> None:
    """On pages whose ground truth has the field: title exactly (whitespace aside), the
    publication day, the same set of authors (any case), the publisher (any case)."""
    print("metadata, trafilatura's evaluation set (pages whose ground truth has the field): "
          "share right")
    print(f"  {'extractor':<18}" + "".join(f" {truth:>12}" for truth, _ours, _t in FIELDS))
    counts = {truth: sum(1 for entry in entries.values() if entry.get(truth))
              for truth, _ours, _target in FIELDS}
    for name, (_seconds, _texts, meta) in results.items():
        if not meta:
            continue
        cells = []
        for truth, field, _target in FIELDS:
            right = sum(1 for key, entry in entries.items() if entry.get(truth)
                        and _same(truth, entry[truth], meta.get(key, {}).get(field)))
            cells.append(f" {right / max(counts[truth], 1):12.3f}" if any(
                meta.get(key, {}).get(field) is not None for key in meta) else f" {'-':>12}")
        print(f"  {name:<18}" + "".join(cells))
    print(f"  {'pages':<18}" + "".join(f" {counts[truth]:12d}" for truth, _o, _t in FIELDS))
    print(f"  {'target':<18}" + "".join(f" {target:12.2f}" if target else f" {'-':>12}"
                                        for _truth, _o, target in FIELDS))


def _same(field: str, expected: Any, found: Any) -> bool:
    if not found:
        return False
    if isinstance(expected, list):  # several authors, listed
        expected = "; ".join(str(item) for item in expected)
    expected = str(expected)
    if field == "date":
        return bool(str(found)[:10] == expected[:10])
    if field == "author":
        def names(text: str) -> set[str]:
            return {" ".join(part.split()).lower() for part in re.split(r"[;,]", text)
                    if part.strip()}
        return names(expected) == names(str(found))
    if field == "sitename":
        return " ".join(str(found).split()).lower() == " ".join(expected.split()).lower()
    return " ".join(str(found).split()) == " ".join(expected.split())


if __name__ == "__main__":
    main()
