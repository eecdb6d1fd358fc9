"""The ``preserve`` command: parse, call one function, print. No logic.

Exit status: 0 done, 1 a check found problems (or an operation failed),
2 bad usage or bad input. Errors are one line on standard error.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import math
import os
import secrets
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import asdict, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from preserve import __version__, demo, ledger, retrieve
from preserve.capture.crawl import Response
from preserve.capture.scope import SCOPES
from preserve.catalog import SearchFilters, Snapshot, open_engine
from preserve.config import ROLES, Settings, load_settings
from preserve.deletion import delete_file
from preserve.describe import decode_html, describe
from preserve.errors import BadInput, ConfigError, PreserveError
from preserve.export import export_bag, export_jsonl, export_wacz
from preserve.fingerprint import iter_chunks
from preserve.fixity import (
    DEFAULT_EVERY_DAYS,
    EVENT_COLUMNS,
    check_collection_known,
    fixity_report,
    run_fixity,
)
from preserve.jobs import (
    CaptureOverrides,
    CaptureReport,
    capture_settings,
    run_capture,
    run_redescribe,
)
from preserve.numbers import is_digits
from preserve.policy import check_policies, load_policy
from preserve.reconcile import reconcile
from preserve.schedule import (
    STATES,
    Job,
    PoliciesAsk,
    Tick,
    cancel_job,
    list_jobs,
    policies_ask,
    run_due,
)
from preserve.storage import expect_copies, open_stores
from preserve.workers import Dispatcher
from preserve.workers.celery import CeleryDispatch, run_worker, send_due
from preserve.workers.local import LocalWorkers, run_scheduler


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (also used to generate docs/cli.md)."""
    parser = argparse.ArgumentParser(
        prog="preserve",
        description="Archival ingest and preservation: capture, describe, store, retrieve, "
                    "audit.")
    parser.add_argument("--version", action="version", version=f"preserve {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    capture = commands.add_parser("capture", help="capture pages and their resources now")
    capture.add_argument("urls", nargs="*", metavar="URL",
                         help="pages to start from (default: the --policy's targets)")
    capture.add_argument("--collection", help="collection to file the capture in "
                         "(required unless --policy names one)")
    capture.add_argument("--policy", type=Path, help="policy file whose collection, copies "
                         "and capture limits apply")
    capture.add_argument("--max-resource-bytes", type=_positive(int), metavar="N",
                         help="refuse a body larger than N bytes (default 100 MiB)")
    capture.add_argument("--timeout", type=_positive(float), metavar="SECONDS",
                         help="network timeout per request (default 30)")
    capture.add_argument("--scope", choices=SCOPES,
                         help="how far links may lead: the page only (default), its folder "
                              "(prefix), its host, or its domain")
    capture.add_argument("--depth", type=_whole, metavar="N",
                         help="link hops from the start page (default 0)")
    capture.add_argument("--max-pages", type=_positive(int), metavar="N",
                         help="stop after N pages")
    capture.add_argument("--include", action="append", default=[], metavar="REGEX",
                         help="also crawl URLs matching REGEX (repeatable)")
    capture.add_argument("--exclude", action="append", default=[], metavar="REGEX",
                         help="never fetch URLs matching REGEX (repeatable)")
    capture.add_argument("--delay", type=_count, metavar="SECONDS",
                         help="pause between requests to one host (default 0, or the policy's)")
    capture.add_argument("--host-connections", type=_positive(int), metavar="N",
                         help="connections open to one host at a time (default 2, or the "
                              "policy's)")
    capture.add_argument("--ignore-robots", action="store_true",
                         help="do not ask robots.txt (it is obeyed by default)")
    capture.add_argument("--no-describe", action="store_true",
                         help="write no metadata records (describe later)")
    capture.add_argument("--warc-size", type=_positive(int), metavar="BYTES",
                         help="start a new WARC file past this size (default 1 GiB) "
                         "or 100,000 records")
    _json_flag(capture)

    get = commands.add_parser("get", help="the capture of a URL nearest in time")
    get.add_argument("url", metavar="URL")
    get.add_argument("--at", type=_datetime_arg, metavar="DATETIME",
                     help="ISO 8601 date/time, or a 4-14 digit timestamp such as 20261127 "
                          "(default: latest)")
    form = get.add_mutually_exclusive_group()
    form.add_argument("--json", action="store_true", help="metadata as JSON")
    form.add_argument("--text", action="store_true", help="the extracted main text")
    form.add_argument("--payload", action="store_true",
                      help="the original response body, byte for byte")
    form.add_argument("--record", action="store_true",
                      help="the WARC record as stored (a one-record .warc.gz)")
    get.add_argument("-o", "--output", type=Path, metavar="FILE",
                     help="write to FILE instead of standard output")

    listing = commands.add_parser(
        "list", help="every capture of a URL, oldest first, marking those whose text changed",
        description="Every capture of a URL, oldest first. The text column compares each "
                    "described capture's main text with the previous one's: 'same', "
                    "'~same' (near-identical: simhashes at most 6 of 64 bits apart) or "
                    "'CHANGED'.")
    listing.add_argument("url", metavar="URL")
    _json_flag(listing)

    describe_cmd = commands.add_parser("describe", help="extract text and metadata from HTML")
    describe_cmd.add_argument("files", nargs="*", default=["-"], metavar="FILE",
                              help="HTML files, or - for standard input (default); with "
                                   "several, one JSON object per line, each with its file")
    describe_cmd.add_argument("--url", help="the page's URL (helps resolve the publisher)")
    _json_flag(describe_cmd, "always JSON; accepted for symmetry")

    import_cmd = commands.add_parser(
        "import", help="take in WARC, ARC and WACZ files other tools made, byte for byte: each "
                       "stored as its own object and indexed; its HTML pages described in a "
                       "companion WARC")
    import_cmd.add_argument("paths", nargs="+", type=Path, metavar="PATH",
                            help=".warc, .warc.gz, .arc, .arc.gz or .wacz files")
    import_cmd.add_argument("--collection", required=True, help="the collection they join")
    import_cmd.add_argument("--lenient", action="store_true",
                            help="keep a damaged file byte for byte and catalogue its sound "
                                 "records (default: refuse it, exit 2, write nothing)")
    import_cmd.add_argument("--no-describe", action="store_true",
                            help="do not describe the HTML pages now (preserve redescribe "
                                 "does it later)")
    _json_flag(import_cmd)

    redescribe = commands.add_parser(
        "redescribe", help="describe pages anew with the current extractor (new metadata "
                           "records; the old ones are kept)",
        description="Describe the HTML pages that have no description (captured with "
                    "--no-describe, imported with --no-describe) or one made by an older "
                    "extractor version, into new metadata records. Stored records are never "
                    "rewritten; the catalog shows each page's newest description.")
    redescribe.add_argument("--collection", help="only this collection")
    redescribe.add_argument("--url", help="only captures of this URL")
    redescribe.add_argument("--all", action="store_true", dest="every",
                            help="every page, even those the current extractor described")
    _json_flag(redescribe)

    fixity = commands.add_parser("fixity", help="fixity audits")
    fixity_commands = fixity.add_subparsers(dest="fixity_command", required=True,
                                            metavar="COMMAND")
    fixity_run = fixity_commands.add_parser(
        "run", help="re-hash every stored copy against the ingest digest; exit 1 on any "
                    "problem left")
    fixity_run.add_argument("--collection", help="only this collection's files")
    fixity_run.add_argument("--location", help="only the copies in this location")
    fixity_run.add_argument("--deep", action="store_true",
                            help="also re-verify every WARC record's digests, naming the "
                                 "damaged records")
    fixity_run.add_argument("--sample", type=_fraction, default=1.0, metavar="F",
                            help="check this fraction of the files, those checked longest "
                                 "ago first, and every overdue one besides (default 1)")
    fixity_run.add_argument("--every-days", type=_positive(int), metavar="N",
                            help="with --sample: a file not found whole for N days is always "
                                 "checked (default: its policy's fixity_every_days, else "
                                 f"{DEFAULT_EVERY_DAYS})")
    fixity_run.add_argument("--repair", action="store_true",
                            help="write damaged, missing or never-made copies again from a "
                                 "copy that hashes to the ingest digest")
    _json_flag(fixity_run)
    fixity_report = fixity_commands.add_parser(
        "report", help="what the audits found: totals per collection, failures, objects "
                       "overdue for a check")
    fixity_report.add_argument("--since", type=_datetime_arg, metavar="DATETIME",
                               help="only checks from then on (default: all)")
    fixity_report.add_argument("--every-days", type=_positive(int), metavar="N",
                               help="a copy not checked and found whole for N days is overdue "
                                    "(default: its policy's fixity_every_days, else "
                                    f"{DEFAULT_EVERY_DAYS})")
    report_form = fixity_report.add_mutually_exclusive_group()
    report_form.add_argument("--json", action="store_true", help="machine-readable output")
    report_form.add_argument("--csv", action="store_true",
                             help="one line per event, for spreadsheets")
    report_form.add_argument("--html", action="store_true",
                             help="a standalone page: totals, failing and overdue copies")

    storage = commands.add_parser("storage", help="storage locations")
    storage_commands = storage.add_subparsers(dest="storage_command", required=True,
                                              metavar="COMMAND")
    storage_check = storage_commands.add_parser(
        "check", help="try every location: reachable, writable, versioning, Object Lock, "
                      "checksums; exit 1 if one cannot take copies")
    _json_flag(storage_check)

    reconcile_cmd = commands.add_parser(
        "reconcile", help="compare every location with the catalog: missing, unexpected and "
                          "mismatched objects; exit 1 if any is left")
    reconcile_cmd.add_argument("--repair", action="store_true",
                               help="write missing or damaged copies again from a location "
                                    "whose bytes match the ingest digest")
    _json_flag(reconcile_cmd)

    delete_cmd = commands.add_parser(
        "delete", help="delete every copy of a stored WARC file, with a recorded reason; "
                       "a tombstone and a ledger entry remain")
    delete_cmd.add_argument("key", metavar="KEY", help="the WARC file's key (as `get --json` "
                                                       "or `capture` shows it)")
    delete_cmd.add_argument("--reason", required=True, help="why it is deleted (recorded)")
    _json_flag(delete_cmd)

    reindex_cmd = commands.add_parser(
        "reindex", help="rebuild the catalog from storage and compare it with the one it "
                        "replaces; exit 1 if they differ",
        description="Rebuild the catalog from storage alone: the WARC files in every "
                    "location, the ledger's checkpoints and the tombstones. The rebuilt "
                    "catalog replaces the old one in one transaction and the two are "
                    "compared, table by table. Fixity events, audits and jobs are kept.")
    reindex_cmd.add_argument("--check", action="store_true",
                             help="only compare: rebuild, report the differences, roll back")
    _json_flag(reindex_cmd)

    ledger_cmd = commands.add_parser("ledger", help="the hash-chained event log")
    ledger_commands = ledger_cmd.add_subparsers(dest="ledger_command", required=True,
                                                metavar="COMMAND")
    verify = ledger_commands.add_parser("verify", help="prove no entry was changed, removed "
                                        "or reordered; exit 1 if one was")
    _json_flag(verify)

    search_cmd = commands.add_parser("search", help="full-text search over extracted text, "
                                                    "titles and publishers, best first")
    search_cmd.add_argument("words", metavar="TEXT", help='words (all must appear) and '
                            '"quoted phrases"')
    search_cmd.add_argument("--collection", help="only this collection")
    search_cmd.add_argument("--publisher", help="only this publisher (any case)")
    search_cmd.add_argument("--from", dest="start", type=_datetime_arg, metavar="DATETIME",
                            help="captured at or after")
    search_cmd.add_argument("--to", dest="end", type=_datetime_arg, metavar="DATETIME",
                            help="captured at or before")
    search_cmd.add_argument("--limit", type=_positive(int), default=20, metavar="N",
                            help="at most N results (default 20)")
    _json_flag(search_cmd)

    export_cmd = commands.add_parser("export", help="packages for researchers and other "
                                                    "repositories")
    export_commands = export_cmd.add_subparsers(dest="export_command", required=True,
                                                metavar="FORMAT")
    export_jsonl_cmd = export_commands.add_parser(
        "jsonl", help="one JSON line per described capture: metadata, text and where its "
                      "record is (for text mining), oldest first")
    export_jsonl_cmd.add_argument("--collection", help="only this collection")
    export_jsonl_cmd.add_argument("--out", type=Path, required=True, metavar="PATH",
                                  help="the file to write (- for standard output); written "
                                       "whole or not at all")

    export_bag_cmd = export_commands.add_parser(
        "bag", help="a BagIt bag of a collection: its WARC files from verified copies and "
                    "metadata.jsonl, with SHA-256 and SHA-512 manifests")
    export_bag_cmd.add_argument("--collection", required=True, help="the collection")
    export_bag_cmd.add_argument("--out", type=Path, required=True, metavar="DIR",
                                help="the bag's folder (must not exist); made whole or not "
                                     "at all")

    export_wacz_cmd = export_commands.add_parser(
        "wacz", help="a WACZ 1.1.1 package of a collection (for ReplayWeb.page and pywb): its "
                     "WARC files from verified copies, CDXJ index, pages and datapackage")
    export_wacz_cmd.add_argument("--collection", required=True, help="the collection")
    export_wacz_cmd.add_argument("--out", type=Path, required=True, metavar="FILE",
                                 help="the .wacz file (must not exist); written whole or not "
                                      "at all")

    policies_cmd = commands.add_parser("policies", help="policy files")
    policies_commands = policies_cmd.add_subparsers(dest="policies_command", required=True,
                                                    metavar="COMMAND")
    policies_check = policies_commands.add_parser(
        "check", help="validate policy files: every problem of every file, with file, line "
                      "and key; exit 1 if there is one")
    policies_check.add_argument("paths", nargs="*", type=Path, metavar="PATH",
                                help="policy files or folders of them (default: the "
                                     "settings' policies folder)")
    _json_flag(policies_check)

    jobs_cmd = commands.add_parser("jobs", help="scheduled runs: list them, or cancel one")
    jobs_cmd.add_argument("--state", choices=STATES, help="only jobs in this state")
    jobs_cmd.add_argument("--limit", type=_positive(int), default=100, metavar="N",
                          help="at most N jobs, newest first (default 100)")
    _json_flag(jobs_cmd)
    jobs_commands = jobs_cmd.add_subparsers(dest="jobs_command", metavar="COMMAND")
    jobs_cancel = jobs_commands.add_parser("cancel", help="cancel a queued job")
    jobs_cancel.add_argument("job", metavar="ID", help="the job's ID (as `preserve jobs` shows)")
    _json_flag(jobs_cancel)

    schedule_cmd = commands.add_parser("schedule", help="run what the policies' schedules say")
    schedule_commands = schedule_cmd.add_subparsers(dest="schedule_command", required=True,
                                                    metavar="COMMAND")
    run_due = schedule_commands.add_parser(
        "run-due", help="create the jobs of every run that is due and run them here, now; "
                        "exit 1 if one fails")
    run_due.add_argument("--now", type=_datetime_arg, metavar="DATETIME",
                         help="which runs are due as of this time (default: now)")
    _json_flag(run_due)

    scheduler_cmd = commands.add_parser(
        "scheduler", help="schedule and run jobs until stopped (Ctrl-C or SIGTERM), on "
                          "threads of this process")
    scheduler_cmd.add_argument("--every", type=_positive(float), default=30, metavar="SECONDS",
                               help="seconds between looks at the schedules (default 30)")
    scheduler_cmd.add_argument("--threads", type=_positive(int), metavar="N",
                               help="jobs run at once here, with the local backend "
                                    "(default: the settings' workers.threads, 2)")

    serve_cmd = commands.add_parser(
        "serve", help="the HTTP API (OpenAPI at /docs), with the scheduler and its workers "
                      "(local threads, or sending to Celery workers), until stopped")
    serve_cmd.add_argument("--host", default="127.0.0.1",
                           help="address to listen on (default 127.0.0.1: this machine only)")
    serve_cmd.add_argument("--port", type=_positive(int), default=8080,
                           help="port (default 8080)")
    serve_cmd.add_argument("--every", type=_positive(float), default=30, metavar="SECONDS",
                           help="seconds between the scheduler's looks at the policies "
                                "(default 30)")
    serve_cmd.add_argument("--no-scheduler", action="store_true",
                           help="serve the API only (a scheduler runs elsewhere)")

    replay_cmd = commands.add_parser(
        "replay", help="replay through pywb (its wayback command, found as replay.wayback "
                       "says), which reads our CDX index and our stored WARC files: "
                       "/replay/TIMESTAMP/URL, until stopped")
    replay_cmd.add_argument("--host", default="127.0.0.1",
                            help="address pywb listens on (default 127.0.0.1: this machine "
                                 "only)")
    replay_cmd.add_argument("--port", type=_positive(int), default=8090,
                            help="port (default 8090)")

    token_cmd = commands.add_parser("token", help="API tokens")
    token_commands = token_cmd.add_subparsers(dest="token_command", required=True,
                                              metavar="COMMAND")
    token_new = token_commands.add_parser(
        "new", help="make a token for the HTTP API; print it once, with the settings entry "
                    "(its SHA-256) to add under auth.tokens")
    token_new.add_argument("name", metavar="NAME", help="who will use it")
    token_new.add_argument("--role", required=True, choices=ROLES, help="what it may do")
    _json_flag(token_new)

    worker_cmd = commands.add_parser(
        "worker", help="a distributed worker (Celery): run the jobs schedulers send to the "
                       "settings' broker and queue, until stopped")
    worker_cmd.add_argument("--threads", type=_positive(int), metavar="N",
                            help="jobs run at once (default: the settings' workers.threads, 2)")

    demo_cmd = commands.add_parser("demo", help="offline walk-through: serve the bundled "
                                   "reference page on loopback, archive, retrieve and audit it")
    _json_flag(demo_cmd, "the walk-through's findings as JSON instead of the narration")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """The ``preserve`` command (started through :mod:`preserve.__main__`)."""
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
        handler = _HANDLERS[args.command]
        return handler(args, settings)
    except PreserveError as exc:
        # One line, whatever a wrapped library put into the message.
        print(f"preserve: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return exc.exit_status
    except KeyboardInterrupt:
        print("preserve: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`preserve get ... | head`): stop quietly, as cat does.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


def _note_left_behind(settings: Settings, importing: Sequence[Path] = ()) -> None:
    """Clear what stopped commands left in the work folder; name the WARC files among it."""
    from preserve.workdir import sweep

    taken = {path.resolve() for path in importing}
    for left in sweep(settings.work_dir):
        if left.path.resolve() not in taken:
            print(f"preserve: note: {left.note()}", file=sys.stderr)


@contextmanager
def _catalog(settings: Settings, existing: bool = False) -> Iterator[Engine]:
    """The catalog engine for one command, closed when the command ends (``existing``:
    a command that reads or audits, which a catalog not there yet is bad input for)."""
    engine = open_engine(settings.database_url, existing=existing)
    try:
        yield engine
    finally:
        engine.dispose()


def _capture(args: argparse.Namespace, settings: Settings) -> int:
    policy = load_policy(args.policy) if args.policy is not None else None
    settings = capture_settings(settings, policy, timeout_seconds=args.timeout,
                                max_resource_bytes=args.max_resource_bytes)
    started = shown = time.monotonic()
    responses = pages = fetched_bytes = 0

    def show_progress() -> None:
        rate = pages / max(time.monotonic() - started, 1e-9)
        print(f"\rfetched {pages} pages, {responses} responses, {fetched_bytes / 1e6:.1f} MB "
              f"({rate:.0f} pages/s)\x1b[K", end="", file=sys.stderr, flush=True)

    def progress(response: Response) -> None:
        # Counted, and shown ten times a second at most: a crawl answers thousands.
        nonlocal responses, pages, fetched_bytes, shown
        responses += 1
        pages += response.role == "page"
        fetched_bytes += response.bytes
        if (now := time.monotonic()) - shown >= 0.1 or responses == 1:
            shown = now
            show_progress()

    show = sys.stderr.isatty() and not args.json
    _note_left_behind(settings)
    with _catalog(settings) as engine:
        try:
            report = run_capture(args.urls, collection=args.collection, policy=policy,
                                 settings=settings, engine=engine, overrides=CaptureOverrides(
                                     scope=args.scope, depth=args.depth,
                                     max_pages=args.max_pages, include=tuple(args.include),
                                     exclude=tuple(args.exclude), delay_seconds=args.delay,
                                     host_connections=args.host_connections,
                                     obey_robots=False if args.ignore_robots else None,
                                     describe=not args.no_describe, warc_size=args.warc_size),
                                 progress=progress if show else None)
        finally:
            if responses:
                show_progress()  # the last counts, which may not have been shown yet
                print(file=sys.stderr)
    if args.json:
        _print_json(report.as_dict())
    else:
        _print_capture(report)
    # Preserved, but not in every location asked for, or not every start page: an
    # operation failed in part.
    return 1 if report.start_pages_failed or any(
        warc["missing"] for warc in report.warcs) else 0


def _get(args: argparse.Namespace, settings: Settings) -> int:
    if (args.payload or args.record) and args.output is None and sys.stdout.isatty():
        raise BadInput("get: --payload and --record write bytes; send them to a file "
                       "(-o FILE) or a pipe, not the terminal")
    with _catalog(settings, existing=True) as engine:
        snapshot = retrieve.find_snapshot(engine, args.url, args.at)
        summary = not (args.payload or args.record or args.text or args.json)
        # The copies are in the summary; --json has them in the snapshot's detail.
        verified, missing = retrieve.copies_of(engine, snapshot) if summary else ([], {})
        detail = retrieve.snapshot_detail(engine, snapshot) if args.json else {}
        stores = open_stores(settings.locations)
        if args.record:
            record = retrieve.read_record(engine, stores, snapshot)
        elif args.payload:
            record = retrieve.payload_record(engine, stores, snapshot)
    if args.payload or args.record:
        chunks: Iterable[bytes] = (
            [record] if args.record else iter_chunks(retrieve.read_payload(record).body))
    elif args.text:
        chunks = [((snapshot.text or "") + "\n").encode("utf-8")]
    elif args.json:
        chunks = [(_json(detail) + "\n").encode("utf-8")]
    else:
        copies = f"copies     {', '.join(verified) or 'none'}\n" + "".join(
            f"           under-replicated: no copy in {location} ({problem})\n"
            for location, problem in missing.items())
        chunks = [(_snapshot_summary(snapshot) + copies).encode("utf-8")]
    out = _output(args.output)
    try:
        for chunk in chunks:
            out.write(chunk)
        out.flush()
    finally:
        if args.output is not None:
            out.close()
    return 0


def _list(args: argparse.Namespace, settings: Settings) -> int:
    with _catalog(settings, existing=True) as engine:
        snapshots = retrieve.list_snapshots(engine, args.url)
    if not snapshots and not args.json:
        print(f"preserve: no capture of {args.url} in the catalog", file=sys.stderr)
    changes = retrieve.text_changes(snapshots)
    if args.json:
        _print_json({"url": args.url, "captures": [
            {**retrieve.snapshot_json(snap), "text_change": change}
            for snap, change in zip(snapshots, changes, strict=True)]})
        return 0
    for snap, change in zip(snapshots, changes, strict=True):
        print(f"{snap.capture_time:%Y-%m-%d %H:%M:%S}Z  {snap.status or '-':>3}  "
              f"{(snap.mime or '-'):<24} {snap.collection:<16} "
              f"{_TEXT_MARKS.get(change or '', ''):<8} {snap.title or snap.url}")
    return 0


# How ``preserve list`` marks a capture's text against the previous one's.
_TEXT_MARKS = {"first": "text", "same": "same", "near-identical": "~same",
               "changed": "CHANGED"}


def _describe(args: argparse.Namespace, settings: Settings) -> int:
    if len(args.files) == 1:
        name = args.files[0]
        if name == "-" and sys.stdin.isatty():
            print("preserve: reading HTML from standard input (end with Ctrl-D)",
                  file=sys.stderr)
        try:
            data = _html_bytes(name)
        except OSError as exc:
            raise BadInput(f"{name}: cannot read: {exc.strerror}") from exc
        _print_json(_description_json(decode_html(data), args.url))
        return 0
    if args.url:
        raise BadInput("describe: --url names one page's URL; give it with one file")
    status = 0
    for name in args.files:
        try:
            line = {"file": name, **_description_json(decode_html(_html_bytes(name)), None)}
        except OSError as exc:
            line, status = {"file": name, "error": f"cannot read: {exc.strerror}"}, 1
        except Exception as exc:  # an extractor failing on one page must not stop the rest
            line, status = {"file": name, "error": f"{type(exc).__name__}: {exc}"}, 1
        print(json.dumps(line, ensure_ascii=False), flush=True)
    return status


def _html_bytes(name: str) -> bytes:
    return sys.stdin.buffer.read() if name == "-" else Path(name).read_bytes()


def _description_json(html: str, url: str | None) -> dict[str, Any]:
    """What ``preserve describe`` prints of a page."""
    return describe(html, url).as_dict()


def _import(args: argparse.Namespace, settings: Settings) -> int:
    from preserve.importer import import_files

    def progress(name: str) -> None:
        if sys.stderr.isatty() and not args.json:
            print(f"importing {name}", file=sys.stderr, flush=True)

    _note_left_behind(settings, args.paths)
    with _catalog(settings) as engine:
        reports = import_files(args.paths, settings=settings, engine=engine,
                               collection=args.collection, lenient=args.lenient,
                               describe=not args.no_describe, actor=settings.operator,
                               progress=progress)
    status = 1 if any(report.problems for report in reports) else 0
    if args.json:
        _print_json({"files": [report.as_dict() for report in reports]})
        return status
    for report in reports:
        if not report.imported:
            print(f"{report.file}: already preserved as {report.key} (sha256:{report.sha256}); "
                  "nothing to do")
        else:
            print(f"{report.file}: imported as {report.key} ({report.format}, {report.records} "
                  f"records, {report.captures} captures, {report.described} pages described)")
        if report.cleared:
            print("  removed from the work folder, where a capture had left it")
        for problem in report.problems:
            print(f"  left out: {problem}")
        for error in report.not_described:
            print(f"  {error}")
    return status


def _redescribe(args: argparse.Namespace, settings: Settings) -> int:
    show = sys.stderr.isatty() and not args.json

    def progress(number: int, total: int) -> None:
        if show:
            print(f"\rdescribed {number}/{total} pages", end="", file=sys.stderr, flush=True)

    _note_left_behind(settings)
    with _catalog(settings) as engine:
        report = run_redescribe(settings=settings, engine=engine, collection=args.collection,
                                url=args.url, every=args.every, progress=progress)
    if show and report.described:
        print(file=sys.stderr)
    under_replicated = any(warc["missing"] for warc in report.warcs)
    if args.json:
        _print_json(report.as_dict())
        return 1 if under_replicated else 0
    print(f"described {report.described} page{'' if report.described == 1 else 's'}")
    _print_stored(report.warcs)
    for error in report.errors:
        print(f"  {error}")
    return 1 if under_replicated else 0


def _reindex(args: argparse.Namespace, settings: Settings) -> int:
    from preserve.reindex import reindex

    show = sys.stderr.isatty() and not args.json

    def progress(number: int, total: int, key: str) -> None:
        if show:
            print(f"\rreading {number}/{total} files", end="", file=sys.stderr, flush=True)

    _note_left_behind(settings)
    with _catalog(settings) as engine:
        report = reindex(settings, engine, check=args.check, progress=progress)
    if show and report.files:
        print(file=sys.stderr)
    status = 0 if report.equal and not report.problems else 1
    if args.json:
        _print_json(report.as_dict())
        return status
    print(f"{'checked' if report.checked_only else 'rebuilt'} from storage: {report.files} "
          f"files, {report.records} records ({report.captures} captures, "
          f"{report.descriptions} descriptions), {report.ledger_entries} ledger entries, "
          f"{report.tombstones} tombstones")
    if report.refused:
        print(f"preserve: {report.refused}", file=sys.stderr)
        return 1
    if report.replaced_empty:
        print("the catalog was empty: nothing to compare")
    elif report.equal:
        print("the rebuilt catalog equals the one it replaced" if not report.checked_only
              else "the catalog equals what storage holds")
    for table, counts in report.differences.items():
        print(f"  {table}: {counts['only_before']} rows only in the old catalog, "
              f"{counts['only_after']} only in the rebuilt one")
    for key in report.unledgered:
        print(f"  {key}: not in the ledger's checkpoints; a new ingest entry was made")
    for problem in report.problems:
        print(f"  {problem}")
    return status


def _fixity(args: argparse.Namespace, settings: Settings) -> int:
    if args.fixity_command == "report":
        return _fixity_report(args, settings)
    show = not args.json and sys.stderr.isatty()
    started = time.monotonic()
    checked_bytes = 0

    def progress(number: int, total: int, stored: Any) -> None:
        nonlocal checked_bytes
        checked_bytes += stored.size * max(1, len(stored.locations))
        if show:
            rate = checked_bytes / max(time.monotonic() - started, 1e-9) / 1e6
            print(f"\rchecked {number}/{total} objects, {rate:.0f} MB/s", end="",
                  file=sys.stderr, flush=True)

    stores = open_stores(settings.locations)
    asks = policies_ask(settings)
    with _catalog(settings, existing=True) as engine:
        if args.collection is not None:
            check_collection_known(engine, args.collection, asks.collections)
        result = run_fixity(engine, stores, progress,
                            collection=args.collection, location=args.location,
                            deep=args.deep, repair=args.repair, sample=args.sample,
                            actor=settings.operator, copies_asked=asks.copies_of,
                            **_overdue_days(args, asks))
        newest, checkpointed = ledger.checkpoint(engine, stores, result.out_of_reach)
    if show and result.objects:
        print(file=sys.stderr)
    if args.json:
        _print_json(result.as_dict())
    else:
        if result.resumed:
            print(f"fixity: resumed an interrupted audit ({result.skipped} copies it had "
                  "found whole are not checked again)")
        print(f"fixity: {result.summary()}")
        for finding in result.findings:
            print(f"  {finding}")
        if newest is not None:
            skipped = "".join(f"; not to {name} (out of reach in this audit)"
                              for name in sorted(result.out_of_reach))
            print(f"ledger: entry {newest.seq} checkpointed to "
                  f"{', '.join(checkpointed) or 'no location (none could take it)'}{skipped}")
    return 0 if result.passed else 1


def _overdue_days(args: argparse.Namespace, asks: PoliciesAsk) -> dict[str, Any]:
    """When a copy is overdue: ``--every-days`` for every collection, else each one's
    policy's ``fixity_every_days`` (and the default for the others)."""
    if args.every_days:
        return {"every_days": args.every_days, "every_days_of": None}
    return {"every_days": DEFAULT_EVERY_DAYS, "every_days_of": asks.every_days}


def _fixity_report(args: argparse.Namespace, settings: Settings) -> int:
    with _catalog(settings, existing=True) as engine:
        report = fixity_report(engine, since=args.since,
                               **_overdue_days(args, policies_ask(settings)))
    if args.json:
        _print_json(report.as_dict())
    elif args.html:
        print(report.html())
    elif args.csv:
        writer = csv.writer(sys.stdout)
        writer.writerow(EVENT_COLUMNS)
        for event in report.events:
            writer.writerow([event[column] for column in EVENT_COLUMNS])
    else:
        print(report.text())
    return 0 if report.passed else 1


def _storage(args: argparse.Namespace, settings: Settings) -> int:
    stores = open_stores(settings.locations)
    # A folder the catalog holds copies in must be in place (not an empty mount point);
    # with no catalog yet (or none reachable), any folder may be a new one.
    with suppress(PreserveError, SQLAlchemyError):
        engine = open_engine(settings.database_url, existing=True)
        expect_copies(engine, stores.values())
        engine.dispose()
    checks = [store.probe() for store in stores.values()]
    if args.json:
        _print_json([{**asdict(check), "usable": check.usable, "can_retain": check.can_retain}
                     for check in checks])
        return 0 if all(check.usable for check in checks) else 1
    columns = ("location", "type", "reachable", "writable", "versioning", "object lock",
               "retention", "server checksums")
    rows = [(check.location, check.type, _yes(check.reachable), _yes(check.writable),
             check.versioning, check.object_lock,
             "n/a" if check.type == "filesystem" else _yes(check.can_retain),
             check.server_checksums)
            for check in checks]
    widths = [max(len(str(row[i])) for row in [columns, *rows]) for i in range(len(columns))]
    for row in [columns, *rows]:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True))
              .rstrip())
    for check in checks:
        print(f"\n{check.location}: {check.where}")
        if check.checksums:
            print(f"  checksums: {check.checksums}")
        if check.conditional_writes != "n/a":
            print(f"  no overwrite: {check.conditional_writes}")
        for problem in check.problems:
            print(f"  problem: {problem}")
    return 0 if all(check.usable for check in checks) else 1


