"""The one exception hierarchy of preserve.

Every error a person can meet carries a readable message that names what was
wrong and where (file, key, URL, object), and an exit status for the CLI::

    PreserveError                    exit 1: something failed while working
    ├── BadInput                     exit 2: the request itself is wrong
    │   ├── ConfigError              preserve.yaml or PRESERVE_* settings
    │   ├── PolicyError              a policies/*.yaml file
    │   ├── UnsupportedURL           not http(s), no host, malformed
    │   ├── AddressRefused           private, loopback or link-local target
    │   ├── FetchError               the target could not be fetched at all
    │   ├── TooLarge                 a body over max_resource_bytes
    │   └── NotFound                 no capture / object matches the request
    ├── StorageError                 an object store could not do what was asked
    │   ├── Unreachable              the whole location (NotInPlace: a folder's disk)
    │   ├── ObjectMissing            no object under that key
    │   ├── DigestMismatch           bytes written or read do not match the digest
    │   └── ObjectExists             a different object already has that key
    ├── CatalogError                 the database could not be read or written
    └── WarcError                    a WARC file or record could not be read

Library errors (warcio, SQLAlchemy, yaml, OSError) are translated into these in
the module that wraps the library, with ``raise Mapped(...) from exc``.
"""

from __future__ import annotations


class PreserveError(Exception):
    """Base of every error preserve raises on purpose."""

    exit_status = 1


class BadInput(PreserveError):
    """The request is wrong: bad usage, bad settings, bad target. Exit 2."""

    exit_status = 2


class ConfigError(BadInput):
    """A setting in preserve.yaml or the environment is invalid."""


class PolicyError(BadInput):
    """A policy file is invalid."""


class UnsupportedURL(BadInput):
    """The URL cannot be captured: not http(s), no host, or malformed."""


class AddressRefused(BadInput):
    """The URL resolves to a private, loopback or link-local address."""


class FetchError(BadInput):
    """The target could not be fetched: unknown host, refused, timed out."""


class TooLarge(BadInput):
    """A body is larger than the configured limit."""


class NotFound(BadInput):
    """Nothing in the catalog matches the request."""


class StorageError(PreserveError):
    """An object store operation failed."""


class Unreachable(StorageError):
    """The location's endpoint cannot be reached at all: not one object's failure."""


class NotInPlace(Unreachable):
    """A folder location whose folder is not there, or is empty where the catalog holds
    copies (a disk not mounted): trying again in a second or two cannot help."""


class ObjectMissing(StorageError):
    """No object exists under the key."""

    def __init__(self, location: str, key: str) -> None:
        super().__init__(f"object {key!r} is missing from location {location!r}")
        self.location = location
        self.key = key


class DigestMismatch(StorageError):
    """Bytes do not match the SHA-256 they were expected to have."""

    def __init__(self, location: str, key: str, expected: str, found: str) -> None:
        super().__init__(
            f"object {key!r} in location {location!r}: expected sha256 {expected}, found {found}"
        )
        self.location = location
        self.key = key
        self.expected = expected
        self.found = found


class ObjectExists(StorageError):
    """A different object already exists under the key; objects are never overwritten."""

    def __init__(self, location: str, key: str) -> None:
        super().__init__(
            f"object {key!r} already exists in location {location!r} with other content; "
            "stored objects are never overwritten"
        )
        self.location = location
        self.key = key


class CatalogError(PreserveError):
    """The catalog database could not be opened, migrated, read or written."""


class WarcError(PreserveError):
    """A WARC file or record could not be read."""


def restated(error: PreserveError, message: str) -> PreserveError:
    """The error told again as ``message`` (what it means where it was caught), with its
    exit status: its own class may want other arguments than a message."""
    told = PreserveError(message)
    told.exit_status = error.exit_status
    return told
