"""Who runs jobs: threads of the scheduler's process (local), or Celery workers."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol


class Dispatcher(Protocol):
    """Hands job IDs to whatever runs :func:`preserve.schedule.run_job`."""

    @property
    def free(self) -> int:
        """How many more jobs it takes now."""

    def dispatch(self, job_ids: Iterable[str]) -> None: ...

    def shutdown(self) -> None:
        """Stop taking jobs; wait for those that run in this process."""