def _reconcile(args: argparse.Namespace, settings: Settings) -> int:
    show = not args.json and sys.stderr.isatty()

    def progress(location: str) -> None:
        if show:
            print(f"listing {location}", file=sys.stderr, flush=True)

    with _catalog(settings, existing=True) as engine:
        result = reconcile(engine, open_stores(settings.locations), repair=args.repair,
                           actor=settings.operator, progress=progress)
    if args.json:
        _print_json(result.as_dict())
    else:
        print(f"reconcile: {result.summary()}")
        for item in result.discrepancies:
            print(f"  {item}")
    return 0 if result.passed else 1


def _delete(args: argparse.Namespace, settings: Settings) -> int:
    with _catalog(settings, existing=True) as engine:
        tombstone = delete_file(engine, open_stores(settings.locations), args.key,
                                args.reason, actor=settings.operator)
    if args.json:
        _print_json(tombstone.as_dict())
    else:
        print(f"deleted {tombstone.key} from {tombstone.locations.replace(',', ', ')}: "
              f"{tombstone.captures} captures, sha256 {tombstone.sha256}; "
              f"reason recorded: {tombstone.reason}")
    return 0


def _yes(value: bool) -> str:
    return "yes" if value else "no"


def _ledger(args: argparse.Namespace, settings: Settings) -> int:
    with _catalog(settings, existing=True) as engine, engine.connect() as connection:
        check = ledger.verify(connection)
        check.problems.extend(ledger.verify_checkpoints(connection,
                                                        open_stores(settings.locations)))
    if args.json:
        _print_json({"passed": check.passed, "entries": check.entries,
                     "problems": check.problems})
    else:
        print(f"ledger: {check.entries} entries: "
              + ("the chain holds" if check.passed else
                 f"{len(check.problems)} problem{'' if len(check.problems) == 1 else 's'}"))
        for problem in check.problems:
            print(f"  {problem}")
    return 0 if check.passed else 1


