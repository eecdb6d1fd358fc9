"""Scheduling: due times on a fixed clock, one job per run, claiming, retries, abandoned jobs."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select, update

from preserve.catalog import open_engine
from preserve.catalog.schema import jobs
from preserve.config import Settings, load_settings
from preserve.errors import BadInput, NotFound
from preserve.policy import Policy, Schedule, Target, load_policy
from preserve.schedule import (
    GRACE,
    LEASE,
    MAX_ATTEMPTS,
    Job,
    Run,
    cancel_job,
    create_jobs,
    due_runs,
    fixity_interval,
    get_job,
    latest_time,
    list_jobs,
    requeue_abandoned,
    run_job,
    runnable,
)

T0 = datetime(2026, 11, 28, 10, 17, 42, tzinfo=UTC)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def policy(*targets: Target, name: str = "news", collection: str = "news",
           every_days: int = 90, sample: float = 1.0) -> Policy:
    from preserve.policy import Preservation
    return Policy(name=name, path=Path(f"{name}.yaml"), collection=collection,
                  targets=targets,
                  preservation=Preservation(fixity_every_days=every_days, fixity_sample=sample))


def captures(runs: list[Run]) -> list[tuple[str, datetime]]:
    return [(run.target, run.scheduled_for) for run in runs if run.kind == "capture"]


# --- due times on a fixed clock ---------------------------------------------------------

@pytest.mark.parametrize(("schedule", "timezone", "now", "expected"), [
    (Schedule(cron="0 6 * * *"), "UTC", "2026-11-28T10:17:42+00:00", "2026-11-28T06:00:00+00:00"),
    (Schedule(cron="0 6 * * *"), "UTC", "2026-11-28T05:59:59+00:00", "2026-11-27T06:00:00+00:00"),
    # a time that is exactly on the schedule is due then
    (Schedule(cron="0 6 * * *"), "UTC", "2026-11-28T06:00:00+00:00", "2026-11-28T06:00:00+00:00"),
    (Schedule(cron="*/15 * * * *"), "UTC", "2026-11-28T10:17:42+00:00",
     "2026-11-28T10:15:00+00:00"),
    # six in the morning in Paris: 05:00 UTC in winter, 04:00 UTC in summer
    (Schedule(cron="0 6 * * *"), "Europe/Paris", "2026-11-28T10:00:00+00:00",
     "2026-11-28T05:00:00+00:00"),
    (Schedule(cron="0 6 * * *"), "Europe/Paris", "2026-07-01T10:00:00+00:00",
     "2026-07-01T04:00:00+00:00"),
    # the night clocks go forward (29 March 2026): still six, local time
    (Schedule(cron="0 6 * * *"), "Europe/Paris", "2026-03-29T12:00:00+00:00",
     "2026-03-29T04:00:00+00:00"),
    (Schedule(cron="0 9 * * 1"), "America/New_York", "2026-11-28T10:00:00+00:00",
     "2026-11-23T14:00:00+00:00"),
    # the night clocks go back (25 October 2026): the repeated hour's second pass counts
    (Schedule(cron="*/15 * * * *"), "Europe/Paris", "2026-10-25T01:20:00+00:00",
     "2026-10-25T01:15:00+00:00"),
    (Schedule(cron="0 * * * *"), "Europe/Paris", "2026-10-25T01:05:00+00:00",
     "2026-10-25T01:00:00+00:00"),
    # intervals are whole multiples since the epoch, in UTC, whatever the zone
    (Schedule(interval_seconds=6 * 3600), "Europe/Paris", "2026-11-28T10:17:42+00:00",
     "2026-11-28T06:00:00+00:00"),
    (Schedule(interval_seconds=1800), "UTC", "2026-11-28T10:17:42+00:00",
     "2026-11-28T10:00:00+00:00"),
])
def test_latest_time(schedule: Schedule, timezone: str, now: str, expected: str) -> None:
    assert latest_time(schedule, timezone, at(now)) == at(expected)


def test_a_new_target_is_due_at_once_for_its_latest_time() -> None:
    runs = due_runs([policy(Target("https://news.test/", schedule="0 6 * * *"))], T0)

    assert captures(runs) == [("https://news.test/", at("2026-11-28T06:00:00+00:00"))]


def test_targets_without_a_schedule_are_not_due() -> None:
    assert captures(due_runs([policy(Target("https://news.test/"))], T0)) == []


def test_after_downtime_the_missed_runs_are_caught_up_once(engine: Engine) -> None:
    target = Target("https://news.test/", schedule="0 * * * *")  # hourly
    create_jobs(engine, due_runs([policy(target)], T0), T0)

    # Down for three days: 72 hourly runs were missed.
    later = T0 + timedelta(days=3, minutes=5)
    created = create_jobs(engine, due_runs([policy(target)], later), later)

    capture_jobs = [job for job in list_jobs(engine) if job.kind == "capture"]
    assert len(created) == 1  # the latest missed capture only (the 90-day audit is not due)
    assert [job.scheduled_for for job in capture_jobs] == [
        at("2026-12-01T10:00:00+00:00"), at("2026-11-28T10:00:00+00:00")]


def test_missed_runs_skip_runs_only_what_came_due_within_the_grace(engine: Engine) -> None:
    target = Target("https://news.test/", schedule="0 6 * * *", missed_runs="skip")

    late = at("2026-11-28T06:00:00+00:00") + GRACE + timedelta(seconds=1)
    assert captures(due_runs([policy(target)], late)) == []
    on_time = at("2026-11-28T06:00:00+00:00") + GRACE
    assert captures(due_runs([policy(target)], on_time)) == [
        ("https://news.test/", at("2026-11-28T06:00:00+00:00"))]


def test_each_collection_is_audited_at_the_shortest_interval_its_policies_ask() -> None:
    policies = [policy(name="a", collection="news", every_days=90, sample=1.0),
                policy(name="b", collection="news", every_days=30, sample=0.1),
                policy(name="c", collection="blogs", every_days=10, sample=0.01)]

    audits = {(run.target, run.policy): run.scheduled_for
              for run in due_runs(policies, T0) if run.kind == "fixity"}

    # b: 30 days x 0.1 = 3 days; c: 0.1 day, but never more than daily.
    assert fixity_interval(policies[1]) == Schedule(interval_seconds=3 * 86400)
    assert fixity_interval(policies[2]) == Schedule(interval_seconds=86400)
    assert audits == {("blogs", "c"): at("2026-11-28T00:00:00+00:00"),
                      ("news", "b"): at("2026-11-27T00:00:00+00:00")}


# --- one job per run ----------------------------------------------------------------------

@pytest.fixture
def engine(database_url: str) -> Engine:
    engine = open_engine(database_url)
    yield engine  # type: ignore[misc]
    engine.dispose()


def test_a_run_gets_one_job_however_often_it_is_asked_for(engine: Engine) -> None:
    runs = [Run("capture", "news", "https://news.test/", T0),
            Run("capture", "news", "https://news.test/b", T0),
            Run("capture", "other", "https://news.test/", T0)]  # another policy: its own job

    first = create_jobs(engine, runs, T0)
    again = create_jobs(engine, runs, T0 + timedelta(minutes=1))

    assert len(first) == 3 and again == []
    assert {job.state for job in list_jobs(engine)} == {"queued"}


def test_two_schedulers_racing_create_each_job_once(database_url: str) -> None:
    """Schedulers on separate connections insert the same runs at the same moment."""
    runs = [Run("capture", "news", f"https://news.test/{n}", T0) for n in range(40)]
    engines = [open_engine(database_url) for _ in range(4)]
    start = threading.Barrier(len(engines))
    created: list[list[str]] = [[] for _ in engines]

    def schedule(index: int) -> None:
        start.wait()
        for run in runs:  # one transaction per run: the inserts interleave
            created[index].extend(create_jobs(engines[index], [run], T0))

    threads = [threading.Thread(target=schedule, args=(i,)) for i in range(len(engines))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    ids = [job_id for made in created for job_id in made]
    assert len(ids) == len(set(ids)) == len(runs)
    assert len(list_jobs(engines[0], limit=1000)) == len(runs)
    for engine in engines:
        engine.dispose()


# --- running jobs -------------------------------------------------------------------------

@pytest.fixture
def settings(home: Path, database_url: str, monkeypatch: pytest.MonkeyPatch) -> Settings:
    folder = home.parent / "policies"
    folder.mkdir()
    (folder / "news.yaml").write_text(
        "collection: news\ntargets:\n  - url: https://news.test/\n    schedule: '0 6 * * *'\n")
    monkeypatch.setenv("PRESERVE_POLICIES", str(folder))
    return load_settings()


def queued(engine: Engine, target: str = "https://news.test/") -> str:
    (job_id,) = create_jobs(engine, [Run("capture", "news", target, T0)], T0)
    return job_id


def clock(moment: datetime) -> Callable[[], datetime]:
    return lambda: moment


def test_a_job_is_done_once_and_its_result_kept(settings: Settings, engine: Engine) -> None:
    job_id = queued(engine)
    calls: list[tuple[str, Policy]] = []

    def work(job: Job, policy: Policy, _settings: Settings, _engine: Engine) -> dict[str, Any]:
        calls.append((job.id, policy))
        return {"pages": 1}

    done = run_job(job_id, settings, engine, now=clock(T0), work=work)
    again = run_job(job_id, settings, engine, now=clock(T0), work=work)

    assert (done.state, done.attempts, done.result, done.error) == ("succeeded", 1, {"pages": 1},
                                                                    None)
    assert done.finished_at == T0 and done.worker
    assert again == done and len(calls) == 1
    # The policy is read again, narrowed to the job's target.
    assert [target.url for target in calls[0][1].targets] == ["https://news.test/"]


def test_a_failed_job_is_retried_later_then_fails(settings: Settings, engine: Engine) -> None:
    job_id = queued(engine)

    def broken(*_args: Any) -> dict[str, Any]:
        raise RuntimeError("the network\nwent away")

    now = T0
    for attempt in range(1, MAX_ATTEMPTS + 1):
        job = run_job(job_id, settings, engine, now=clock(now), work=broken)
        assert job.attempts == attempt
        assert job.error == "RuntimeError: the network went away"
        if attempt < MAX_ATTEMPTS:
            assert job.state == "queued" and job.not_before > now and job.dispatched_at is None
            # Not before its time: a runner asking now leaves it alone.
            early = run_job(job_id, settings, engine, now=clock(now), work=broken)
            assert early.attempts == attempt
            assert job_id not in runnable(engine, now)
            now = job.not_before
            assert job_id in runnable(engine, now)
    assert job.state == "failed" and job.finished_at == now


def test_a_job_whose_policy_is_gone_fails_at_once(settings: Settings, engine: Engine) -> None:
    job_id = queued(engine, "https://news.test/elsewhere")

    job = run_job(job_id, settings, engine, now=clock(T0), work=lambda *args: {})

    assert (job.state, job.attempts) == ("failed", 1)
    assert job.error == "policy news no longer has the target https://news.test/elsewhere"


def test_a_job_whose_runner_died_is_queued_again(settings: Settings, engine: Engine) -> None:
    job_id = queued(engine)
    with engine.begin() as connection:  # a runner claimed it, then went silent
        connection.execute(update(jobs).where(jobs.c.id == job_id).values(
            state="running", attempts=1, worker="gone:1:1", heartbeat_at=T0))

    assert requeue_abandoned(engine, T0 + LEASE) == []
    assert requeue_abandoned(engine, T0 + LEASE + timedelta(seconds=1)) == [job_id]
    job = get_job(engine, job_id)
    assert job.state == "queued" and "stopped answering" in (job.error or "")
    done = run_job(job_id, settings, engine, now=clock(T0 + LEASE * 2),
                   work=lambda *args: {"ok": True})
    assert (done.state, done.attempts) == ("succeeded", 2)


def test_an_abandoned_job_out_of_attempts_fails(engine: Engine) -> None:
    job_id = queued(engine)
    with engine.begin() as connection:
        connection.execute(update(jobs).where(jobs.c.id == job_id).values(
            state="running", attempts=MAX_ATTEMPTS, heartbeat_at=T0))

    assert requeue_abandoned(engine, T0 + LEASE * 2) == []

    assert get_job(engine, job_id).state == "failed"


def test_cancel(engine: Engine) -> None:
    job_id = queued(engine)
    running = queued(engine, "https://news.test/b")
    with engine.begin() as connection:
        connection.execute(update(jobs).where(jobs.c.id == running).values(state="running"))

    assert cancel_job(engine, job_id, T0).state == "cancelled"
    with pytest.raises(BadInput, match=f"job {running} is running: only a queued job"):
        cancel_job(engine, running, T0)
    with pytest.raises(NotFound, match="job nope: no such job"):
        cancel_job(engine, "nope", T0)
    with engine.connect() as connection:
        states = dict(connection.execute(select(jobs.c.id, jobs.c.state)).all())
    assert states == {job_id: "cancelled", running: "running"}


def test_the_example_policy_schedules_daily_captures() -> None:
    example = load_policy(Path(__file__).resolve().parent.parent / "policies"
                          / "reference-page.yaml")
    runs = due_runs([example], T0)
    assert [run.kind for run in runs] == ["capture", "fixity"]
    assert runs[0].scheduled_for == at("2026-11-28T06:00:00+00:00")


def test_a_job_is_sent_to_the_workers_once_until_it_may_have_been_lost(engine: Engine) -> None:
    from preserve.schedule import REDISPATCH, mark_dispatched
    job_id = queued(engine)

    assert mark_dispatched(engine, job_id, T0) is True
    assert mark_dispatched(engine, job_id, T0 + REDISPATCH) is False
    assert mark_dispatched(engine, job_id, T0 + REDISPATCH + timedelta(seconds=1)) is True
    with engine.begin() as connection:
        connection.execute(update(jobs).where(jobs.c.id == job_id).values(state="running"))
    assert mark_dispatched(engine, job_id, T0 + REDISPATCH * 3) is False


def test_a_quarter_hour_cron_has_every_quarter_through_the_night_clocks_go_back() -> None:
    schedule = Schedule(cron="*/15 * * * *")
    start = at("2026-10-24T23:00:00+00:00")
    times = {latest_time(schedule, "Europe/Paris", start + timedelta(minutes=minute))
             for minute in range(0, 4 * 60, 5)}
    assert sorted(times) == [start + timedelta(minutes=15 * n) for n in range(16)]
