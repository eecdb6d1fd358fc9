"""policies/*.yaml -> typed :class:`Policy`; problems name the file, line, key path and problem.

Loading is safe (YAML's safe loader) and strict: an unknown key is an error, so
a misspelt option never silently falls back to its default. Every problem in a
file is found in one reading (:func:`check_policy`), not only the first;
:func:`load_policy` refuses a file with any.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from croniter import CroniterError, croniter

from preserve.capture.scope import SCOPES
from preserve.errors import PolicyError

COLLECTION_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")

_TOP = {"collection", "description", "targets", "capture", "preservation", "access"}
_TARGET = {"url", "schedule", "timezone", "missed_runs", "scope", "depth", "max_pages",
           "include", "exclude"}
_CAPTURE = {"obey_robots", "delay_seconds", "host_connections", "timeout_seconds",
            "max_resource_bytes", "requisites"}
_PRESERVATION = {"copies", "fixity_every_days", "fixity_sample", "retention_years"}
_ACCESS = {"embargo_days"}

# What a scheduler does about runs it missed while it was down: run the latest once, or none.
MISSED_RUNS = ("once", "skip")
_INTERVAL = re.compile(r"every\s+(\d+)\s*(m|min|minutes?|h|hours?|d|days?|w|weeks?)",
                       re.IGNORECASE)
_UNIT_SECONDS = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_CRON_ALIASES = {"@hourly": "0 * * * *", "@daily": "0 0 * * *", "@midnight": "0 0 * * *",
                 "@weekly": "0 0 * * 0", "@monthly": "0 0 1 * *", "@yearly": "0 0 1 1 *",
                 "@annually": "0 0 1 1 *"}


@dataclass(frozen=True)
class Schedule:
    """When a target is captured: a five-field cron expression, or a fixed interval."""

    cron: str | None = None
    interval_seconds: int | None = None


def parse_schedule(value: Any) -> Schedule:
    """A target's ``schedule`` text as a :class:`Schedule`; ValueError says what is wrong.

    Cron: five fields (minute hour day month weekday) or @hourly, @daily,
    @weekly, @monthly, @yearly. Interval: ``every N`` minutes, hours, days or
    weeks (``every 6h``, ``every 2 days``), at least a minute.
    """
    example = "such as '0 6 * * *' (cron) or 'every 6h' (interval)"
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"must be a cron expression or an interval, {example}, not {value!r}")
    text = value.strip()
    interval = _INTERVAL.fullmatch(text)
    if interval:
        seconds = int(interval.group(1)) * _UNIT_SECONDS[interval.group(2)[0].lower()]
        if seconds <= 0:
            raise ValueError(f"the interval must be at least a minute, not {text!r}")
        return Schedule(interval_seconds=seconds)
    cron = _CRON_ALIASES.get(text.lower(), text)
    if len(cron.split()) != 5 or not croniter.is_valid(cron):
        raise ValueError(f"must be a cron expression or an interval, {example}, not {text!r}")
    try:  # valid, yet perhaps never due (the 30th of February)
        croniter(cron, datetime(2000, 1, 1, tzinfo=UTC)).get_next(datetime)
    except CroniterError as exc:
        raise ValueError(f"the cron expression {text!r} never comes due") from exc
    return Schedule(cron=cron)


@dataclass(frozen=True)
class Target:
    """One URL the policy captures, when, and how far from it."""

    url: str
    schedule: str | None = None
    timezone: str = "UTC"
    missed_runs: str = "once"
    scope: str = "page"
    depth: int = 0
    max_pages: int | None = None
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()


@dataclass(frozen=True)
class CaptureOptions:
    """How the policy's captures fetch."""

    obey_robots: bool = True
    delay_seconds: float = 1.0
    host_connections: int = 2
    timeout_seconds: float | None = None
    max_resource_bytes: int | None = None
    requisites: bool = True