def _search(args: argparse.Namespace, settings: Settings) -> int:
    with _catalog(settings, existing=True) as engine:
        total, hits = retrieve.search(engine, args.words, SearchFilters(
            collection=args.collection, publisher=args.publisher, start=args.start,
            end=args.end), limit=args.limit)
    if args.json:
        _print_json({"total": total, "results": [retrieve.hit_json(hit) for hit in hits]})
        return 0
    print(f"search: {total} captures match" + (f", the best {len(hits)}:" if hits else ""))
    for hit in hits:
        snap = hit.snapshot
        print(f"\n{snap.capture_time:%Y-%m-%d %H:%M}Z  {snap.title or snap.url}")
        print(f"  {snap.url}" + (f"  ({snap.publisher})" if snap.publisher else ""))
        print(f"  {hit.snippet}")
    return 0


def _export(args: argparse.Namespace, settings: Settings) -> int:
    to_stdout = str(args.out) == "-"
    show = sys.stderr.isatty() and not to_stdout

    def progress(count: int) -> None:
        if show:
            print(f"\rexported {count} captures", end="", file=sys.stderr, flush=True)

    if args.export_command in ("bag", "wacz"):
        def copied(number: int, total: int) -> None:
            if sys.stderr.isatty():
                print(f"\rcopied {number}/{total} WARC files", end="", file=sys.stderr,
                      flush=True)

        package = export_bag if args.export_command == "bag" else export_wacz
        with _catalog(settings, existing=True) as engine:
            count = package(engine, open_stores(settings.locations), args.collection,
                            args.out, copied)
        if sys.stderr.isatty():
            print(file=sys.stderr)
        what = "a bag" if args.export_command == "bag" else "a WACZ"
        print(f"export: {what} of {count} WARC files of {args.collection} at {args.out}")
        return 0
    with _catalog(settings, existing=True) as engine:
        count = export_jsonl(engine, None if to_stdout else args.out, args.collection, progress)
    if show:
        print(file=sys.stderr)
    if not to_stdout:
        print(f"export: {count} captures written to {args.out}")
    return 0


