"""Service settings: home folder, catalog database, storage locations, capture limits.

Settings come from ``preserve.yaml`` (path from ``PRESERVE_CONFIG``, else
``$PRESERVE_HOME/preserve.yaml``) and ``PRESERVE_*`` environment variables,
which win over the file. This is the only module that reads the environment;
everything else is handed a :class:`Settings`.
"""

from __future__ import annotations

import getpass
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from preserve import __version__
from preserve.errors import BadInput, ConfigError

DEFAULT_HOME = "preserve-data"
DEFAULT_LOCATION = "local"
DEFAULT_MAX_RESOURCE_BYTES = 100 * 1024 * 1024
DEFAULT_TIMEOUT_SECONDS = 30.0
DEFAULT_WARC_SIZE = 1024 * 1024 * 1024  # roll over to a new WARC file past 1 GiB
DEFAULT_CONCURRENCY = 8  # fetches in flight at once, all hosts together
DEFAULT_RETRIES = 2  # after the first attempt: timeouts, connection errors, 429, 5xx
DEFAULT_RETRY_BACKOFF_SECONDS = 1.0  # doubled at each retry, or Retry-After if longer
DEFAULT_USER_AGENT = f"preserve/{__version__} (archival capture)"

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}

# Keys of preserve.yaml that this version reads; anything else is an error,
# so a typo never silently falls back to a default.
_TOP_KEYS = {"database", "policies", "storage", "capture", "operator", "workers", "auth",
             "replay"}
_REPLAY_KEYS = {"url", "wayback"}
DEFAULT_REPLAY_URL = "http://127.0.0.1:8090"
_AUTH_KEYS = {"tokens"}
_TOKEN_KEYS = {"name", "role", "sha256"}
# What each role may do over HTTP: researchers read; archivists also capture; auditors
# also audit; admins everything.
ROLES = ("researcher", "archivist", "auditor", "admin")
_WORKERS_KEYS = {"backend", "broker_url", "queue", "threads"}
WORKER_BACKENDS = ("local", "celery")
DEFAULT_BROKER_URL = "redis://127.0.0.1:6379/0"
DEFAULT_WORKER_THREADS = 2
_STORAGE_KEYS = {"locations", "default_copies"}
_CAPTURE_KEYS = {"allow_private_addresses", "timeout_seconds", "max_resource_bytes", "user_agent",
                 "warc_size", "concurrency", "retries", "retry_backoff_seconds"}
_LOCATION_KEYS = {"filesystem": {"type", "path"},
                  "s3": {"type", "bucket", "prefix", "endpoint_url", "region",
                         "addressing_style", "retention_mode"}}
ADDRESSING_STYLES = ("auto", "path", "virtual")
_SECRET_WORDS = ("secret", "access_key", "password", "credential", "token")
RETENTION_MODES = ("GOVERNANCE", "COMPLIANCE")


@dataclass(frozen=True)
class Location:
    """A named storage location: a folder (``filesystem``) or a bucket (``s3``).

    S3 credentials are never here: boto3 finds them in the standard AWS
    variables, profiles and instance roles.
    """

    name: str
    type: str
    path: Path | None = None  # filesystem
    bucket: str = ""  # s3, from here on
    prefix: str = ""
    endpoint_url: str | None = None  # None: AWS itself
    region: str | None = None
    addressing_style: str = "auto"
    retention_mode: str = "GOVERNANCE"  # for buckets with Object Lock

    def describe(self) -> str:
        """Where the location is, in a few words (for tables and messages)."""
        if self.type == "filesystem":
            return str(self.path)
        where = self.endpoint_url or "AWS"
        return f"s3://{self.bucket}/{self.prefix} at {where}"


@dataclass(frozen=True)
class CaptureSettings:
    """Limits and switches that apply to every capture."""

    allow_private_addresses: bool = False
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    max_resource_bytes: int = DEFAULT_MAX_RESOURCE_BYTES
    user_agent: str = DEFAULT_USER_AGENT
    warc_size: int = DEFAULT_WARC_SIZE
    concurrency: int = DEFAULT_CONCURRENCY
    retries: int = DEFAULT_RETRIES
    retry_backoff_seconds: float = DEFAULT_RETRY_BACKOFF_SECONDS


