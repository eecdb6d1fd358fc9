"""The scheduling commands end to end: policies check, schedule run-due, jobs, the scheduler
loop on local threads, and a scheduler killed in the middle of a capture."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import (
    assert_nothing_catalogued,
    catalogued_urls,
    page,
    wait_until,
    write_policy,
)

from preserve.catalog import open_engine
from preserve.config import load_settings
from preserve.demo import LoopbackSite, Route
from preserve.schedule import LEASE, Job, Tick, get_job, list_jobs, requeue_abandoned, run_job
from preserve.workers.local import LocalWorkers, run_scheduler


@pytest.fixture
def web() -> Iterator[LoopbackSite]:
    routes = {"/a/1": Route(page(1, ["/a/2"])), "/a/2": Route(page(2, ["/a/3"])),
              "/a/3": Route(page(3, ["/a/4"])), "/a/4": Route(page(4, [])),
              "/robots.txt": Route(b"User-agent: *\nAllow: /\n", "text/plain")}
    with LoopbackSite(routes) as site:
        yield site


def test_policies_check_lists_every_problem_with_its_line(run: Any, policies: Path) -> None:
    (policies / "good.yaml").write_text("collection: good\n")
    bad = policies / "bad.yaml"
    bad.write_text("collection: bad\ntargets:\n  - url: https://x.test/\n    schedule: soon\n"
                   "preservation:\n  copies: [tape]\n  fixity_sample: 3\n")

    result = run("policies", "check")

    assert result.status == 1
    assert result.text.splitlines() == [
        f"{bad}:4: targets[0].schedule: must be a cron expression or an interval, such as "
        "'0 6 * * *' (cron) or 'every 6h' (interval), not 'soon'",
        f"{bad}:6: preservation.copies: no storage location is named 'tape' (locations: local)",
        f"{bad}:7: preservation.fixity_sample: must be between 0 and 1, not 3",
        "policies: 2 files, 3 problems"]
    good = run("policies", "check", policies / "good.yaml", "--json")
    assert good.status == 0
    assert json.loads(good.out) == {"files": [{"path": str(policies / "good.yaml"),
                                               "problems": []}], "problems": 0}
    missing = run("policies", "check", policies / "absent.yaml")
    assert missing.status == 1 and "cannot read policy" in missing.text


def test_run_due_captures_what_is_due_and_the_capture_can_be_retrieved(
        run: Any, web: LoopbackSite, policies: Path) -> None:
    write_policy(policies, web)

    first = run("schedule", "run-due", "--json")
    again = run("schedule", "run-due", "--json")

    assert first.status == 0, first.err
    report = json.loads(first.out)
    ran = {job["kind"]: job for job in report["jobs"]}
    assert len(report["created"]) == 2 and set(ran) == {"capture", "fixity"}
    assert ran["capture"]["state"] == "succeeded"
    assert ran["capture"]["result"]["pages"] == 4
    assert ran["fixity"]["result"]["passed"] is True
    assert json.loads(again.out)["created"] == [] and json.loads(again.out)["jobs"] == []
    got = run("get", web.url("/a/3"), "--text")
    assert got.status == 0 and "Words of the page." in got.text
    listed = run("jobs")
    assert listed.status == 0
    assert [line.split()[1:3] for line in listed.text.splitlines()] == [
        ["succeeded", "capture"], ["succeeded", "fixity"]]


def test_run_due_at_another_time(run: Any, web: LoopbackSite, policies: Path) -> None:
    write_policy(policies, web, schedule="0 6 * * *")

    result = run("schedule", "run-due", "--now", "2026-12-24T07:30:00Z", "--json")

    capture = next(job for job in json.loads(result.out)["jobs"] if job["kind"] == "capture")
    assert capture["scheduled_for"] == "2026-12-24T06:00:00+00:00"


def test_a_failing_run_is_reported_and_queued_again(run: Any, policies: Path) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    (policies / "site.yaml").write_text(
        f"collection: site\ntargets:\n  - url: http://127.0.0.1:{port}/\n"
        "    schedule: every 1h\ncapture:\n  delay_seconds: 0\n")

    result = run("schedule", "run-due")

    assert result.status == 1
    (line,) = [line for line in result.text.splitlines() if "capture" in line]
    assert "  queued  " in line and "(attempt 1)" in line
    assert line.endswith(f"http://127.0.0.1:{port}/: connection refused")


def test_jobs_cancel(run: Any, policies: Path, home: Path) -> None:
    from preserve.schedule import Run, create_jobs
    engine = open_engine(load_settings().database_url)
    (job_id,) = create_jobs(engine, [Run("capture", "site", "https://x.test/",
                                         datetime.now(UTC))], datetime.now(UTC))
    engine.dispose()

    cancelled = run("jobs", "cancel", job_id)
    twice = run("jobs", "cancel", job_id)
    unknown = run("jobs", "cancel", "0" * 32)

    assert cancelled.status == 0 and cancelled.text == f"job {job_id}: cancelled\n"
    assert twice.status == 2 and twice.err == (
        f"preserve: error: job {job_id} is cancelled: only a queued job can be cancelled\n")
    assert unknown.status == 2 and "no such job" in unknown.err
    assert run("jobs", "--state", "cancelled").text.split()[0] == job_id
    assert run("jobs", "--state", "failed").text == "jobs: none failed\n"


def test_the_scheduler_loop_runs_due_jobs_on_local_threads(web: LoopbackSite,
                                                           policies: Path) -> None:
    write_policy(policies, web, schedule="every 1m")
    settings = load_settings()
    engine = open_engine(settings.database_url)
    finished: list[Job] = []
    ticks: list[Tick] = []
    workers = LocalWorkers(settings, engine, threads=2, finished=finished.append)
    stop = threading.Event()
    loop = threading.Thread(target=run_scheduler,
                            args=(settings, engine, workers, stop, 0.05, ticks.append))
    loop.start()
    wait_until(lambda: {job.kind for job in finished} >= {"capture", "fixity"}, 30)
    stop.set()
    loop.join()
    workers.shutdown()

    # A minute may turn while it runs: then the next minute's capture is due too.
    captures = [job for job in finished if job.kind == "capture"]
    assert {(job.kind, job.state) for job in finished} == {
        ("capture", "succeeded"), ("fixity", "succeeded")}
    assert len(captures) in (1, 2) and len(finished) == len(captures) + 1
    assert len(ticks) > 1 and sum(len(t.created) for t in ticks) in (2, 3)
    engine.dispose()


def test_a_scheduler_killed_mid_capture_leaves_no_half_capture_and_the_job_is_retried(
        web: LoopbackSite, policies: Path, home: Path) -> None:
    web.routes["/a/3"] = Route(page(3, ["/a/4"]), delay_seconds=30)
    write_policy(policies, web)
    scheduler = subprocess.Popen(
        [str(Path(sys.executable).parent / "preserve"), "scheduler", "--every", "0.2"],
        env=os.environ.copy(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_until(lambda: "/a/3" in web.requests, 30)
    assert "/a/3" in web.requests, "the scheduled capture never reached the slow page"
    scheduler.send_signal(signal.SIGKILL)
    scheduler.wait(timeout=10)

    settings = load_settings()
    engine = open_engine(settings.database_url)
    (job,) = [job for job in list_jobs(engine) if job.kind == "capture"]
    assert job.state == "running" and job.attempts == 1
    assert_nothing_catalogued(engine, home)

    # Another runner finds the job silent once its lease is over, and does it.
    web.routes["/a/3"] = Route(page(3, ["/a/4"]))
    later = datetime.now(UTC) + LEASE + timedelta(seconds=1)
    assert job.id in requeue_abandoned(engine, later)  # (with the audit, if it was running)
    done = run_job(job.id, settings, engine, now=lambda: later)

    assert (done.state, done.attempts) == ("succeeded", 2), done.error
    assert done.result and done.result["pages"] == 4
    assert get_job(engine, job.id) == done
    assert {web.url(f"/a/{n}") for n in range(1, 5)} <= catalogued_urls(engine, home)
    engine.dispose()


def test_a_worker_needs_the_celery_backend(run: Any) -> None:
    result = run("worker")

    assert result.status == 2
    assert result.err == ("preserve: error: worker: workers.backend is local, so jobs run in "
                          "the scheduler; set workers.backend: celery (or "
                          "PRESERVE_WORKERS_BACKEND=celery)\n")


def test_the_scheduler_loop_goes_on_after_a_failed_look(policies: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import preserve.workers.local as local
    settings = load_settings()
    engine = open_engine(settings.database_url)
    looks: list[int] = []
    trouble: list[str] = []

    def failing(*_args: Any) -> Tick:
        looks.append(1)
        raise OSError("the catalog's disk went away")

    monkeypatch.setattr(local, "tick", failing)
    stop = threading.Event()
    loop = threading.Thread(target=run_scheduler, args=(
        settings, engine, LocalWorkers(settings, engine, threads=1), stop, 0.01,
        lambda passed: None, trouble.append))
    loop.start()
    wait_until(lambda: len(looks) >= 3, 10, step=0.01)
    stop.set()
    loop.join()
    engine.dispose()

    assert len(looks) >= 3 and loop.is_alive() is False
    assert trouble[0] == ("this look failed, the next is in 0.01 s: OSError: the catalog's "
                          "disk went away")
