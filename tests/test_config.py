"""Settings from PRESERVE_* variables and preserve.yaml; every mistake is a named ConfigError."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from preserve.config import (
    DEFAULT_MAX_RESOURCE_BYTES,
    DEFAULT_TIMEOUT_SECONDS,
    Location,
    load_settings,
)
from preserve.errors import ConfigError


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults(tmp_path: Path) -> None:
    home = tmp_path / "home"

    settings = load_settings({"PRESERVE_HOME": str(home), "PRESERVE_OPERATOR": "archivist"})

    assert settings.home == home
    assert settings.home.is_absolute()
    assert settings.database_url == f"sqlite:///{home / 'catalog.db'}"
    assert settings.locations == {"local": Location("local", "filesystem", home / "objects")}
    assert settings.default_copies == ("local",)
    assert settings.operator == "archivist"
    assert settings.work_dir == home / "work"
    assert settings.capture.allow_private_addresses is False
    assert settings.capture.timeout_seconds == DEFAULT_TIMEOUT_SECONDS
    assert settings.capture.max_resource_bytes == DEFAULT_MAX_RESOURCE_BYTES


def test_relative_home_becomes_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)

    settings = load_settings({"PRESERVE_HOME": "relative/home"})

    assert settings.home == tmp_path / "relative" / "home"
    assert settings.locations["local"].path == tmp_path / "relative" / "home" / "objects"


@pytest.mark.parametrize(("value", "expected"), [
    ("1", True), ("true", True), ("TRUE", True), ("yes", True), (" on ", True),
    ("0", False), ("false", False), ("no", False), ("", False),
])
def test_allow_private_addresses_from_the_environment(tmp_path: Path, value: str,
                                                      expected: bool) -> None:
    settings = load_settings({"PRESERVE_HOME": str(tmp_path),
                              "PRESERVE_ALLOW_PRIVATE_ADDRESSES": value})

    assert settings.capture.allow_private_addresses is expected


@pytest.mark.parametrize("value", ["maybe", "2", "enable"])
def test_bad_allow_private_addresses_names_the_variable(tmp_path: Path, value: str) -> None:
    with pytest.raises(ConfigError, match="PRESERVE_ALLOW_PRIVATE_ADDRESSES") as caught:
        load_settings({"PRESERVE_HOME": str(tmp_path),
                       "PRESERVE_ALLOW_PRIVATE_ADDRESSES": value})
    assert repr(value) in str(caught.value)


def test_settings_file_from_preserve_config(tmp_path: Path) -> None:
    config = write(tmp_path / "etc" / "settings.yaml", f"""
database: sqlite:///{tmp_path}/other.db
operator: night-shift
storage:
  locations:
    primary: {{type: filesystem, path: {tmp_path}/primary}}
    mirror: {{type: filesystem, path: {tmp_path}/mirror}}
  default_copies: [primary, mirror]
capture:
  allow_private_addresses: true
  timeout_seconds: 2.5
  max_resource_bytes: 1000
  user_agent: test-agent/1