@dataclass(frozen=True)
class Token:
    """Who may use the HTTP API: a name, a role, and the SHA-256 of the token (never the token)."""

    name: str
    role: str
    sha256: str


@dataclass(frozen=True)
class WorkerSettings:
    """Who runs scheduled jobs: threads of the scheduler (local) or Celery workers."""

    backend: str = "local"
    broker_url: str = DEFAULT_BROKER_URL  # Redis, or amqp:// for RabbitMQ
    queue: str = "preserve"
    threads: int = DEFAULT_WORKER_THREADS  # jobs at once, per scheduler or worker


@dataclass(frozen=True)
class ReplaySettings:
    """Replay through pywb (``preserve replay``): where researchers reach it, and pywb's
    ``wayback`` command (None: on PATH, or in the project's .venv-tools)."""

    url: str = DEFAULT_REPLAY_URL
    wayback: str | None = None


@dataclass(frozen=True)
class Settings:
    """Everything the service needs to know about where it lives and what it may do."""

    home: Path
    database_url: str
    policies_dir: Path
    locations: Mapping[str, Location]
    default_copies: tuple[str, ...]
    operator: str
    capture: CaptureSettings = field(default_factory=CaptureSettings)
    workers: WorkerSettings = field(default_factory=WorkerSettings)
    tokens: tuple[Token, ...] = ()
    replay: ReplaySettings = field(default_factory=lambda: ReplaySettings())

    @property
    def work_dir(self) -> Path:
        """Scratch space for WARC files being written and commands' private folders
        (:mod:`preserve.workdir` says what becomes of what a stopped command left)."""
        return self.home / "work"

    def with_capture(self, **changes: Any) -> Settings:
        """A copy with some capture settings changed (used by the CLI and the demo)."""
        return replace(self, capture=replace(self.capture, **changes))


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read settings from the environment and the optional preserve.yaml."""
    env = os.environ if environ is None else environ
    home = Path(env.get("PRESERVE_HOME") or DEFAULT_HOME).expanduser().absolute()
    config_path = Path(env["PRESERVE_CONFIG"]) if env.get("PRESERVE_CONFIG") else None
    if config_path is None and (home / "preserve.yaml").is_file():
        config_path = home / "preserve.yaml"
    data = _read_yaml(config_path) if config_path else {}
    where = str(config_path) if config_path else "settings"
    _check_keys(data, _TOP_KEYS, where, "")

    storage = _section(data, "storage", _STORAGE_KEYS, where)
    capture = _section(data, "capture", _CAPTURE_KEYS, where)
    workers = _section(data, "workers", _WORKERS_KEYS, where)
    auth = _section(data, "auth", _AUTH_KEYS, where)
    replay = _section(data, "replay", _REPLAY_KEYS, where)

    locations = _locations(storage.get("locations"), home, where)
    copies = storage.get("default_copies", [DEFAULT_LOCATION])
    if not isinstance(copies, list) or not copies or not all(isinstance(c, str) for c in copies):
        raise ConfigError(f"{where}: storage.default_copies must be a non-empty list of names")
    for name in copies:
        if name not in locations:
            raise ConfigError(f"{where}: storage.default_copies names unknown location {name!r}")

    allow_private = _bool(capture.get("allow_private_addresses", False), where,
                          "capture.allow_private_addresses")
    if "PRESERVE_ALLOW_PRIVATE_ADDRESSES" in env:
        allow_private = _bool(env["PRESERVE_ALLOW_PRIVATE_ADDRESSES"], "environment",
                              "PRESERVE_ALLOW_PRIVATE_ADDRESSES")

    capture_settings = CaptureSettings(
        allow_private_addresses=allow_private,
        timeout_seconds=_positive(capture.get("timeout_seconds", DEFAULT_TIMEOUT_SECONDS),
                                  where, "capture.timeout_seconds"),
        max_resource_bytes=int(_positive(
            capture.get("max_resource_bytes", DEFAULT_MAX_RESOURCE_BYTES),
            where, "capture.max_resource_bytes")),
        user_agent=str(capture.get("user_agent", DEFAULT_USER_AGENT)),
        warc_size=int(_positive(capture.get("warc_size", DEFAULT_WARC_SIZE), where,
                                "capture.warc_size")),
        concurrency=max(1, _whole(capture.get("concurrency", DEFAULT_CONCURRENCY), where,
                                  "capture.concurrency")),
        retries=_whole(env.get("PRESERVE_RETRIES", capture.get("retries", DEFAULT_RETRIES)),
                       where, "capture.retries"),
        retry_backoff_seconds=_positive(
            _number(env.get("PRESERVE_RETRY_BACKOFF_SECONDS",
                            capture.get("retry_backoff_seconds",
                                        DEFAULT_RETRY_BACKOFF_SECONDS))),
            where, "capture.retry_backoff_seconds"),
    )
    database_url = (env.get("PRESERVE_DATABASE_URL") or data.get("database")
                    or f"sqlite:///{home / 'catalog.db'}")
    policies = Path(env.get("PRESERVE_POLICIES") or data.get("policies") or "policies")
    operator = env.get("PRESERVE_OPERATOR") or data.get("operator") or _login_name()
    backend = str(env.get("PRESERVE_WORKERS_BACKEND") or workers.get("backend", "local"))
    if backend not in WORKER_BACKENDS:
        raise ConfigError(f"{where}: workers.backend must be one of "
                          f"{', '.join(WORKER_BACKENDS)}, not {backend!r}")
    worker_settings = WorkerSettings(
        backend=backend,
        broker_url=str(env.get("PRESERVE_BROKER_URL") or workers.get("broker_url")
                       or DEFAULT_BROKER_URL),
        queue=str(env.get("PRESERVE_WORKERS_QUEUE") or workers.get("queue") or "preserve"),
        threads=max(1, _whole(workers.get("threads", DEFAULT_WORKER_THREADS), where,
                              "workers.threads")),
    )
    return Settings(
        home=home,
        database_url=str(database_url),
        policies_dir=policies,
        locations=locations,
        default_copies=tuple(copies),
        operator=str(operator),
        capture=capture_settings,
        workers=worker_settings,
        tokens=_tokens(auth.get("tokens", []), where),
        replay=ReplaySettings(
            url=_http_url(env.get("PRESERVE_REPLAY_URL") or replay.get("url")
                          or DEFAULT_REPLAY_URL, where, "replay.url"),
            wayback=env.get("PRESERVE_WAYBACK") or replay.get("wayback")),
    )


def _http_url(value: Any, where: str, key: str) -> str:
    text = str(value).rstrip("/")
    if not re.fullmatch(r"https?://[^/\s]+(/\S*)?", text):
        raise ConfigError(f"{where}: {key} must be an http or https URL, not {value!r}")
    return text


def _tokens(raw: Any, where: str) -> tuple[Token, ...]:
    if not isinstance(raw, list):
        raise ConfigError(f"{where}: auth.tokens must be a list of {{name, role, sha256}}")
    tokens: list[Token] = []
    for index, entry in enumerate(raw):
        key = f"auth.tokens[{index}]"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where}: {key} must be a mapping of name, role and sha256")
        _check_keys(entry, _TOKEN_KEYS, where, f"{key}.")
        name, role, digest = (str(entry.get(k, "")).strip() for k in ("name", "role", "sha256"))
        if not name:
            raise ConfigError(f"{where}: {key}.name is required")
        if role not in ROLES:
            raise ConfigError(f"{where}: {key}.role must be one of {', '.join(ROLES)}, "
                              f"not {role!r}")
        if not re.fullmatch(r"[0-9a-f]{64}", digest.lower()):
            raise ConfigError(f"{where}: {key}.sha256 must be the 64 hex digits of the "
                              "token's SHA-256 (preserve token new makes both)")
        if any(token.sha256 == digest.lower() for token in tokens):
            raise ConfigError(f"{where}: {key}: the same token as another entry")
        tokens.append(Token(name, role, digest.lower()))
    return tuple(tokens)


def read_yaml(path: Path, error: type[BadInput], what: str) -> Any:
    """Safely load a YAML file; ``error`` names the file, and the line when YAML gives one."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise error(f"{path}: cannot read {what}: {exc.strerror}") from exc
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        problem = getattr(exc, "problem", None) or "cannot be parsed"
        raise error(f"{where}: not valid YAML: {problem}") from exc