def _policies(args: argparse.Namespace, settings: Settings) -> int:
    checked = check_policies(args.paths or [settings.policies_dir], settings.locations)
    problems = [problem for _path, found in checked for problem in found]
    if args.json:
        _print_json({"files": [{"path": str(path), "problems": [str(p) for p in found]}
                               for path, found in checked], "problems": len(problems)})
    else:
        for problem in problems:
            print(problem)
        print(f"policies: {len(checked)} files, {len(problems)} problems")
    return 1 if problems else 0


def _jobs(args: argparse.Namespace, settings: Settings) -> int:
    with _catalog(settings, existing=True) as engine:
        if args.jobs_command == "cancel":
            job = cancel_job(engine, args.job, datetime.now(UTC))
            if args.json:
                _print_json(job.as_dict())
            else:
                print(f"job {job.id}: cancelled")
            return 0
        found = list_jobs(engine, args.state, args.limit)
    if args.json:
        _print_json({"jobs": [job.as_dict() for job in found]})
        return 0
    for job in found:
        print(_job_line(job))
    if not found:
        print("jobs: none" + (f" {args.state}" if args.state else ""))
    return 0


def _job_line(job: Job) -> str:
    line = (f"{job.id}  {job.state:<9}  {job.kind:<7}  "
            f"{job.scheduled_for:%Y-%m-%d %H:%M}Z  {job.policy}  {job.target}")
    if job.attempts > 1 or (job.error and job.state != "succeeded"):
        line += f"  (attempt {job.attempts})"
    if job.error and job.state in ("queued", "failed"):
        line += f"  {job.error}"
    return line


