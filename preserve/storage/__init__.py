"""Object storage: the protocol every backend keeps, and the backends."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from preserve.errors import ConfigError
from preserve.storage.base import ObjectInfo, ObjectStore
from preserve.storage.filesystem import FilesystemStore

if TYPE_CHECKING:
    from sqlalchemy import Engine

    # Deep audits' worker processes unpickle stores, importing this package: the
    # settings' module (and YAML) stays out of them.
    from preserve.config import Location

__all__ = ["FilesystemStore", "ObjectInfo", "ObjectStore", "expect_copies", "open_store",
           "open_stores"]


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


def expect_copies(engine: Engine, stores: Iterable[ObjectStore]) -> None:
    """Tell each folder location whether the catalog holds copies in it. One that does
    then makes sure its folder is in place (there, and not an empty mount point) before
    reading or writing, instead of making a new folder where a disk is not mounted, or
    finding every copy missing."""
    from preserve.catalog import locations_holding_copies

    folders = [store for store in stores if isinstance(store, FilesystemStore)]
    if not folders:
        return
    with engine.connect() as connection:
        holding = locations_holding_copies(connection, [store.name for store in folders])
    for store in folders:
        store.holds_copies = store.name in holding
