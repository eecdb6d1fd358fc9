"""policies/*.yaml -> typed :class:`Policy`; errors name the file, the key and the problem.

Loading is safe (``yaml.safe_load``) and strict: an unknown key is an error, so
a misspelt option never silently falls back to its default.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from preserve.capture.scope import SCOPES
from preserve.config import read_yaml
from preserve.errors import PolicyError

COLLECTION_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")

_TOP = {"collection", "description", "targets", "capture", "preservation", "access"}
_TARGET = {"url", "schedule", "scope", "depth", "max_pages", "include", "exclude"}
_CAPTURE = {"obey_robots", "delay_seconds", "host_connections", "timeout_seconds",
            "max_resource_bytes", "requisites"}
_PRESERVATION = {"copies", "fixity_every_days", "fixity_sample", "retention_years"}
_ACCESS = {"embargo_days"}


@dataclass(frozen=True)
class Target:
    """One URL the policy captures, and how far from it."""

    url: str
    schedule: str | None = None
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


def check_collection(name: str) -> str:
    """The collection name, or :class:`PolicyError` if it cannot name a collection."""
    if not COLLECTION_NAME.fullmatch(name):
        raise PolicyError(
            f"collection {name!r} is not a valid name: use 1-100 letters, digits, "
            "'.', '_' or '-', starting with a letter or digit"
        )
    return name


def load_policy(path: Path) -> Policy:
    """Read and validate one policy file."""
    return parse_policy(read_yaml(path, PolicyError, "policy"), path)


def parse_policy(data: Any, path: Path) -> Policy:
    """Validate the loaded YAML of a policy file."""
    reader = _Reader(path)
    top = reader.mapping(data, "", _TOP)
    collection = reader.required_str(top, "collection")
    try:
        check_collection(collection)
    except PolicyError as exc:
        raise PolicyError(f"{path}: collection: {exc}") from exc
    raw_targets = top.get("targets", [])
    if not isinstance(raw_targets, list):
        raise PolicyError(f"{path}: targets: must be a list")
    targets = tuple(reader.target(item, f"targets[{i}]") for i, item in enumerate(raw_targets))
    capture = reader.mapping(top.get("capture", {}), "capture", _CAPTURE)
    preservation = reader.mapping(top.get("preservation", {}), "preservation", _PRESERVATION)
    access = reader.mapping(top.get("access", {}), "access", _ACCESS)
    return Policy(
        name=path.stem,
        path=path,
        collection=collection,
        description=str(top.get("description", "")),
        targets=targets,
        capture=CaptureOptions(
            obey_robots=reader.typed(capture, "capture.obey_robots", bool, True),
            delay_seconds=reader.number(capture, "capture.delay_seconds", 1.0, minimum=0),
            host_connections=reader.optional_int(capture, "capture.host_connections") or 2,
            timeout_seconds=reader.optional_number(capture, "capture.timeout_seconds"),
            max_resource_bytes=reader.optional_int(capture, "capture.max_resource_bytes"),
            requisites=reader.typed(capture, "capture.requisites", bool, True),
        ),
        preservation=Preservation(
            copies=tuple(reader.str_list(preservation, "preservation.copies")),
            fixity_every_days=int(reader.number(preservation, "preservation.fixity_every_days",
                                                90, minimum=1)),
            fixity_sample=reader.number(preservation, "preservation.fixity_sample", 1.0,
                                        minimum=0, maximum=1),
            retention_years=reader.optional_int(preservation, "preservation.retention_years"),
        ),
        embargo_days=int(reader.number(access, "access.embargo_days", 0, minimum=0)),
    )


class _Reader:
    """Typed reads from YAML mappings, each error naming the file and key path."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, key: str, problem: str) -> PolicyError:
        return PolicyError(f"{self.path}: {key}: {problem}" if key else f"{self.path}: {problem}")

    def mapping(self, value: Any, key: str, allowed: set[str]) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(key, "must be a mapping of keys")
        for name in value:
            if name not in allowed:
                path = f"{key}.{name}" if key else str(name)
                raise self.fail(path, f"unknown key (known: {', '.join(sorted(allowed))})")
        return value

    def required_str(self, data: dict[str, Any], key: str) -> str:
        value = data.get(key)
        if not isinstance(value, str) or not value.strip():
            raise self.fail(key, "is required and must be text")
        return value.strip()

    def typed(self, data: dict[str, Any], key: str, kind: type, default: Any) -> Any:
        value = data.get(key.rsplit(".", 1)[-1], default)
        if not isinstance(value, kind):
            raise self.fail(key, f"must be {kind.__name__}, not {value!r}")
        return value

    def number(self, data: dict[str, Any], key: str, default: float, minimum: float,
               maximum: float | None = None) -> float:
        value = data.get(key.rsplit(".", 1)[-1], default)
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(
                value):
            raise self.fail(key, f"must be a number, not {value!r}")
        if value < minimum or (maximum is not None and value > maximum):
            bound = f"between {minimum:g} and {maximum:g}" if maximum is not None else (
                f"at least {minimum:g}")
            raise self.fail(key, f"must be {bound}, not {value!r}")
        return float(value)

    def optional_number(self, data: dict[str, Any], key: str) -> float | None:
        """A positive number, or None when the key is absent."""
        if data.get(key.rsplit(".", 1)[-1]) is None:
            return None
        value = self.number(data, key, 0, minimum=0)
        if value == 0:
            raise self.fail(key, "must be more than 0")
        return value

    def optional_int(self, data: dict[str, Any], key: str) -> int | None:
        value = data.get(key.rsplit(".", 1)[-1])
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise self.fail(key, f"must be a positive whole number, not {value!r}")
        return value

    def str_list(self, data: dict[str, Any], key: str) -> list[str]:
        value = data.get(key.rsplit(".", 1)[-1], [])
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise self.fail(key, "must be a list of names")
        return value

    def target(self, value: Any, key: str) -> Target:
        data = self.mapping(value, key, _TARGET)
        url = self.required_str(data, "url") if "url" in data else None
        if url is None:
            raise self.fail(f"{key}.url", "is required")
        scope = data.get("scope", "page")
        if scope not in SCOPES:
            raise self.fail(f"{key}.scope", f"must be one of {', '.join(SCOPES)}, not {scope!r}")
        schedule = data.get("schedule")
        if schedule is not None and not isinstance(schedule, str):
            raise self.fail(f"{key}.schedule", "must be a cron expression or interval, as text")
        return Target(
            url=url,
            schedule=schedule,
            scope=scope,
            depth=int(self.number(data, f"{key}.depth", 0, minimum=0)),
            max_pages=self.optional_int(data, f"{key}.max_pages"),
            include=tuple(self.str_list(data, f"{key}.include")),
            exclude=tuple(self.str_list(data, f"{key}.exclude")),
        )