def _read_yaml(path: Path) -> dict[str, Any]:
    data = read_yaml(path, ConfigError, "settings file")
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: settings must be a mapping of keys, not {type(data).__name__}")
    return data


def _check_keys(data: Mapping[str, Any], allowed: set[str], where: str, prefix: str) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ConfigError(
            f"{where}: unknown key {prefix}{unknown[0]} (known: {', '.join(sorted(allowed))})"
        )


def _section(data: Mapping[str, Any], name: str, allowed: set[str], where: str) -> dict[str, Any]:
    value = data.get(name) or {}
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: {name} must be a mapping")
    _check_keys(value, allowed, where, f"{name}.")
    return value


def _locations(raw: Any, home: Path, where: str) -> dict[str, Location]:
    if raw is None:
        return {DEFAULT_LOCATION: Location(DEFAULT_LOCATION, "filesystem", home / "objects")}
    if not isinstance(raw, dict) or not raw:
        raise ConfigError(f"{where}: storage.locations must be a mapping of named locations")
    locations = {}
    for name, spec in raw.items():
        key = f"storage.locations.{name}"
        if not isinstance(spec, dict):
            raise ConfigError(f"{where}: {key} must be a mapping")
        kind = spec.get("type")
        if kind not in _LOCATION_KEYS:
            raise ConfigError(f"{where}: {key}.type {kind!r} is not supported "
                              f"(supported: {', '.join(_LOCATION_KEYS)})")
        secrets = sorted(k for k in spec if any(word in str(k).lower() for word in _SECRET_WORDS))
        if secrets:
            raise ConfigError(f"{where}: {key}.{secrets[0]}: credentials never go in the "
                              "settings file; boto3 reads them from the AWS_* variables or "
                              "an AWS profile")
        _check_keys(spec, _LOCATION_KEYS[kind], where, f"{key}.")
        locations[str(name)] = (_filesystem(str(name), spec, where, key) if kind == "filesystem"
                                else _s3(str(name), spec, where, key))
    return locations


