"""The embedded default: jobs run on threads of the scheduler's own process.

The scheduler loop is the same for every kind of worker; a dispatcher only
hands job IDs to whatever runs :func:`preserve.schedule.run_job`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from sqlalchemy import Engine

from preserve.config import Settings
from preserve.schedule import Job, Tick, run_job, runnable, tick
from preserve.workers import Dispatcher


class LocalWorkers:
    """Runs jobs on a few threads; each job is handed over once while it runs here."""

    def __init__(self, settings: Settings, engine: Engine, threads: int,
                 finished: Callable[[Job], None] | None = None,
                 trouble: Callable[[str], None] | None = None) -> None:
        self.settings = settings
        self.engine = engine
        self.threads = threads
        self.finished = finished or (lambda job: None)
        self.trouble = trouble or (lambda line: None)
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="job")
        self._running: set[str] = set()
        self._lock = threading.Lock()

    @property
    def free(self) -> int:
        with self._lock:
            return self.threads - len(self._running)

    def dispatch(self, job_ids: Iterable[str]) -> None:
        for job_id in job_ids:
            with self._lock:
                if job_id in self._running or len(self._running) >= self.threads:
                    continue
                self._running.add(job_id)
            self._pool.submit(self._run, job_id)

    def _run(self, job_id: str) -> None:
        try:
            job = run_job(job_id, self.settings, self.engine)
        except Exception as exc:  # the catalog unreachable: the job's lease brings it back
            self.trouble(f"job {job_id} could not be run: {' '.join(str(exc).split())}")
            return
        finally:
            with self._lock:
                self._running.discard(job_id)
        self.finished(job)

    def shutdown(self) -> None:
        """Wait for the jobs running here to end."""
        self._pool.shutdown(wait=True)


def run_scheduler(settings: Settings, engine: Engine, workers: Dispatcher,
                  stop: threading.Event, every_seconds: float,
                  report: Callable[[Tick], None],
                  trouble: Callable[[str], None] = lambda line: None) -> None:
    """Until ``stop`` is set: every ``every_seconds``, one :func:`tick`, then hand out jobs.

    A look that fails (the catalog or the broker unreachable for a while) is
    reported through ``trouble`` and tried again at the next: the loop goes on.
    """
    while not stop.is_set():
        try:
            report(tick(settings, engine))
            if workers.free:
                workers.dispatch(runnable(engine, datetime.now(UTC), limit=workers.free))
        except Exception as exc:
            trouble(f"this look failed, the next is in {every_seconds:g} s: "
                    f"{type(exc).__name__}: {' '.join(str(exc).split())}")
        stop.wait(every_seconds)
