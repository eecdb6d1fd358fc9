"""Policy files: the examples load; every mistake names the file and the key path."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from preserve.errors import PolicyError
from preserve.policy import (
    SCOPES,
    PolicyProblem,
    Schedule,
    check_collection,
    check_policy,
    load_policy,
    parse_schedule,
)

POLICIES = Path(__file__).resolve().parent.parent / "policies"

VALID = """\
collection: news
description: a test policy
targets:
  - url: https://news.test/front
    schedule: "0 6 * * *"
    scope: prefix
    depth: 1
    max_pages: 20
    include: ["/front/"]
    exclude: ["/front/ads/"]
capture:
  obey_robots: false
  delay_seconds: 0.5
  timeout_seconds: 10
  max_resource_bytes: 5000000
  requisites: false
preservation:
  copies: [local, offsite]
  fixity_every_days: 30
  fixity_sample: 0.25
  retention_years: 7
access:
  embargo_days: 14
"""


def write(tmp_path: Path, text: str, name: str = "policy.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_the_repository_has_example_policies() -> None:
    assert sorted(POLICIES.glob("*.yaml")), f"no example policies in {POLICIES}"
    assert (POLICIES / "reference-page.yaml").is_file()


@pytest.mark.parametrize("path", sorted(POLICIES.glob("*.yaml")), ids=lambda path: path.name)
def test_every_example_policy_loads(path: Path) -> None:
    policy = load_policy(path)

    assert policy.path == path
    assert policy.name == path.stem
    assert check_collection(policy.collection) == policy.collection
    assert policy.targets, f"{path} captures nothing"
    for target in policy.targets:
        assert target.url.startswith(("http://", "https://"))
        assert target.scope in SCOPES


def test_the_reference_page_policy() -> None:
    policy = load_policy(POLICIES / "reference-page.yaml")

    assert policy.collection == "financial-news"
    assert [target.scope for target in policy.targets] == ["page"]
    assert policy.targets[0].url.endswith("/post/bachelet-ends-term-as-un-rights-chief-by-"
                                          "blasting-china-s-uyghur-genocide")
    assert policy.preservation.copies == ("local",)


def test_a_complete_policy_is_read_into_its_types(tmp_path: Path) -> None:
    policy = load_policy(write(tmp_path, VALID, "daily-news.yaml"))

    assert policy.name == "daily-news"
    assert policy.collection == "news"
    assert policy.description == "a test policy"
    (target,) = policy.targets
    assert target.url == "https://news.test/front"
    assert target.schedule == "0 6 * * *"
    assert (target.scope, target.depth, target.max_pages) == ("prefix", 1, 20)
    assert (target.include, target.exclude) == (("/front/",), ("/front/ads/",))
    assert policy.capture.obey_robots is False
    assert policy.capture.delay_seconds == 0.5
    assert policy.capture.timeout_seconds == 10.0
    assert policy.capture.max_resource_bytes == 5000000
    assert policy.capture.requisites is False
    assert policy.preservation.copies == ("local", "offsite")
    assert policy.preservation.fixity_every_days == 30
    assert policy.preservation.fixity_sample == 0.25
    assert policy.preservation.retention_years == 7
    assert policy.embargo_days == 14


def test_a_minimal_policy_takes_the_defaults(tmp_path: Path) -> None:
    policy = load_policy(write(tmp_path, "collection: minimal\n"))

    assert policy.targets == ()
    assert policy.capture.obey_robots is True
    assert policy.capture.timeout_seconds is None
    assert policy.preservation.fixity_sample == 1.0
    assert policy.embargo_days == 0


def replaced(old: str, new: str) -> str:
    assert old in VALID
    return VALID.replace(old, new, 1)


KNOWN_TARGET_KEYS = ("depth, exclude, include, max_pages, missed_runs, schedule, scope, timezone, "
                     "url")
# Each broken file, with the one problem it has: line (None: no line), key path, problem.
BROKEN = {
    "unknown top-level key": (VALID + "retention: 5\n", 24, "retention",
                              "unknown key (known: access, capture, collection, description, "
                              "preservation, targets)"),
    "unknown target key": (replaced("    depth: 1\n", "    depht: 1\n"), 7, "targets[0].depht",
                           f"unknown key (known: {KNOWN_TARGET_KEYS})"),
    "missing collection": (replaced("collection: news\n", ""), None, "collection",
                           "is required and must be text"),
    "bad collection name": (replaced("collection: news", 'collection: "../etc"'), 1, "collection",
                            "collection '../etc' is not a valid name: use 1-100 letters, digits, "
                            "'.', '_' or '-', starting with a letter or digit"),
    "scope not known": (replaced("scope: prefix", "scope: site"), 6, "targets[0].scope",
                        "must be one of page, prefix, host, domain, not 'site'"),
    "fixity sample over 1": (replaced("fixity_sample: 0.25", "fixity_sample: 2"), 20,
                             "preservation.fixity_sample", "must be between 0 and 1, not 2"),
    "obey_robots as text": (replaced("obey_robots: false", 'obey_robots: "yes"'), 12,
                            "capture.obey_robots", "must be true or false, not 'yes'"),
    "unknown capture key": (replaced("  requisites: false\n", "  requisite: false\n"), 16,
                            "capture.requisite",
                            "unknown key (known: delay_seconds, host_connections, "
                            "max_resource_bytes, obey_robots, requisites, timeout_seconds)"),
    "negative embargo": (replaced("embargo_days: 14", "embargo_days: -1"), 23,
                         "access.embargo_days", "must be at least 0, not -1"),
    "copies not a list": (replaced("copies: [local, offsite]", "copies: local"), 18,
                          "preservation.copies", "must be a list of names"),
    "target without url": (replaced("  - url: https://news.test/front\n    schedule",
                                    "  - schedule"), 4, "targets[0].url",
                           "is required and must be text"),
    "url not http": (replaced("url: https://news.test/front", "url: ftp://news.test/front"), 4,
                     "targets[0].url", "must be an http or https URL, not 'ftp://news.test/front'"),
    "targets not a list": ("collection: news\ntargets: https://news.test/front\n", 2, "targets",
                           "must be a list"),
    "schedule not cron": (replaced('"0 6 * * *"', '"at six"'), 5, "targets[0].schedule",
                          "must be a cron expression or an interval, such as '0 6 * * *' (cron) "
                          "or 'every 6h' (interval), not 'at six'"),
    "cron out of range": (replaced('"0 6 * * *"', '"0 25 * * *"'), 5, "targets[0].schedule",
                          "must be a cron expression or an interval, such as '0 6 * * *' (cron) "
                          "or 'every 6h' (interval), not '0 25 * * *'"),
    "cron with seconds": (replaced('"0 6 * * *"', '"0 0 6 * * *"'), 5, "targets[0].schedule",
                          "must be a cron expression or an interval, such as '0 6 * * *' (cron) "
                          "or 'every 6h' (interval), not '0 0 6 * * *'"),
    "cron never due": (replaced('"0 6 * * *"', '"0 0 30 2 *"'), 5, "targets[0].schedule",
                       "the cron expression '0 0 30 2 *' never comes due"),
    "time zone that is a folder": (replaced('    scope: prefix', '    timezone: America\n'
                                            '    scope: prefix'), 6, "targets[0].timezone",
                                   "must be a time zone name such as UTC or Europe/Paris, "
                                   "not 'America'"),
    "interval of zero": (replaced('"0 6 * * *"', '"every 0h"'), 5, "targets[0].schedule",
                         "the interval must be at least a minute, not 'every 0h'"),
    "unknown time zone": (replaced('    scope: prefix', '    timezone: Mars/Olympus\n'
                                   '    scope: prefix'), 6, "targets[0].timezone",
                          "must be a time zone name such as UTC or Europe/Paris, "
                          "not 'Mars/Olympus'"),
    "missed_runs not known": (replaced('    scope: prefix', '    missed_runs: all\n'
                                       '    scope: prefix'), 6, "targets[0].missed_runs",
                              "must be one of once, skip, not 'all'"),
    "exclude not a regular expression": (
        replaced('exclude: ["/front/ads/"]', 'exclude: ["/front/(ads/"]'), 10,
        "targets[0].exclude[0]", "'/front/(ads/' is not a valid regular expression: missing ), "
                                 "unterminated subpattern at position 7"),
    "the same url twice": (replaced("    exclude: [\"/front/ads/\"]\n",
                                    "    exclude: [\"/front/ads/\"]\n"
                                    "  - url: https://news.test/front\n"), 11, "targets[1].url",
                           "the same URL as targets[0]"),
}


@pytest.mark.parametrize(("text", "line", "key", "problem"), BROKEN.values(), ids=BROKEN.keys())
def test_broken_policies_name_the_file_line_key_and_problem(
        tmp_path: Path, text: str, line: int | None, key: str, problem: str) -> None:
    path = write(tmp_path, text)

    with pytest.raises(PolicyError) as caught:
        load_policy(path)

    where = f"{path}:{line}" if line else str(path)
    assert str(caught.value) == f"{where}: {key}: {problem}"
    assert check_policy(path) == (None, [PolicyProblem(path, line, key, problem)])


def test_every_problem_in_a_file_is_found_in_one_reading(tmp_path: Path) -> None:
    text = (replaced("scope: prefix", "scope: site")
            .replace("obey_robots: false", "obey_robots: 1")
            .replace("embargo_days: 14", "embargo_days: soon"))
    path = write(tmp_path, text)

    policy, problems = check_policy(path)

    assert policy is None
    assert [(p.line, p.key) for p in problems] == [
        (6, "targets[0].scope"), (12, "capture.obey_robots"), (23, "access.embargo_days")]
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    assert str(caught.value) == (f"{problems[0]} (and 2 more: preserve policies check {path})")


def test_copies_are_checked_against_the_storage_locations(tmp_path: Path) -> None:
    path = write(tmp_path, VALID)

    assert check_policy(path, locations=["local", "offsite"])[1] == []
    policy, problems = check_policy(path, locations=["local"])

    assert policy is None
    assert [str(problem) for problem in problems] == [
        f"{path}:18: preservation.copies: no storage location is named 'offsite' "
        "(locations: local)"]


@pytest.mark.parametrize(("text", "schedule"), [
    ("0 6 * * *", Schedule(cron="0 6 * * *")),
    ("@daily", Schedule(cron="0 0 * * *")),
    ("*/15 * * * 1-5", Schedule(cron="*/15 * * * 1-5")),
    ("every 6h", Schedule(interval_seconds=6 * 3600)),
    ("every 30 minutes", Schedule(interval_seconds=1800)),
    ("every 2 days", Schedule(interval_seconds=2 * 86400)),
    ("Every 1W", Schedule(interval_seconds=7 * 86400)),
])
def test_schedules_are_cron_or_intervals(text: str, schedule: Schedule) -> None:
    assert parse_schedule(text) == schedule


def test_the_known_scopes_are_listed_when_the_scope_is_wrong(tmp_path: Path) -> None:
    with pytest.raises(PolicyError) as caught:
        load_policy(write(tmp_path, replaced("scope: prefix", "scope: site")))

    assert "'site'" in str(caught.value)
    assert all(scope in str(caught.value) for scope in SCOPES)


def test_the_bad_collection_name_is_shown(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match=re.escape("'../etc'")):
        load_policy(write(tmp_path, replaced("collection: news", 'collection: "../etc"')))


def test_invalid_yaml_names_the_file_and_line(tmp_path: Path) -> None:
    # The stray indentation is on line 3.
    path = write(tmp_path, "collection: news\ndescription: x\n  oops: [\n")

    with pytest.raises(PolicyError) as caught:
        load_policy(path)

    message = str(caught.value)
    assert message.startswith(f"{path}:3: "), message
    assert "not valid YAML" in message
    assert "\n" not in message


def test_a_missing_policy_file(tmp_path: Path) -> None:
    missing = tmp_path / "absent.yaml"

    with pytest.raises(PolicyError, match=re.escape(str(missing))):
        load_policy(missing)


def test_a_policy_that_is_not_a_mapping(tmp_path: Path) -> None:
    path = write(tmp_path, "- collection: news\n")

    with pytest.raises(PolicyError, match=re.escape(f"{path}: must be a mapping")):
        load_policy(path)


@pytest.mark.parametrize("name", ["news", "N", "financial-news", "a.b_c-d", "0day", "x" * 100])
def test_check_collection_accepts_good_names(name: str) -> None:
    assert check_collection(name) == name


@pytest.mark.parametrize("name", ["", "../etc", ".hidden", "-dash", "a/b", "a b", "x" * 101,
                                  "naïve", "a\\b"])
def test_check_collection_refuses_bad_names(name: str) -> None:
    with pytest.raises(PolicyError, match="not a valid name"):
        check_collection(name)


def test_check_collection_refuses_a_trailing_newline() -> None:
    with pytest.raises(PolicyError):
        check_collection("news\n")
