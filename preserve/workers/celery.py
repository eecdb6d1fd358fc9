"""Distributed workers: the same job function, run as a Celery task.

``preserve worker`` runs a Celery worker on the settings' broker (Redis, or
RabbitMQ through an ``amqp://`` URL) and queue; schedulers with
``workers.backend: celery`` send each job's ID there once (noted in the job's
``dispatched_at``). The task only calls :func:`preserve.schedule.run_job`, which
claims the job, so a message delivered twice does the work once. Attempts and
retries are the job's own, never Celery's: a failed job is queued again in the
catalog and sent again when its time comes.

The catalog, not the broker, keeps a job safe. A message is acknowledged as its
task starts (Celery's default): holding it unacknowledged for a crawl of hours
would meet RabbitMQ's consumer timeout (30 minutes by default, after which it
closes the worker's channel) and Redis's visibility timeout (an hour, after
which it hands the message out again). A worker that dies mid-job leaves the
job ``running`` with a heartbeat that stops; a scheduler queues it again after
:data:`preserve.schedule.LEASE` and sends it to another worker.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import Engine

from preserve.catalog import open_engine
from preserve.config import Settings, load_settings
from preserve.errors import ConfigError, PreserveError
from preserve.schedule import Tick, mark_dispatched, run_job, runnable, tick, unmark_dispatched

TASK = "preserve.run_job"


class BrokerError(PreserveError):
    """The broker did not take a job (it is down, or refuses us)."""
# However many the broker holds, a scheduler hands out at most this many a look.
DISPATCH_BATCH = 1000


def celery_app(settings: Settings) -> Any:
    """The Celery application on the settings' broker, with the job task registered."""
    try:
        from celery import Celery  # type: ignore[import-untyped]
    except ImportError as exc:
        raise ConfigError("workers.backend is celery, but Celery is not installed "
                          "(pip install 'preserve[workers]')") from exc
    app = Celery("preserve", broker=settings.workers.broker_url, set_as_current=False)
    app.conf.update(
        task_default_queue=settings.workers.queue,
        task_ignore_result=True,
        worker_prefetch_multiplier=1,  # one job at a time per thread: the others stay free
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
    )
    app.task(name=TASK, ignore_result=True)(_run_job_task)
    return app


def _run_job_task(job_id: str) -> str:
    """In a worker: do the job (if nobody else has); its state as it ended."""
    settings = load_settings()
    return run_job(job_id, settings, _engine(settings.database_url)).state


@lru_cache(maxsize=4)
def _engine(url: str) -> Engine:
    """One engine per catalog for the worker's whole life (its threads share it)."""
    return open_engine(url)


class CeleryDispatch:
    """A scheduler's way of handing out jobs: each one sent to the broker once."""

    def __init__(self, settings: Settings, engine: Engine) -> None:
        self.engine = engine
        self.app = celery_app(settings)
        self.queue = settings.workers.queue
        self.broker = settings.workers.broker_url
        self.sent: list[str] = []

    @property
    def free(self) -> int:
        return DISPATCH_BATCH

    def dispatch(self, job_ids: Iterable[str]) -> None:
        for job_id in job_ids:
            if not mark_dispatched(self.engine, job_id, datetime.now(UTC)):
                continue
            try:
                self.app.send_task(TASK, args=[job_id], queue=self.queue)
            except Exception as exc:  # the broker unreachable: the next look sends it
                unmark_dispatched(self.engine, job_id)
                raise BrokerError(f"job {job_id} could not be sent to the broker at "
                                  f"{self.broker}: {' '.join(str(exc).split())}") from exc
            self.sent.append(job_id)

    def shutdown(self) -> None:
        """Jobs sent stay with the broker for the workers: nothing to wait for here."""


def send_due(settings: Settings, engine: Engine, at: datetime | None = None,
             ) -> tuple[Tick, list[str]]:
    """One :func:`tick`, then every job whose time has come sent to the workers."""
    passed = tick(settings, engine, at)
    sender = CeleryDispatch(settings, engine)
    sender.dispatch(runnable(engine, datetime.now(UTC)))
    return passed, sender.sent


def run_worker(settings: Settings) -> None:
    """Run a Celery worker on the settings' queue until it is stopped (SIGTERM: warm shutdown)."""
    app = celery_app(settings)
    app.worker_main(["worker", "--loglevel=INFO", "--pool=threads",
                     f"--concurrency={settings.workers.threads}",
                     f"--queues={settings.workers.queue}", "--hostname=preserve@%h",
                     "--without-gossip", "--without-mingle"])
