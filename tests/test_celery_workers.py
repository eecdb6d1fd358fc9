"""Distributed workers: a real `preserve worker` process (Celery) on the machine's Redis and
on its RabbitMQ, with the catalog on the real PostgreSQL, runs scheduled captures; a worker
killed midway leaves no half capture, and another worker does the job again."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
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
from sqlalchemy import Engine

from preserve.catalog import open_engine
from preserve.config import load_settings
from preserve.demo import LoopbackSite, Route
from preserve.schedule import LEASE, Job, get_job, list_jobs, requeue_abandoned, runnable
from preserve.workers.celery import CeleryDispatch

pytestmark = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)


@pytest.fixture
def web() -> Iterator[LoopbackSite]:
    routes = {f"/a/{n}": Route(page(n, [f"/a/{n + 1}"] if n < 4 else [])) for n in range(1, 5)}
    with LoopbackSite(routes) as site:
        yield site


@pytest.fixture
def start_worker() -> Iterator[Callable[[], subprocess.Popen[bytes]]]:
    """Start `preserve worker` processes (each in its own process group); all stopped after."""
    started: list[subprocess.Popen[bytes]] = []

    def start() -> subprocess.Popen[bytes]:
        worker = subprocess.Popen(
            [str(Path(sys.executable).parent / "preserve"), "worker"], env=os.environ.copy(),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=30)


def wait_for(engine: Engine, job_id: str, states: tuple[str, ...], seconds: float = 90) -> Job:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        job = get_job(engine, job_id)
        if job.state in states:
            return job
        time.sleep(0.1)
    job = get_job(engine, job_id)
    raise AssertionError(f"job {job_id} is still {job.state} (error: {job.error})")


def test_a_worker_runs_a_scheduled_capture_and_it_can_be_retrieved(
        run: Any, web: LoopbackSite, policies: Path, broker: str, database_url: str,
        start_worker: Callable[[], subprocess.Popen[bytes]]) -> None:
    write_policy(policies, web)
    start_worker()

    sent = run("schedule", "run-due", "--json")
    again = run("schedule", "run-due", "--json")

    assert sent.status == 0, sent.err
    report = json.loads(sent.out)
    assert len(report["created"]) == 2 and sorted(report["sent"]) == sorted(report["created"])
    assert json.loads(again.out)["sent"] == []  # sent once, not at every look
    engine = open_engine(database_url)
    done = [wait_for(engine, job_id, ("succeeded", "failed")) for job_id in report["sent"]]
    assert {(job.kind, job.state) for job in done} == {("capture", "succeeded"),
                                                       ("fixity", "succeeded")}
    capture = next(job for job in done if job.kind == "capture")
    assert capture.result and capture.result["pages"] == 4
    assert capture.worker and capture.worker.split(":")[1] != str(os.getpid())
    engine.dispose()
    got = run("get", web.url("/a/4"), "--text")
    assert got.status == 0 and "Words of the page." in got.text


def test_a_worker_killed_mid_capture_and_another_worker_does_the_job(
        web: LoopbackSite, policies: Path, home: Path, broker: str, database_url: str,
        start_worker: Callable[[], subprocess.Popen[bytes]]) -> None:
    web.routes["/a/3"] = Route(page(3, ["/a/4"]), delay_seconds=60)
    write_policy(policies, web)
    settings = load_settings()
    engine = open_engine(database_url)
    first = start_worker()
    from preserve.schedule import tick
    sender = CeleryDispatch(settings, engine)
    tick(settings, engine)
    sender.dispatch(runnable(engine, datetime.now(UTC)))
    (job,) = [job for job in list_jobs(engine) if job.kind == "capture"]
    wait_until(lambda: "/a/3" in web.requests, 60)
    assert "/a/3" in web.requests, "the worker never reached the slow page"
    os.killpg(first.pid, signal.SIGKILL)
    first.wait(timeout=30)

    job = get_job(engine, job.id)
    assert (job.state, job.attempts) == ("running", 1)
    assert_nothing_catalogued(engine, home)  # nothing of the killed attempt

    web.routes["/a/3"] = Route(page(3, ["/a/4"]))
    start_worker()
    # Its heartbeat has stopped: once the lease is over, a scheduler queues it again.
    # (The collection's audit may have been running on the killed worker too.)
    assert job.id in requeue_abandoned(engine, datetime.now(UTC) + LEASE + timedelta(seconds=1))
    sender.dispatch(runnable(engine, datetime.now(UTC)))
    done = wait_for(engine, job.id, ("succeeded", "failed"))

    assert (done.state, done.attempts) == ("succeeded", 2), done.error
    assert done.worker != job.worker
    assert {web.url(f"/a/{n}") for n in range(1, 5)} <= catalogued_urls(engine, home)
    engine.dispose()