def _schedule(args: argparse.Namespace, settings: Settings) -> int:
    _note_left_behind(settings)
    with _catalog(settings) as engine:
        if settings.workers.backend == "celery":
            passed, sent = send_due(settings, engine, at=args.now)
            if args.json:
                _print_json({"created": passed.created, "requeued": passed.requeued,
                             "problems": [str(problem) for problem in passed.problems],
                             "sent": sent})
            else:
                for problem in passed.problems:
                    print(f"left out: {problem}")
                print(f"schedule: {len(passed.created)} runs due, {len(sent)} jobs sent to "
                      f"queue {settings.workers.queue} at {settings.workers.broker_url}")
            return 1 if passed.problems else 0
        passed, ran = run_due(settings, engine, at=args.now)
    if args.json:
        _print_json({"created": passed.created, "requeued": passed.requeued,
                     "problems": [str(problem) for problem in passed.problems],
                     "jobs": [job.as_dict() for job in ran]})
    else:
        for problem in passed.problems:
            print(f"left out: {problem}")
        print(f"schedule: {len(passed.created)} runs due, {len(ran)} jobs run")
        for job in ran:
            print(_job_line(job))
    return 1 if passed.problems or any(job.state != "succeeded" for job in ran) else 0


def _report_tick(who: str) -> Callable[[Tick], None]:
    """What a scheduler says after each look: new jobs, jobs queued again, policy problems
    (each problem once, not at every look)."""
    reported: set[str] = set()

    def report(passed: Tick) -> None:
        for problem in passed.problems:
            if str(problem) not in reported:
                reported.add(str(problem))
                print(f"{who}: left out until fixed: {problem}", flush=True)
        for job_id in passed.created:
            print(f"{who}: job {job_id} queued", flush=True)
        for job_id in passed.requeued:
            print(f"{who}: job {job_id} queued again (its runner stopped answering)",
                  flush=True)
    return report