""")
    # A file in the home is not read when PRESERVE_CONFIG names another.
    write(tmp_path / "home" / "preserve.yaml", "not_a_key: 1\n")

    settings = load_settings({"PRESERVE_HOME": str(tmp_path / "home"),
                              "PRESERVE_CONFIG": str(config)})

    assert settings.database_url == f"sqlite:///{tmp_path}/other.db"
    assert settings.operator == "night-shift"
    assert settings.locations == {
        "primary": Location("primary", "filesystem", tmp_path / "primary"),
        "mirror": Location("mirror", "filesystem", tmp_path / "mirror"),
    }
    assert settings.default_copies == ("primary", "mirror")
    assert settings.capture.allow_private_addresses is True
    assert settings.capture.timeout_seconds == 2.5
    assert settings.capture.max_resource_bytes == 1000
    assert settings.capture.user_agent == "test-agent/1"


def test_settings_file_in_the_home(tmp_path: Path) -> None:
    home = tmp_path / "home"
    write(home / "preserve.yaml", "capture:\n  timeout_seconds: 7\n")

    settings = load_settings({"PRESERVE_HOME": str(home)})

    assert settings.capture.timeout_seconds == 7.0


def test_environment_wins_over_the_file(tmp_path: Path) -> None:
    home = tmp_path / "home"
    write(home / "preserve.yaml", "database: sqlite:///file.db\noperator: from-file\n"
                                  "capture:\n  allow_private_addresses: true\n")

    settings = load_settings({"PRESERVE_HOME": str(home),
                              "PRESERVE_DATABASE_URL": "sqlite:///env.db",
                              "PRESERVE_OPERATOR": "from-env",
                              "PRESERVE_ALLOW_PRIVATE_ADDRESSES": "0"})

    assert settings.database_url == "sqlite:///env.db"
    assert settings.operator == "from-env"
    assert settings.capture.allow_private_addresses is False


def test_an_empty_settings_file_gives_the_defaults(tmp_path: Path) -> None:
    home = tmp_path / "home"
    write(home / "preserve.yaml", "# nothing set yet\n")

    settings = load_settings({"PRESERVE_HOME": str(home)})

    assert settings.default_copies == ("local",)


def config_error(tmp_path: Path, text: str) -> tuple[str, Path]:
    """The message of the ConfigError that a preserve.yaml with ``text`` gives."""
    path = write(tmp_path / "home" / "preserve.yaml", text)
    with pytest.raises(ConfigError) as caught:
        load_settings({"PRESERVE_HOME": str(tmp_path / "home")})
    return str(caught.value), path


def test_unknown_top_level_key_names_key_and_file(tmp_path: Path) -> None:
    message, path = config_error(tmp_path, "databse: sqlite:///x.db\n")

    assert str(path) in message
    assert "unknown key databse" in message


def test_unknown_capture_key_names_key_and_file(tmp_path: Path) -> None:
    message, path = config_error(tmp_path, "capture:\n  timout_seconds: 5\n")

    assert str(path) in message
    assert "unknown key capture.timout_seconds" in message


def test_invalid_yaml_names_file_and_line(tmp_path: Path) -> None:
    # The bad indentation is on line 4.
    message, path = config_error(tmp_path, "operator: me\ncapture:\n  timeout_seconds: 5\n"
                                           "   user_agent: x\n")

    first_line = message.splitlines()[0]
    assert first_line.startswith(str(path))
    assert first_line.startswith(f"{path}:4: ")
    assert "not valid YAML" in first_line


def test_a_settings_file_that_is_not_a_mapping(tmp_path: Path) -> None:
    message, path = config_error(tmp_path, "- just\n- a list\n")

    assert str(path) in message
    assert "mapping" in message


def test_s3_locations(tmp_path: Path) -> None:
    write(tmp_path / "home" / "preserve.yaml", """
storage:
  locations:
    local: {type: filesystem, path: objects}
    offsite: {type: s3, bucket: archive, prefix: /preserve/, endpoint_url: "http://127.0.0.1:9000",
              region: eu-west-1, addressing_style: path, retention_mode: compliance}
    aws: {type: s3, bucket: other}
  default_copies: [local, offsite]
""")
    settings = load_settings({"PRESERVE_HOME": str(tmp_path / "home")})

    assert settings.locations["offsite"] == Location(
        "offsite", "s3", bucket="archive", prefix="preserve/", endpoint_url="http://127.0.0.1:9000",
        region="eu-west-1", addressing_style="path", retention_mode="COMPLIANCE")
    assert settings.locations["aws"] == Location("aws", "s3", bucket="other")
    assert settings.default_copies == ("local", "offsite")


@pytest.mark.parametrize(("spec", "expected"), [
    ("{type: tape}", r"storage.locations.x.type 'tape' is not supported \(supported: "
                     r"filesystem, s3\)"),
    ("{type: s3}", r"storage.locations.x.bucket is required"),
    ("{type: s3, bucket: b, endpoint_url: 127.0.0.1:9000}",
     r"storage.locations.x.endpoint_url must start with http:// or https://"),
    ("{type: s3, bucket: b, addressing_style: dns}",
     r"storage.locations.x.addressing_style must be one of auto, path, virtual"),
    ("{type: s3, bucket: b, retention_mode: forever}",
     r"storage.locations.x.retention_mode must be one of GOVERNANCE, COMPLIANCE"),
    ("{type: s3, bucket: b, aws_secret_access_key: s}",
     r"storage.locations.x.aws_secret_access_key: credentials never go in the settings file"),
    ("{type: s3, bucket: [b]}", r"storage.locations.x.bucket must be text"),
    ("{type: filesystem, path: p, bucket: b}", r"unknown key storage.locations.x.bucket"),
])
def test_bad_locations_are_named(tmp_path: Path, spec: str, expected: str) -> None:
    message, path = config_error(tmp_path, f"storage:\n  locations:\n    x: {spec}\n"
                                           "  default_copies: [x]\n")
    assert str(path) in message
    assert re.search(expected, message), message


def test_filesystem_location_needs_a_path(tmp_path: Path) -> None:
    message, _ = config_error(tmp_path, "storage:\n  locations:\n    disk: {type: filesystem}\n"
                                        "  default_copies: [disk]\n")

    assert "storage.locations.disk.path" in message


def test_default_copies_naming_an_unknown_location(tmp_path: Path) -> None:
    message, path = config_error(tmp_path, f"""
storage:
  locations:
    primary: {{type: filesystem, path: {tmp_path}/primary}}
  default_copies: [primary, offsite]
