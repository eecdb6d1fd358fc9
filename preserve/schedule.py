"""Scheduling: which runs are due, one job per run, and running jobs.

A run is one target of a policy (a capture), or one collection's audit (fixity),
at one scheduled time. Its job row is created once however many schedulers ask:
the catalog holds (kind, policy, target, scheduled time) unique, and a second
insert of the same run does nothing. A job is claimed by one runner at a time
(``queued`` to ``running`` in one conditional update), keeps a heartbeat while
it runs, and ends ``succeeded`` or, after its last attempt, ``failed``. A
runner that dies leaves a heartbeat that stops: after :data:`LEASE` the job is
queued again, to be retried by whoever is running.

The work itself is :func:`run_job`, the same whether a local thread or a
distributed worker calls it; only the dispatch differs.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from croniter import croniter
from sqlalchemy import Engine, and_, or_, select, update

from preserve import ledger
from preserve.catalog import write_transaction
from preserve.catalog.schema import jobs
from preserve.config import Settings
from preserve.errors import BadInput, NotFound, PreserveError
from preserve.fixity import run_fixity
from preserve.jobs import CaptureOverrides, capture_settings, run_capture
from preserve.policy import (
    Policy,
    PolicyProblem,
    Schedule,
    check_policy,
    parse_schedule,
    policy_files,
)
from preserve.storage import open_stores

STATES = ("queued", "running", "succeeded", "failed", "cancelled")
# A slot that came due longer ago than this is "missed" (see missed_runs: skip).
GRACE = timedelta(minutes=15)
# A running job whose heartbeat is older than this has lost its runner.
LEASE = timedelta(minutes=5)
HEARTBEAT_SECONDS = 30.0
MAX_ATTEMPTS = 3
RETRY_DELAYS = (timedelta(minutes=1), timedelta(minutes=10))  # before attempts 2 and 3
# A job sent to distributed workers and still queued this long after is sent again
# (the message may have been lost with a broker that keeps none).
REDISPATCH = timedelta(minutes=30)
DAY = 86400


@dataclass(frozen=True)
class Run:
    """One scheduled run: what (a capture of a target URL, or a collection's audit) and when."""

    kind: str
    policy: str
    target: str
    scheduled_for: datetime


@dataclass(frozen=True)
class Job:
    """A run's record: its state, attempts, and what came of it."""

    id: str
    kind: str
    policy: str
    target: str
    scheduled_for: datetime
    state: str
    attempts: int
    error: str | None
    params: dict[str, Any] | None
    result: dict[str, Any] | None
    worker: str | None
    created_at: datetime
    not_before: datetime
    dispatched_at: datetime | None
    started_at: datetime | None
    heartbeat_at: datetime | None
    finished_at: datetime | None

    def as_dict(self) -> dict[str, Any]:
        return {name: (value.isoformat() if isinstance(value, datetime) else value)
                for name, value in self.__dict__.items()}


def latest_time(schedule: Schedule, timezone: str, now: datetime) -> datetime:
    """The schedule's latest time at or before now, in UTC.

    Cron times are read in the target's time zone. Interval times are whole
    multiples of the interval since the Unix epoch, so that every scheduler
    computes the same ones.
    """
    if schedule.interval_seconds:
        step = schedule.interval_seconds
        return datetime.fromtimestamp(int(now.timestamp()) // step * step, UTC)
    assert schedule.cron is not None
    zone = ZoneInfo(timezone)
    # croniter steps back from strictly before its start: start a second on. Stepping
    # back it loses which of a repeated hour's two passes it is in (the night clocks go
    # back), so the answer is found going forward from a little before that time: every
    # instant the expression matches in local time, the repeated hour's twice.
    start = now.astimezone(zone).replace(microsecond=0) + timedelta(seconds=1)
    latest: datetime = croniter(schedule.cron, start).get_prev(datetime)
    forward = croniter(schedule.cron, (latest.astimezone(UTC) - timedelta(hours=3))
                       .astimezone(zone))
    while (following := forward.get_next(datetime)).astimezone(UTC) <= now:
        latest = following
    return latest.astimezone(UTC)


def fixity_interval(policy: Policy) -> Schedule:
    """How often a policy's collection is audited: each audit checks ``fixity_sample`` of it
    (and every overdue object), so ``fixity_every_days`` × ``fixity_sample`` days apart, at
    least a day."""
    days = policy.preservation.fixity_every_days * policy.preservation.fixity_sample
    return Schedule(interval_seconds=max(DAY, int(days * DAY)))


def due_runs(policies: Iterable[Policy], now: datetime) -> list[Run]:
    """The runs due at ``now``: each scheduled target's latest time, and each collection's audit.

    After downtime only the latest missed time is due (``missed_runs: once``),
    or none that came more than :data:`GRACE` ago (``skip``). A collection that
    several policies fill is audited at the shortest interval they ask for.
    """
    runs: list[Run] = []
    audits: dict[str, tuple[int, str]] = {}
    for policy in sorted(policies, key=lambda p: p.name):
        for target in policy.targets:
            if target.schedule is None:
                continue
            at = latest_time(parse_schedule(target.schedule), target.timezone, now)
            if target.missed_runs == "skip" and now - at > GRACE:
                continue
            runs.append(Run("capture", policy.name, target.url, at))
        seconds = fixity_interval(policy).interval_seconds or DAY
        if policy.collection not in audits or seconds < audits[policy.collection][0]:
            audits[policy.collection] = (seconds, policy.name)
    for collection, (seconds, name) in sorted(audits.items()):
        at = latest_time(Schedule(interval_seconds=seconds), "UTC", now)
        runs.append(Run("fixity", name, collection, at))
    return runs


def read_policies(settings: Settings) -> tuple[list[Policy], list[PolicyProblem]]:
    """The policies in the settings' folder that are sound, and the problems of the others."""
    policies, problems = [], []
    locations = list(settings.locations)
    for path in policy_files(settings.policies_dir):
        policy, found = check_policy(path, locations)
        problems.extend(found)
        if policy is not None:
            policies.append(policy)
    return policies, problems


@dataclass(frozen=True)
class PoliciesAsk:
    """What the sound policies ask of their collections' files, read once for a command."""

    default_copies: tuple[str, ...]  # storage.default_copies
    copies: dict[str, tuple[str, ...]]  # collection -> the locations of its copies
    every_days: dict[str, int]  # collection -> fixity_every_days (the shortest asked)

    @property
    def collections(self) -> frozenset[str]:
        """The collections the policies fill."""
        return frozenset(self.copies)

    def copies_of(self, collection: str) -> tuple[str, ...]:
        """The locations a collection's files are to have a copy in now (each of its
        policies' ``preservation.copies``, else ``storage.default_copies``). Fixity finds
        a file short of one under-replicated, and a repair makes it (a location added is
        filled so)."""
        return self.copies.get(collection, self.default_copies)


def policies_ask(settings: Settings) -> PoliciesAsk:
    """:class:`PoliciesAsk` of the sound policies (``policies check`` names the others)."""
    copies: dict[str, set[str]] = {}
    days: dict[str, int] = {}
    for policy in read_policies(settings)[0]:
        copies.setdefault(policy.collection, set()).update(
            policy.preservation.copies or settings.default_copies)
        asked = policy.preservation.fixity_every_days
        days[policy.collection] = min(asked, days.get(policy.collection, asked))
    return PoliciesAsk(tuple(sorted(settings.default_copies)),
                       {name: tuple(sorted(names)) for name, names in copies.items()}, days)


@dataclass(frozen=True)
class Tick:
    """What one pass of a scheduler did."""

    created: list[str]  # jobs for runs that came due
    requeued: list[str]  # running jobs whose runner stopped answering
    problems: list[PolicyProblem]  # in policy files left out until they are fixed


def tick(settings: Settings, engine: Engine, at: datetime | None = None,
         now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> Tick:
    """One pass: jobs for the runs due ``at`` (default now), abandoned jobs queued again.

    A policy file with problems is left out (and reported); the others are scheduled.
    """
    moment = now()
    policies, problems = read_policies(settings)
    created = create_jobs(engine, due_runs(policies, at or moment), moment)
    return Tick(created, requeue_abandoned(engine, moment), problems)


def run_due(settings: Settings, engine: Engine, at: datetime | None = None,
            ) -> tuple[Tick, list[Job]]:
    """One :func:`tick`, then every job whose time has come run here, one after another."""
    passed = tick(settings, engine, at)
    return passed, [run_job(job_id, settings, engine)
                    for job_id in runnable(engine, datetime.now(UTC))]


def create_jobs(engine: Engine, runs: Sequence[Run], now: datetime) -> list[str]:
    """A queued job for every run that has none yet; the IDs of those created.

    Two schedulers asking at once create each job once: the second insert of
    a run meets the unique key and does nothing.
    """
    # The dialects' inserts (ON CONFLICT DO NOTHING) are imported here: PostgreSQL's
    # brings asyncio with it, 35 ms that every command paid at start.
    insert: Callable[..., Any]
    if engine.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as postgresql_insert
        insert = postgresql_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert
        insert = sqlite_insert
    created = []
    with write_transaction(engine) as connection:
        for run in runs:
            job_id = uuid.uuid4().hex
            inserted = connection.execute(insert(jobs).values(
                id=job_id, kind=run.kind, policy=run.policy, target=run.target,
                scheduled_for=run.scheduled_for, state="queued", attempts=0,
                created_at=now, not_before=now).on_conflict_do_nothing()
                .returning(jobs.c.id)).first()
            if inserted is not None:
                created.append(job_id)
    return created


AD_HOC = ""  # the policy of a capture asked for now, not scheduled
CAPTURE_PARAMS = ("collection", "scope", "depth", "max_pages")


def create_capture_job(engine: Engine, url: str, params: dict[str, Any], now: datetime) -> str:
    """A job for one capture asked for now (the HTTP API's), outside any policy.

    ``params``: ``collection`` (required), and the crawl's ``scope``, ``depth``
    and ``max_pages``, as ``preserve capture`` takes them.
    """
    unknown = sorted(set(params) - set(CAPTURE_PARAMS))
    if unknown:
        raise BadInput(f"capture: unknown field {unknown[0]} (known: url, "
                       f"{', '.join(CAPTURE_PARAMS)})")
    job_id = uuid.uuid4().hex
    with write_transaction(engine) as connection:
        connection.execute(jobs.insert().values(
            id=job_id, kind="capture", policy=AD_HOC, target=url, scheduled_for=now,
            state="queued", attempts=0, params=json.dumps(params), created_at=now,
            not_before=now))
    return job_id


def requeue_abandoned(engine: Engine, now: datetime) -> list[str]:
    """Queue again the running jobs whose runner stopped answering; the IDs of those.

    A job out of attempts fails instead.
    """
    stale = and_(jobs.c.state == "running", jobs.c.heartbeat_at < now - LEASE)
    message = "its runner stopped answering (killed, or its machine went down)"
    with write_transaction(engine) as connection:
        # Each update says which rows it changed: a scheduler racing this one finds
        # them changed already, and reports none of them.
        connection.execute(update(jobs).where(stale, jobs.c.attempts >= MAX_ATTEMPTS)
                           .values(state="failed", error=message, finished_at=now))
        return list(connection.execute(
            update(jobs).where(stale, jobs.c.attempts < MAX_ATTEMPTS)
            .values(state="queued", error=message, worker=None, dispatched_at=None)
            .returning(jobs.c.id)).scalars())


def runnable(engine: Engine, now: datetime, limit: int | None = None) -> list[str]:
    """Queued jobs whose time has come, oldest scheduled first."""
    query = (select(jobs.c.id).where(jobs.c.state == "queued", jobs.c.not_before <= now)
             .order_by(jobs.c.scheduled_for, jobs.c.created_at).limit(limit))
    with engine.connect() as connection:
        return list(connection.execute(query).scalars())


def mark_dispatched(engine: Engine, job_id: str, now: datetime) -> bool:
    """Note that a queued job is being sent to the distributed workers; False if it was
    sent already (less than :data:`REDISPATCH` ago) or is no longer queued."""
    with write_transaction(engine) as connection:
        return connection.execute(
            update(jobs).where(jobs.c.id == job_id, jobs.c.state == "queued",
                               or_(jobs.c.dispatched_at.is_(None),
                                   jobs.c.dispatched_at < now - REDISPATCH))
            .values(dispatched_at=now)).rowcount == 1


def unmark_dispatched(engine: Engine, job_id: str) -> None:
    """Forget that a job was being sent (the broker did not take it): the next look sends it."""
    with write_transaction(engine) as connection:
        connection.execute(update(jobs).where(jobs.c.id == job_id, jobs.c.state == "queued")
                           .values(dispatched_at=None))


def get_job(engine: Engine, job_id: str) -> Job:
    """One job; :class:`NotFound` names an unknown ID."""
    with engine.connect() as connection:
        row = connection.execute(select(jobs).where(jobs.c.id == job_id)).first()
    if row is None:
        raise NotFound(f"job {job_id}: no such job (preserve jobs lists them)")
    return _job(row._mapping)


def list_jobs(engine: Engine, state: str | None = None, limit: int = 100) -> list[Job]:
    """The newest jobs first, of one state or all."""
    if state is not None and state not in STATES:
        raise BadInput(f"jobs: state {state!r} is not one of {', '.join(STATES)}")
    query = select(jobs).order_by(jobs.c.scheduled_for.desc(), jobs.c.created_at.desc())
    if state is not None:
        query = query.where(jobs.c.state == state)
    with engine.connect() as connection:
        return [_job(row._mapping) for row in connection.execute(query.limit(limit))]


def cancel_job(engine: Engine, job_id: str, now: datetime) -> Job:
    """Cancel a queued job. A job already running, or ended, is :class:`BadInput`."""
    with write_transaction(engine) as connection:
        done = connection.execute(update(jobs).where(jobs.c.id == job_id,
                                                     jobs.c.state == "queued")
                                  .values(state="cancelled", finished_at=now))
    job = get_job(engine, job_id)
    if done.rowcount != 1:
        raise BadInput(f"job {job_id} is {job.state}: only a queued job can be cancelled")
    return job


def worker_name() -> str:
    """Who runs a job: host, process and thread, as ``preserve jobs`` shows it."""
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


JobWork = Callable[[Job, Policy | None, Settings, Engine], dict[str, Any]]


def run_job(job_id: str, settings: Settings, engine: Engine,
            now: Callable[[], datetime] = lambda: datetime.now(UTC),
            work: JobWork | None = None) -> Job:
    """Claim a queued job and do it; the job as it ended (or as it was, if it was not ours).

    The job's policy is read again from the policies folder, so that a run
    does what the policy says now. A failure is retried (up to
    :data:`MAX_ATTEMPTS` attempts, later each time) unless nothing can change
    it: a policy or target that no longer exists.
    """
    started = now()
    with write_transaction(engine) as connection:
        claimed = connection.execute(
            update(jobs).where(jobs.c.id == job_id, jobs.c.state == "queued",
                               jobs.c.not_before <= started)
            .values(state="running", attempts=jobs.c.attempts + 1, worker=worker_name(),
                    started_at=started, heartbeat_at=started, error=None)).rowcount
    job = get_job(engine, job_id)
    if claimed != 1:
        return job
    stop = threading.Event()
    beating = threading.Thread(target=_heartbeat, args=(engine, job_id, job.worker, stop, now),
                               daemon=True, name=f"heartbeat-{job_id[:8]}")
    beating.start()
    retry = True
    error: str | None = None
    try:
        policy = None if job.policy == AD_HOC else _policy_of(job, settings)
        result = (work or _do)(job, policy, settings, engine)
    except _Permanent as exc:
        retry = False
        error = str(exc)
    except PreserveError as exc:
        error = " ".join(str(exc).split())
    except Exception as exc:  # a job's failure is recorded, never lost with the runner
        error = f"{type(exc).__name__}: {' '.join(str(exc).split())}"
    finally:
        stop.set()
        beating.join()
    ended = now()
    if error is None:
        values: dict[str, Any] = {"state": "succeeded", "result": json.dumps(result),
                                  "finished_at": ended}
    elif retry and job.attempts < MAX_ATTEMPTS:
        values = {"state": "queued", "error": error, "worker": None, "dispatched_at": None,
                  "not_before": ended + RETRY_DELAYS[min(job.attempts, len(RETRY_DELAYS)) - 1]}
    else:
        values = {"state": "failed", "error": error, "finished_at": ended}
    with write_transaction(engine) as connection:
        connection.execute(update(jobs).where(jobs.c.id == job_id, jobs.c.state == "running",
                                              jobs.c.worker == job.worker).values(**values))
    return get_job(engine, job_id)


class _Permanent(PreserveError):
    """A job that no retry can help."""


def _policy_of(job: Job, settings: Settings) -> Policy:
    path = settings.policies_dir / f"{job.policy}.yaml"
    if not path.is_file():
        raise _Permanent(f"policy {job.policy} is no longer in {settings.policies_dir}")
    policy, problems = check_policy(path, list(settings.locations))
    if policy is None:
        raise _Permanent(f"policy {job.policy} has problems now: {problems[0]}")
    if job.kind == "capture":
        targets = [target for target in policy.targets if target.url == job.target]
        if not targets:
            raise _Permanent(f"policy {job.policy} no longer has the target {job.target}")
        return replace(policy, targets=tuple(targets))
    if policy.collection != job.target:
        raise _Permanent(f"policy {job.policy} no longer fills collection {job.target}")
    return policy


def _do(job: Job, policy: Policy | None, settings: Settings, engine: Engine,
        ) -> dict[str, Any]:
    """The work of a job: the capture of its target, or the audit of its collection."""
    if job.kind == "capture":
        if policy is None:  # ad hoc: what was asked, as `preserve capture URL` does it
            params = job.params or {}
            report = run_capture([job.target], settings=settings, engine=engine,
                                 collection=params.get("collection"),
                                 overrides=CaptureOverrides(scope=params.get("scope"),
                                                            depth=params.get("depth"),
                                                            max_pages=params.get("max_pages")))
        else:
            report = run_capture([], settings=capture_settings(settings, policy),
                                 engine=engine, policy=policy)
        return {"capture": report.job, "pages": report.pages, "records": report.records,
                "revisits": report.revisits, "bytes": report.bytes,
                "warcs": [warc["key"] for warc in report.warcs],
                "missing": sorted({name for warc in report.warcs for name in warc["missing"]}),
                "errors": len(report.errors) + report.errors_omitted}
    assert policy is not None, "an audit is always a policy's"
    stores = open_stores(settings.locations)
    audit = run_fixity(engine, stores, collection=job.target,
                       sample=policy.preservation.fixity_sample,
                       every_days=policy.preservation.fixity_every_days,
                       actor=f"scheduler ({settings.operator})",
                       copies_asked=policies_ask(settings).copies_of)
    newest, checkpointed = ledger.checkpoint(engine, stores, audit.out_of_reach)
    return {"objects": audit.objects, "copies": audit.copies, "bytes": audit.bytes,
            "findings": len(audit.findings), "passed": audit.passed,
            "ledger_checkpoint": newest.seq if newest else None, "checkpointed": checkpointed}


def _heartbeat(engine: Engine, job_id: str, worker: str | None, stop: threading.Event,
               now: Callable[[], datetime]) -> None:
    while not stop.wait(HEARTBEAT_SECONDS):
        try:
            with write_transaction(engine) as connection:
                connection.execute(update(jobs).where(jobs.c.id == job_id,
                                                      jobs.c.state == "running",
                                                      jobs.c.worker == worker)
                                   .values(heartbeat_at=now()))
        except Exception:
            continue


def _job(row: Any) -> Job:
    values = dict(row)
    for name in ("params", "result"):
        values[name] = json.loads(values[name]) if values[name] else None
    return Job(**values)