def _scheduler(args: argparse.Namespace, settings: Settings) -> int:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    report = _report_tick("scheduler")
    threads = args.threads or settings.workers.threads
    _note_left_behind(settings)
    with _catalog(settings) as engine:
        workers = _dispatcher(settings, engine, "scheduler", threads)
        where = (f"jobs sent to queue {settings.workers.queue}"
                 if settings.workers.backend == "celery" else f"{threads} jobs at once here")
        print(f"scheduler: policies in {settings.policies_dir}, a look every {args.every:g} s, "
              f"{where}; Ctrl-C stops", flush=True)
        try:
            run_scheduler(settings, engine, workers, stop, args.every, report,
                          _trouble("scheduler"))
        except KeyboardInterrupt:
            stop.set()
        finally:
            print("scheduler: stopping" + ("" if settings.workers.backend == "celery" else
                                           "; waiting for the jobs running here to end"),
                  flush=True)
            workers.shutdown()
    return 0


def _dispatcher(settings: Settings, engine: Engine, who: str, threads: int) -> Dispatcher:
    """Who runs the jobs a scheduler hands out: Celery workers, or threads here."""
    if settings.workers.backend == "celery":
        return CeleryDispatch(settings, engine)
    return LocalWorkers(settings, engine, threads,
                        finished=lambda job: print(f"{who}: {_job_line(job)}", flush=True),
                        trouble=_trouble(who))