def _filesystem(name: str, spec: dict[str, Any], where: str, key: str) -> Location:
    if not spec.get("path"):
        raise ConfigError(f"{where}: {key}.path is required for a filesystem location")
    return Location(name, "filesystem", Path(str(spec["path"])).expanduser().absolute())


def _s3(name: str, spec: dict[str, Any], where: str, key: str) -> Location:
    def text(field: str) -> str:
        value = spec.get(field)
        if value is None:
            return ""
        if not isinstance(value, str):
            raise ConfigError(f"{where}: {key}.{field} must be text, not {value!r}")
        return value.strip()

    bucket = text("bucket")
    if not bucket:
        raise ConfigError(f"{where}: {key}.bucket is required for an s3 location")
    endpoint = text("endpoint_url") or None
    if endpoint is not None and not endpoint.startswith(("http://", "https://")):
        raise ConfigError(f"{where}: {key}.endpoint_url must start with http:// or https://, "
                          f"not {endpoint!r}")
    style = text("addressing_style") or "auto"
    if style not in ADDRESSING_STYLES:
        raise ConfigError(f"{where}: {key}.addressing_style must be one of "
                          f"{', '.join(ADDRESSING_STYLES)}, not {style!r}")
    mode = (text("retention_mode") or "GOVERNANCE").upper()
    if mode not in RETENTION_MODES:
        raise ConfigError(f"{where}: {key}.retention_mode must be one of "
                          f"{', '.join(RETENTION_MODES)}, not {mode!r}")
    prefix = text("prefix").strip("/")
    return Location(name, "s3", bucket=bucket, prefix=f"{prefix}/" if prefix else "",
                    endpoint_url=endpoint, region=text("region") or None,
                    addressing_style=style, retention_mode=mode)


def _bool(value: Any, where: str, key: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ConfigError(f"{where}: {key} must be true or false, not {value!r}")


def _positive(value: Any, where: str, key: str) -> float:
    if (isinstance(value, bool) or not isinstance(value, int | float) or value <= 0
            or not math.isfinite(value)):
        raise ConfigError(f"{where}: {key} must be a positive number, not {value!r}")
    return float(value)


def _number(value: Any) -> Any:
    """Numbers from the environment arrive as text."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def _whole(value: Any, where: str, key: str) -> int:
    number = _number(value)
    if isinstance(number, bool) or not isinstance(number, int | float) or number < 0 or (
            not float(number).is_integer()):
        raise ConfigError(f"{where}: {key} must be a whole number, 0 or more, not {value!r}")
    return int(number)


def _login_name() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