@dataclass(frozen=True)
class Preservation:
    """How many copies, where, and how often they are checked."""

    copies: tuple[str, ...] = ()
    fixity_every_days: int = 90
    fixity_sample: float = 1.0
    retention_years: int | None = None


@dataclass(frozen=True)
class Policy:
    """A validated policy file."""

    name: str
    path: Path
    collection: str
    description: str = ""
    targets: tuple[Target, ...] = ()
    capture: CaptureOptions = field(default_factory=CaptureOptions)
    preservation: Preservation = field(default_factory=Preservation)
    embargo_days: int = 0


@dataclass(frozen=True)
class PolicyProblem:
    """One thing wrong in a policy file: where (file, line, key path) and what."""

    path: Path
    line: int | None
    key: str
    problem: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else str(self.path)
        return f"{where}: {self.key}: {self.problem}" if self.key else f"{where}: {self.problem}"


def check_collection(name: str) -> str:
    """The collection name, or :class:`PolicyError` if it cannot name a collection."""
    if not COLLECTION_NAME.fullmatch(name):
        raise PolicyError(
            f"collection {name!r} is not a valid name: use 1-100 letters, digits, "
            "'.', '_' or '-', starting with a letter or digit"
        )
    return name


def load_policy(path: Path) -> Policy:
    """Read and validate one policy file; :class:`PolicyError` names its first problem."""
    policy, problems = check_policy(path)
    if problems:
        more = (f" (and {len(problems) - 1} more: preserve policies check {path})"
                if len(problems) > 1 else "")
        raise PolicyError(f"{problems[0]}{more}")
    assert policy is not None
    return policy


def load_policies(folder: Path) -> list[Policy]:
    """Every policy in a folder (``*.yaml``), by name; :class:`PolicyError` on the first problem."""
    return [load_policy(path) for path in policy_files(folder)]


def policy_files(folder: Path) -> list[Path]:
    """The policy files of a folder, by name; :class:`PolicyError` if it is not a folder."""
    if not folder.is_dir():
        raise PolicyError(f"{folder}: no such folder of policy files")
    return sorted(folder.glob("*.yaml"))


def check_policies(paths: Iterable[Path], locations: Iterable[str] | None = None,
                   ) -> list[tuple[Path, list[PolicyProblem]]]:
    """Every policy file named, or in the folders named, with its problems."""
    files: list[Path] = []
    for path in paths:
        files.extend(policy_files(path) if path.is_dir() else [path])
    known = None if locations is None else list(locations)
    return [(path, check_policy(path, known)[1]) for path in files]


