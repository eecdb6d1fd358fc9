"""The filesystem object store: verified, immutable puts; reads by key and range; listing."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest

from preserve.config import Location
from preserve.errors import ConfigError, DigestMismatch, ObjectExists, ObjectMissing, StorageError
from preserve.storage import FilesystemStore, ObjectInfo, open_store
from preserve.storage.filesystem import INCOMING

DATA = b"WARC/1.1\r\n" + bytes(range(256)) * 40


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def store(tmp_path: Path) -> FilesystemStore:
    return FilesystemStore("local", tmp_path / "objects")


def put(store: FilesystemStore, key: str, data: bytes, digest: str | None = None) -> ObjectInfo:
    return store.put(key, io.BytesIO(data), sha(data) if digest is None else digest)


def incoming_files(store: FilesystemStore) -> list[Path]:
    folder = store.root / INCOMING
    return sorted(folder.iterdir()) if folder.exists() else []


def test_put_stores_the_bytes_under_the_key(store: FilesystemStore) -> None:
    info = put(store, "warcs/c/a.warc.gz", DATA)

    assert info == ObjectInfo("warcs/c/a.warc.gz", len(DATA))
    assert (store.root / "warcs" / "c" / "a.warc.gz").read_bytes() == DATA
    with store.open("warcs/c/a.warc.gz") as stream:
        assert stream.read() == DATA
    assert incoming_files(store) == []


def test_put_with_the_wrong_digest_is_refused_and_leaves_nothing(
        store: FilesystemStore) -> None:
    wrong = sha(b"other bytes")

    with pytest.raises(DigestMismatch) as caught:
        put(store, "warcs/c/a.warc.gz", DATA, wrong)

    assert caught.value.expected == wrong
    assert caught.value.found == sha(DATA)
    assert "warcs/c/a.warc.gz" in str(caught.value)
    assert store.head("warcs/c/a.warc.gz") is None
    assert not (store.root / "warcs" / "c" / "a.warc.gz").exists()
    assert incoming_files(store) == []
    assert list(store.list()) == []


def test_putting_identical_bytes_again_is_accepted(store: FilesystemStore) -> None:
    put(store, "k/object", DATA)

    again = put(store, "k/object", DATA)

    assert again == ObjectInfo("k/object", len(DATA))
    assert store.read_range("k/object", 0, len(DATA)) == DATA
    assert incoming_files(store) == []


def test_putting_other_bytes_to_an_existing_key_is_refused(store: FilesystemStore) -> None:
    put(store, "k/object", DATA)
    other = b"a different object"

    with pytest.raises(ObjectExists) as caught:
        put(store, "k/object", other)

    assert caught.value.key == "k/object"
    assert (store.root / "k" / "object").read_bytes() == DATA
    assert store.head("k/object") == ObjectInfo("k/object", len(DATA))
    assert incoming_files(store) == []


def test_open_of_a_missing_key_raises_object_missing(store: FilesystemStore) -> None:
    with pytest.raises(ObjectMissing) as caught:
        store.open("warcs/none.warc.gz")
    assert caught.value.key == "warcs/none.warc.gz"
    assert caught.value.location == "local"


def test_read_range_returns_the_exact_slice(store: FilesystemStore) -> None:
    put(store, "k/object", DATA)

    assert store.read_range("k/object", 0, 10) == DATA[:10]
    assert store.read_range("k/object", 1000, 37) == DATA[1000:1037]
    assert store.read_range("k/object", len(DATA) - 5, 5) == DATA[-5:]
    assert store.read_range("k/object", len(DATA) - 5, 100) == DATA[-5:]


def test_read_range_of_a_missing_key_raises_object_missing(store: FilesystemStore) -> None:
    with pytest.raises(ObjectMissing):
        store.read_range("k/none", 0, 1)


def test_head_gives_the_size_or_none(store: FilesystemStore) -> None:
    put(store, "k/object", DATA)
    put(store, "k/empty", b"")

    assert store.head("k/object") == ObjectInfo("k/object", len(DATA))
    assert store.head("k/empty") == ObjectInfo("k/empty", 0)
    assert store.head("k/none") is None


def test_head_of_a_key_prefix_is_none(store: FilesystemStore) -> None:
    put(store, "warcs/c/a.warc.gz", DATA)

    assert store.head("warcs/c") is None


@pytest.mark.parametrize("operation", ["put onto a folder", "delete a folder",
                                       "put below an object", "open a folder"])
def test_keys_that_clash_with_folders_raise_storage_errors(store: FilesystemStore,
                                                           operation: str) -> None:
    put(store, "warcs/c/a.warc.gz", DATA)

    with pytest.raises(StorageError):
        if operation == "put onto a folder":
            put(store, "warcs/c", DATA)
        elif operation == "delete a folder":
            store.delete("warcs/c")
        elif operation == "put below an object":
            put(store, "warcs/c/a.warc.gz/x", DATA)
        else:
            store.open("warcs/c")


def test_head_below_an_object_is_none(store: FilesystemStore) -> None:
    put(store, "warcs/c/a.warc.gz", DATA)
    assert store.head("warcs/c/a.warc.gz/x") is None


def test_list_gives_keys_by_prefix_and_never_the_incoming_folder(
        store: FilesystemStore) -> None:
    assert list(store.list()) == []  # no root folder yet
    put(store, "warcs/b/2.warc.gz", b"two")
    put(store, "warcs/a/1.warc.gz", b"one")
    put(store, "other/x", b"xx")
    (store.root / INCOMING).mkdir(exist_ok=True)
    (store.root / INCOMING / "leftover.part").write_bytes(b"partial")

    assert list(store.list()) == [
        ObjectInfo("other/x", 2),
        ObjectInfo("warcs/a/1.warc.gz", 3),
        ObjectInfo("warcs/b/2.warc.gz", 3),
    ]
    assert [info.key for info in store.list("warcs/")] == [
        "warcs/a/1.warc.gz", "warcs/b/2.warc.gz"]
    assert [info.key for info in store.list("warcs/b")] == ["warcs/b/2.warc.gz"]
    assert list(store.list("nothing/")) == []


@pytest.mark.parametrize("key", ["../x", "/abs", "a//b", ".incoming/x", "", "a/../b", "./a",
                                 "a/", "a\\b"])
def test_invalid_keys_are_refused(store: FilesystemStore, key: str) -> None:
    with pytest.raises(StorageError, match="invalid object key"):
        put(store, key, DATA)
    with pytest.raises(StorageError, match="invalid object key"):
        store.open(key)
    with pytest.raises(StorageError, match="invalid object key"):
        store.head(key)
    with pytest.raises(StorageError, match="invalid object key"):
        store.delete(key)
    assert not (store.root.parent / "x").exists()
    assert not Path("/abs").exists()


def test_delete_removes_the_object(store: FilesystemStore) -> None:
    put(store, "k/object", DATA)
    put(store, "k/kept", b"kept")

    store.delete("k/object")

    assert store.head("k/object") is None
    assert [info.key for info in store.list()] == ["k/kept"]
    with pytest.raises(ObjectMissing):
        store.open("k/object")
    with pytest.raises(ObjectMissing):
        store.delete("k/object")
    # The key can be used again after a deletion.
    put(store, "k/object", b"new")
    assert store.read_range("k/object", 0, 10) == b"new"


def test_open_store_on_a_filesystem_location(tmp_path: Path) -> None:
    location = Location("offsite", "filesystem", tmp_path / "offsite")

    store = open_store(location)
    store.put("k/object", io.BytesIO(DATA), sha(DATA))

    assert store.name == "offsite"
    assert (tmp_path / "offsite" / "k" / "object").read_bytes() == DATA


def test_open_store_refuses_an_unknown_type(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unsupported type 's3'"):
        open_store(Location("cloud", "s3", tmp_path / "cloud"))
