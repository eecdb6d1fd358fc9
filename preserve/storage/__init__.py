"""Object storage: the protocol every backend keeps, and the backends."""

from __future__ import annotations

from collections.abc import Mapping

from preserve.config import Location
from preserve.errors import ConfigError
from preserve.storage.base import ObjectInfo, ObjectStore
from preserve.storage.filesystem import FilesystemStore

__all__ = ["FilesystemStore", "ObjectInfo", "ObjectStore", "open_store", "open_stores"]


def open_store(location: Location) -> ObjectStore:
    """The store for a configured location."""
    if location.type == "filesystem" and location.path is not None:
        return FilesystemStore(location.name, location.path)
    if location.type == "s3":
        from preserve.storage.s3 import S3Store  # boto3 is imported only when it is used

        return S3Store(location)
    raise ConfigError(f"storage location {location.name!r}: unsupported type {location.type!r}")


def open_stores(locations: Mapping[str, Location]) -> dict[str, ObjectStore]:
    """A store for every configured location, by name (for reads and audits)."""
    return {name: open_store(location) for name, location in locations.items()}