def check_policy(path: Path, locations: Iterable[str] | None = None,
                 ) -> tuple[Policy | None, list[PolicyProblem]]:
    """The policy in a file and every problem it has (the policy is None when there are any).

    With ``locations``, the storage location names ``preservation.copies`` may use.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        return None, [PolicyProblem(path, None, "", f"cannot read policy: {exc.strerror}")]
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or "cannot be parsed"
        return None, [PolicyProblem(path, mark.line + 1 if mark else None, "",
                                    f"not valid YAML: {problem}")]
    reader = _Reader(path, _key_lines(node))
    policy = reader.policy(data, path)
    if policy is not None and locations is not None:
        known = sorted(locations)
        for name in policy.preservation.copies:
            if name not in known:
                reader.problem("preservation.copies",
                               f"no storage location is named {name!r} "
                               f"(locations: {', '.join(known) or 'none'})")
    problems = sorted(reader.problems, key=lambda p: (p.line or 0))
    return (None if problems else policy), problems


def _key_lines(node: yaml.Node | None) -> dict[str, int]:
    """The line (from 1) of every key path in a composed YAML document."""
    lines: dict[str, int] = {}

    def walk(node: yaml.Node, path: str) -> None:
        lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                name = f"{path}.{key.value}" if path else str(key.value)
                lines[name] = key.start_mark.line + 1
                walk(value, name)
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                walk(item, f"{path}[{index}]")

    if node is not None:
        walk(node, "")
    return lines


_MISSING = object()


class _Reader:
    """Typed reads from a policy's YAML, each problem noted with its file, line and key path.

    A read that fails notes the problem and gives the default, so that one
    pass finds every problem in the file.
    """

    def __init__(self, path: Path, lines: dict[str, int]) -> None:
        self.path = path
        self.lines = lines
        self.problems: list[PolicyProblem] = []

    def problem(self, key: str, problem: str) -> None:
        line = self.lines.get(key) if key else None
        parent = key
        while line is None:  # an absent key: the line of what should hold it, if not the top
            shorter = re.sub(r"(\.[^.\[]*|\[\d+\])$", "", parent)
            if not shorter or shorter == parent:
                break
            parent = shorter
            line = self.lines.get(parent)
        self.problems.append(PolicyProblem(self.path, line, key, problem))

    def policy(self, data: Any, path: Path) -> Policy | None:
        if not isinstance(data, dict):
            self.problem("", "must be a mapping of keys, such as collection: and targets:")
            return None
        top = self.mapping(data, "", _TOP)
        collection = self.text(top, "collection", required=True)
        if collection:
            try:
                check_collection(collection)
            except PolicyError as exc:
                self.problem("collection", str(exc))
        raw_targets = top.get("targets", [])
        if not isinstance(raw_targets, list):
            self.problem("targets", "must be a list")
            raw_targets = []
        targets = tuple(self.target(item, f"targets[{i}]") for i, item in enumerate(raw_targets))
        seen: dict[str, int] = {}
        for index, target in enumerate(targets):
            if target.url and target.url in seen:
                self.problem(f"targets[{index}].url",
                             f"the same URL as targets[{seen[target.url]}]")
            seen.setdefault(target.url, index)
        capture = self.mapping(top.get("capture", {}), "capture", _CAPTURE)
        preservation = self.mapping(top.get("preservation", {}), "preservation", _PRESERVATION)
        access = self.mapping(top.get("access", {}), "access", _ACCESS)
        return Policy(
            name=path.stem,
            path=path,
            collection=collection,
            description=self.text(top, "description"),
            targets=targets,
            capture=CaptureOptions(
                obey_robots=self.flag(capture, "capture.obey_robots", True),
                delay_seconds=self.number(capture, "capture.delay_seconds", 1.0, minimum=0),
                host_connections=self.optional_int(capture, "capture.host_connections") or 2,
                timeout_seconds=self.optional_number(capture, "capture.timeout_seconds"),
                max_resource_bytes=self.optional_int(capture, "capture.max_resource_bytes"),
                requisites=self.flag(capture, "capture.requisites", True),
            ),
            preservation=Preservation(
                copies=tuple(self.str_list(preservation, "preservation.copies")),
                fixity_every_days=int(self.number(preservation, "preservation.fixity_every_days",
                                                  90, minimum=1)),
                fixity_sample=self.number(preservation, "preservation.fixity_sample", 1.0,
                                          minimum=0, maximum=1),
                retention_years=self.optional_int(preservation, "preservation.retention_years"),
            ),
            embargo_days=int(self.number(access, "access.embargo_days", 0, minimum=0)),
        )

    def mapping(self, value: Any, key: str, allowed: set[str]) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.problem(key, "must be a mapping of keys")
            return {}
        known = {}
        for name, item in value.items():
            if name in allowed:
                known[name] = item
            else:
                path = f"{key}.{name}" if key else str(name)
                self.problem(path, f"unknown key (known: {', '.join(sorted(allowed))})")
        return known

    def value(self, data: dict[str, Any], key: str, default: Any) -> Any:
        return data.get(key.rsplit(".", 1)[-1], default)

    def text(self, data: dict[str, Any], key: str, required: bool = False) -> str:
        value = self.value(data, key, _MISSING)
        if value is _MISSING and not required:
            return ""
        if not isinstance(value, str) or (required and not value.strip()):
            self.problem(key, "is required and must be text" if required else "must be text")
            return ""
        return value.strip()

    def flag(self, data: dict[str, Any], key: str, default: bool) -> bool:
        value = self.value(data, key, default)
        if not isinstance(value, bool):
            self.problem(key, f"must be true or false, not {value!r}")
            return default
        return value

    def number(self, data: dict[str, Any], key: str, default: float, minimum: float,
               maximum: float | None = None) -> float:
        value = self.value(data, key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(
                value):
            self.problem(key, f"must be a number, not {value!r}")
            return default
        if value < minimum or (maximum is not None and value > maximum):
            bound = f"between {minimum:g} and {maximum:g}" if maximum is not None else (
                f"at least {minimum:g}")
            self.problem(key, f"must be {bound}, not {value!r}")
            return default
        return float(value)

    def optional_number(self, data: dict[str, Any], key: str) -> float | None:
        """A positive number, or None when the key is absent."""
        if self.value(data, key, None) is None:
            return None
        value = self.number(data, key, 0, minimum=0)
        if value == 0:
            self.problem(key, "must be more than 0")
            return None
        return value

    def optional_int(self, data: dict[str, Any], key: str) -> int | None:
        value = self.value(data, key, None)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            self.problem(key, f"must be a positive whole number, not {value!r}")
            return None
        return value

    def str_list(self, data: dict[str, Any], key: str) -> list[str]:
        value = self.value(data, key, [])
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            self.problem(key, "must be a list of names")
            return []
        return value

    def choice(self, data: dict[str, Any], key: str, choices: Iterable[str],
               default: str) -> str:
        value = self.value(data, key, default)
        if value not in choices:
            self.problem(key, f"must be one of {', '.join(choices)}, not {value!r}")
            return default
        return str(value)

    def target(self, value: Any, key: str) -> Target:
        data = self.mapping(value, key, _TARGET)
        url = self.text(data, f"{key}.url", required=True)
        if url and not url.lower().startswith(("http://", "https://")):
            self.problem(f"{key}.url", f"must be an http or https URL, not {url!r}")
        schedule = self.value(data, f"{key}.schedule", None)
        if schedule is not None:
            try:
                parse_schedule(schedule)
            except ValueError as exc:
                self.problem(f"{key}.schedule", str(exc))
                schedule = None
        timezone = self.value(data, f"{key}.timezone", "UTC")
        try:
            if not isinstance(timezone, str):
                raise ValueError
            ZoneInfo(timezone)
        except (ValueError, OSError, ZoneInfoNotFoundError):  # "America" is a folder
            self.problem(f"{key}.timezone",
                         f"must be a time zone name such as UTC or Europe/Paris, not {timezone!r}")
            timezone = "UTC"
        return Target(
            url=url,
            schedule=schedule,
            timezone=timezone,
            missed_runs=self.choice(data, f"{key}.missed_runs", MISSED_RUNS, "once"),
            scope=self.choice(data, f"{key}.scope", SCOPES, "page"),
            depth=int(self.number(data, f"{key}.depth", 0, minimum=0)),
            max_pages=self.optional_int(data, f"{key}.max_pages"),
            include=self.patterns(data, f"{key}.include"),
            exclude=self.patterns(data, f"{key}.exclude"),
        )

    def patterns(self, data: dict[str, Any], key: str) -> tuple[str, ...]:
        """A list of regular expressions, each one checked now, not when a crawl runs."""
        kept = []
        for number, pattern in enumerate(self.str_list(data, key)):
            try:
                re.compile(pattern)
            except re.error as exc:
                self.problem(f"{key}[{number}]", f"{pattern!r} is not a valid regular "
                                                 f"expression: {exc}")
                continue
            kept.append(pattern)
        return tuple(kept)