""")

    assert str(path) in message
    assert "default_copies" in message
    assert "'offsite'" in message


@pytest.mark.parametrize("value", ["-1", "0", "'30'", "true"])
def test_timeout_must_be_a_positive_number(tmp_path: Path, value: str) -> None:
    message, path = config_error(tmp_path, f"capture:\n  timeout_seconds: {value}\n")

    assert str(path) in message
    assert "capture.timeout_seconds" in message
    assert "positive" in message


def test_bad_allow_private_addresses_in_the_file(tmp_path: Path) -> None:
    message, path = config_error(tmp_path, "capture:\n  allow_private_addresses: sometimes\n")

    assert str(path) in message
    assert "capture.allow_private_addresses" in message


def test_a_missing_preserve_config_file_is_an_error(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.yaml"

    with pytest.raises(ConfigError, match=re.escape(str(missing))):
        load_settings({"PRESERVE_HOME": str(tmp_path), "PRESERVE_CONFIG": str(missing)})


def cli_error(run: Callable[..., Any], text: str) -> tuple[Any, Path]:
    path = write(Path(os.environ["PRESERVE_HOME"]) / "preserve.yaml", text)
    return run("list", "http://example.com/"), path


def test_cli_reports_a_bad_config_on_one_line_with_status_2(run: Callable[..., Any]) -> None:
    result, path = cli_error(run, "capture:\n  timout_seconds: 5\n")

    assert result.status == 2
    assert result.out == b""
    assert result.err.count("\n") == 1
    assert result.err.startswith("preserve: error: ")
    assert str(path) in result.err
    assert "capture.timout_seconds" in result.err


def test_cli_reports_invalid_yaml_on_one_line(run: Callable[..., Any]) -> None:
    result, path = cli_error(run, "capture:\n  timeout_seconds: [1\n")

    assert result.status == 2
    assert str(path) in result.err
    assert result.err.count("\n") == 1, result.err


def test_the_compose_stack_settings_are_valid_and_match_the_compose_file() -> None:
    import yaml

    root = Path(__file__).parent.parent
    compose = yaml.safe_load((root / "docker-compose.yml").read_text())
    preserve = compose["services"]["preserve"]
    mount = next(volume for volume in preserve["volumes"] if "preserve.yaml" in volume)
    source, target = mount.split(":")[:2]
    assert preserve["environment"]["PRESERVE_CONFIG"] == target
    settings = load_settings({"PRESERVE_CONFIG": str(root / source),
                              "PRESERVE_HOME": "/data"})
    offsite = settings.locations["offsite"]
    assert settings.default_copies == ("local", "offsite")
    assert offsite.endpoint_url is not None and "//s3:" in offsite.endpoint_url
    assert "s3" in compose["services"] and "redis" in compose["services"]
    assert f"/s3/{offsite.bucket}" in " ".join(compose["services"]["s3"]["entrypoint"])


def test_the_compose_scheduler_and_worker_share_policies_settings_and_broker() -> None:
    import yaml

    from preserve.cli import build_parser

    root = Path(__file__).parent.parent
    services = yaml.safe_load((root / "docker-compose.yml").read_text())["services"]
    scheduler, preserve = services["scheduler"], services["preserve"]
    assert build_parser().parse_args(scheduler["command"]).command == "scheduler"
    mounts = dict(volume.split(":")[1::-1] for volume in scheduler["volumes"])
    assert mounts[scheduler["environment"]["PRESERVE_POLICIES"]] == "./policies"
    assert (root / "policies").is_dir()
    for name in ("PRESERVE_HOME", "PRESERVE_CONFIG", "PRESERVE_DATABASE_URL"):
        assert scheduler["environment"][name] == preserve["environment"][name]
    assert scheduler["image"] == preserve["image"]
    worker = services["worker"]
    assert build_parser().parse_args(worker["command"]).command == "worker"
    for service in (scheduler, worker):
        assert service["environment"]["PRESERVE_WORKERS_BACKEND"] == "celery"
        assert service["environment"]["PRESERVE_BROKER_URL"].startswith("redis://redis:")
        assert "redis" in service["depends_on"]
    assert worker["volumes"] == scheduler["volumes"]
    api = services["api"]
    served = build_parser().parse_args(api["command"])
    assert served.command == "serve" and served.no_scheduler
    assert api["ports"] == [f"127.0.0.1:{served.port}:{served.port}"]
    assert api["environment"]["PRESERVE_DATABASE_URL"] == (
        preserve["environment"]["PRESERVE_DATABASE_URL"])
    assert worker["environment"]["PRESERVE_DATABASE_URL"] == (
        preserve["environment"]["PRESERVE_DATABASE_URL"])
    # Replay: pywb on the port the API's pages link to, over the same catalog and storage.
    replay = services["replay"]
    replaying = build_parser().parse_args(replay["command"])
    assert replaying.command == "replay"
    assert replay["ports"] == [f"127.0.0.1:{replaying.port}:{replaying.port}"]
    assert load_settings({}).replay.url == f"http://127.0.0.1:{replaying.port}"
    assert replay["volumes"] == api["volumes"]
    assert replay["environment"]["PRESERVE_DATABASE_URL"] == (
        preserve["environment"]["PRESERVE_DATABASE_URL"])
    dockerfile = (root / "Dockerfile").read_text()
    assert "PRESERVE_WAYBACK=/opt/pywb/bin/wayback" in dockerfile
    assert "/opt/pywb/bin/pip install" in dockerfile


def test_worker_settings_from_the_file_and_the_environment(tmp_path: Path) -> None:
    config = write(tmp_path / "preserve.yaml", "workers:\n  backend: celery\n"
                   "  broker_url: amqp://guest@127.0.0.1:5672//\n  queue: archive\n  threads: 4\n")

    default = load_settings({"PRESERVE_HOME": str(tmp_path / "other")}).workers
    from_file = load_settings({"PRESERVE_CONFIG": str(config)}).workers
    from_env = load_settings({"PRESERVE_CONFIG": str(config), "PRESERVE_WORKERS_BACKEND": "local",
                              "PRESERVE_BROKER_URL": "redis://127.0.0.1:6379/3",
                              "PRESERVE_WORKERS_QUEUE": "night"}).workers

    assert (default.backend, default.broker_url, default.queue, default.threads) == (
        "local", "redis://127.0.0.1:6379/0", "preserve", 2)
    assert (from_file.backend, from_file.broker_url, from_file.queue, from_file.threads) == (
        "celery", "amqp://guest@127.0.0.1:5672//", "archive", 4)
    assert (from_env.backend, from_env.broker_url, from_env.queue) == (
        "local", "redis://127.0.0.1:6379/3", "night")


@pytest.mark.parametrize(("text", "message"), [
    ("workers:\n  backend: rq\n", "workers.backend must be one of local, celery, not 'rq'"),
    ("workers:\n  concurrency: 3\n", "unknown key workers.concurrency"),
    ("workers:\n  threads: -1\n", "workers.threads"),
])
def test_bad_worker_settings(tmp_path: Path, text: str, message: str) -> None:
    config = write(tmp_path / "preserve.yaml", text)

    with pytest.raises(ConfigError, match=re.escape(message)):
        load_settings({"PRESERVE_CONFIG": str(config)})


@pytest.mark.parametrize(("text", "message"), [
    ("auth:\n  tokens: x\n", "auth.tokens must be a list"),
    ("auth:\n  tokens:\n    - {name: a, role: boss, sha256: " + "a" * 64 + "}\n",
     "auth.tokens[0].role must be one of researcher, archivist, auditor, admin, not 'boss'"),
    ("auth:\n  tokens:\n    - {name: a, role: admin, sha256: secret}\n",
     "auth.tokens[0].sha256 must be the 64 hex digits"),
    ("auth:\n  tokens:\n    - {name: a, role: admin, token: x, sha256: " + "a" * 64 + "}\n",
     "unknown key auth.tokens[0].token"),
    ("auth:\n  tokens:\n    - {name: a, role: admin, sha256: " + "a" * 64 + "}\n"
     "    - {name: b, role: admin, sha256: " + "A" * 64 + "}\n", "the same token as another"),
])
def test_bad_tokens(tmp_path: Path, text: str, message: str) -> None:
    config = write(tmp_path / "preserve.yaml", text)

    with pytest.raises(ConfigError, match=re.escape(message)):
        load_settings({"PRESERVE_CONFIG": str(config)})


def test_replay_settings(tmp_path: Path) -> None:
    config = write(tmp_path / "preserve.yaml", "replay:\n  url: https://replay.example.org/\n"
                   "  wayback: /opt/pywb/bin/wayback\n")
    bad = write(tmp_path / "bad.yaml", "replay:\n  url: replay.example.org\n")

    assert load_settings({"PRESERVE_HOME": str(tmp_path / "x")}).replay.url == (
        "http://127.0.0.1:8090")
    replay = load_settings({"PRESERVE_CONFIG": str(config)}).replay
    assert (replay.url, replay.wayback) == ("https://replay.example.org",
                                            "/opt/pywb/bin/wayback")
    assert load_settings({"PRESERVE_CONFIG": str(config),
                          "PRESERVE_REPLAY_URL": "http://127.0.0.1:9000"}).replay.url == (
        "http://127.0.0.1:9000")
    with pytest.raises(ConfigError, match=r"bad.yaml: replay.url must be an http or https "
                                          r"URL, not 'replay.example.org'"):
        load_settings({"PRESERVE_CONFIG": str(bad)})