def _trouble(who: str) -> Callable[[str], None]:
    return lambda line: print(f"{who}: {line}", file=sys.stderr, flush=True)


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from preserve.api import listening_socket
    from preserve.api.app import create_app

    listening = listening_socket(args.host, args.port, "serve")  # the address first
    if not settings.tokens:
        print("serve: no API tokens in the settings (auth.tokens): every request but "
              "/api/health will be refused; make one with `preserve token new`",
              file=sys.stderr, flush=True)
    stop = threading.Event()
    with listening, _catalog(settings) as engine:
        workers = _dispatcher(settings, engine, "serve", settings.workers.threads)
        scheduler = None
        if not args.no_scheduler:
            scheduler = threading.Thread(
                target=run_scheduler, name="scheduler", daemon=True,
                args=(settings, engine, workers, stop, args.every, _report_tick("serve"),
                      _trouble("serve")))
            scheduler.start()
        # uvicorn stops on SIGTERM and then raises it again: with this handler the
        # process ends here, after the jobs running in it, instead of dying there.
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        print(f"serve: http://{args.host}:{args.port}/ (API documentation at /docs)"
              + ("" if args.no_scheduler else f", scheduler looking every {args.every:g} s"),
              flush=True)
        server = uvicorn.Server(uvicorn.Config(create_app(settings, engine, workers),
                                               log_level="warning"))
        try:
            server.run(sockets=[listening])
        finally:
            stop.set()
            if scheduler is not None:
                scheduler.join()
            workers.shutdown()
    return 0


def _replay(args: argparse.Namespace, settings: Settings) -> int:
    from preserve.replay import run_replay

    with _catalog(settings) as engine:
        return run_replay(settings, engine, args.host, args.port)


def _token(args: argparse.Namespace, settings: Settings) -> int:
    secret = secrets.token_urlsafe(32)
    digest = hashlib.sha256(secret.encode()).hexdigest()
    if args.json:
        _print_json({"name": args.name, "role": args.role, "token": secret, "sha256": digest})
    else:
        print(f"token: {secret}")
        print("Give it to its user; it is not kept. Add this under auth.tokens in "
              "preserve.yaml:")
        print(f"  - {{name: {args.name}, role: {args.role}, sha256: {digest}}}")
    return 0


def _worker(args: argparse.Namespace, settings: Settings) -> int:
    if settings.workers.backend != "celery":
        raise ConfigError("worker: workers.backend is local, so jobs run in the scheduler; "
                          "set workers.backend: celery (or PRESERVE_WORKERS_BACKEND=celery)")
    if args.threads:
        settings = replace(settings, workers=replace(settings.workers, threads=args.threads))
    _note_left_behind(settings)
    with _catalog(settings):  # the catalog is reachable and migrated before work arrives
        pass
    run_worker(settings)
    return 0


def _demo(args: argparse.Namespace, settings: Settings) -> int:
    status, summary = demo.walkthrough(settings, (lambda line: None) if args.json else print)
    if args.json:
        _print_json(summary)
    return status


_HANDLERS = {"capture": _capture, "get": _get, "list": _list, "describe": _describe,
             "redescribe": _redescribe, "import": _import,
             "fixity": _fixity, "storage": _storage, "reconcile": _reconcile, "delete": _delete,
             "ledger": _ledger, "reindex": _reindex, "search": _search, "export": _export,
             "policies": _policies,
             "jobs": _jobs, "schedule": _schedule,
             "scheduler": _scheduler, "worker": _worker, "serve": _serve, "replay": _replay,
             "token": _token,
             "demo": _demo}


def _json_flag(parser: argparse.ArgumentParser, help: str = "machine-readable output") -> None:
    parser.add_argument("--json", action="store_true", help=help)


def _fraction(value: str) -> float:
    """An argparse type: a number above 0 and at most 1."""
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, not {value!r}") from None
    if not 0 < number <= 1:
        raise argparse.ArgumentTypeError(f"must be above 0 and at most 1, not {value}")
    return number


def _whole(value: str) -> int:
    """An argparse type: a whole number, zero or more."""
    if not is_digits(value):
        raise argparse.ArgumentTypeError(f"must be a whole number, not {value!r}")
    return int(value)


def _count(value: str) -> float:
    """An argparse type: a finite number, zero or more."""
    try:
        number = float(value)
    except ValueError:
        number = -1
    if not number >= 0 or not math.isfinite(number):
        raise argparse.ArgumentTypeError(f"must be zero or more, not {value!r}")
    return number


def _positive(kind: type[float] | type[int]) -> Callable[[str], float]:
    """An argparse type: a finite number above zero."""
    def parse(value: str) -> float:
        try:
            number = kind(value)
        except ValueError:
            number = -1
        if not number > 0 or not math.isfinite(number):
            raise argparse.ArgumentTypeError(f"must be a positive number, not {value!r}")
        return number
    return parse


def _datetime_arg(value: str) -> datetime:
    text = value.strip()
    try:
        if is_digits(text) and 4 <= len(text) <= 14:
            moment = retrieve.timestamp_datetime(text)
        else:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a date/time (use ISO 8601 or a 4-14 digit timestamp)") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _snapshot_summary(snap: Snapshot) -> str:
    lines = [
        f"url        {snap.url}",
        f"captured   {snap.capture_time.isoformat().replace('+00:00', 'Z')}  "
        f"({snap.collection})",
        f"status     {snap.status or '-'}  {snap.mime or ''}",
    ]
    for name in ("title", "publisher", "author", "published", "language"):
        if value := getattr(snap, name):
            lines.append(f"{name:<10} {value}")
    lines.append(f"digest     {snap.payload_digest}")
    lines.append(f"warc       {snap.warc_key} offset {snap.offset} length {snap.length}")
    if snap.text:
        excerpt = " ".join(snap.text.split())[:200]
        lines.append(f"text       {len(snap.text)} characters: {excerpt}...")
    return "\n".join(lines) + "\n"


def _print_stored(warcs: list[dict[str, Any]]) -> None:
    for warc in warcs:
        print(f"stored {warc['key']}\n  sha256 {warc['sha256']}  {warc['size']} bytes  "
              f"verified in: {', '.join(warc['locations'])}")
        for location, problem in warc.get("missing", {}).items():
            print(f"  under-replicated: no copy in {location}: {problem}")
        for location, until in warc.get("retention", {}).items():
            print(f"  retained in {location} until {until}" if until else
                  f"  no retention date in {location}: it cannot hold one (no Object Lock)")


def _print_capture(report: CaptureReport) -> None:
    print(f"captured {report.pages} page{'s' if report.pages != 1 else ''} and {report.resources} "
          f"resources into collection {report.collection!r}: {report.records} WARC records, "
          f"{report.bytes} bytes")
    for response in report.responses:
        if response.role != "requisite" or response.status >= 400:
            note = "  (archived as answered)" if response.status >= 400 else ""
            print(f"  {response.role:<9} {response.status}  {response.url}{note}")
    if report.responses_omitted:
        print(f"  and {report.responses_omitted} more responses: see the crawl log {report.log}")
    statuses = ", ".join(f"{count} × {status}" for status, count in report.status_codes.items())
    print(f"  answers: {statuses or 'none'}; revisits: {report.revisits} ({report.bytes_saved} "
          f"bytes not stored again); refused by robots.txt: {report.robots_refusals}; "
          f"links out of scope: {report.out_of_scope}; {report.duration_seconds:.1f} s")
    _print_stored(report.warcs)
    for error in report.errors:
        print(f"  problem: {error}")
    if report.errors_omitted:
        print(f"  and {report.errors_omitted} more problems: see the crawl log {report.log}")


def _output(path: Path | None) -> IO[bytes]:
    if path is None:
        return sys.stdout.buffer
    try:
        return path.open("wb")
    except OSError as exc:
        raise BadInput(f"{path}: cannot write: {exc.strerror}") from exc


def _json(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False, default=str)


def _print_json(data: Any) -> None:
    print(_json(data))


if __name__ == "__main__":
    sys.exit(main())
