"""cairn.sync: every backend as source and as destination (the other side a local dir)."""

import os
import pathlib

import pytest

import cairn
from servers import s3_options

FILES = {"a.csv": b"1,2\n", "sub/b.json": b"{}", "sub/deep/c.bin": os.urandom(70_000)}


def fill(store, files=FILES):
    for k, v in files.items():
        store.put(k, v)


def contents(store):
    return {m.key: store.get(m.key) for m in store.list("")}


@pytest.fixture
def local(tmp_path):
    return cairn.Store.open(f"file://{tmp_path}/side")


def test_sync_to_a_store_then_nothing_to_do(store, local):
    fill(local)
    s = cairn.sync(local, store)
    assert s["transferred"] == 3 and s["failed"] == 0 and s["failures"] == []
    assert s["transferred_bytes"] == sum(len(v) for v in FILES.values())
    assert contents(store) == FILES
    again = cairn.sync(local, store)
    assert again["transferred"] == 0 and again["skipped"] == 3


def test_sync_from_a_store_to_a_directory_path(store, tmp_path):
    fill(store)
    dst = tmp_path / "backup"
    s = cairn.sync(store, dst)  # an os.PathLike destination
    assert s["transferred"] == 3
    # The user's own files only: no `.cairn/` sidecars or temp files.
    got = {str(p.relative_to(dst)): p.read_bytes() for p in dst.rglob("*") if p.is_file()}
    assert got == FILES
    assert not (dst / ".cairn").exists()
    assert cairn.sync(store, str(dst))["skipped"] == 3


def test_changed_objects_are_copied_again(store, local):
    fill(local)
    cairn.sync(local, store)
    local.put("a.csv", b"1,2,3\n")
    s = cairn.sync(local, store)
    assert s["transferred"] == 1 and s["skipped"] == 2
    assert store.get("a.csv") == b"1,2,3\n"


def test_checksum_compare_catches_same_size_changes(store, local):
    fill(local)
    cairn.sync(local, store)
    store.put("a.csv", b"9,9\n")  # same size, newer: size-and-time calls it unchanged
    assert cairn.sync(local, store)["transferred"] == 0
    s = cairn.sync(local, store, checksum=True)
    assert s["transferred"] == 1
    assert store.get("a.csv") == FILES["a.csv"]


def test_delete_and_dry_run(store, local):
    fill(local)
    cairn.sync(local, store)
    store.put("extra.txt", b"only in dst")
    planned = cairn.sync(local, store, delete=True, dry_run=True)
    assert planned["dry_run"] and planned["deleted"] == 1
    assert store.exists("extra.txt")
    assert cairn.sync(local, store)["deleted"] == 0
    assert store.exists("extra.txt")
    done = cairn.sync(local, store, delete=True)
    assert done["deleted"] == 1 and not store.exists("extra.txt")


def test_dry_run_writes_nothing(store, local):
    fill(local)
    s = cairn.sync(local, store, dry_run=True)
    assert s["transferred"] == 3
    assert list(store.list("")) == []


def test_include_and_exclude(store, local):
    fill(local)
    s = cairn.sync(local, store, include=["sub/**"], exclude=["*.bin"])
    assert s["transferred"] == 1
    assert sorted(m.key for m in store.list("")) == ["sub/b.json"]


def test_bad_options_raise_invalid_input_before_writing(store, local):
    fill(local)
    with pytest.raises(cairn.InvalidInput, match="ACL"):
        cairn.sync(local, store, acl="everyone")
    with pytest.raises(cairn.InvalidInput, match="glob"):
        cairn.sync(local, store, include=["a/[b"])
    with pytest.raises(cairn.InvalidInput, match="concurrency"):
        cairn.sync(local, store, concurrency=0)
    assert list(store.list("")) == []


def test_progress_receives_events(store, local):
    fill(local)
    events = []
    s = cairn.sync(local, store, progress=events.append, concurrency=2)
    kinds = [e["event"] for e in events]
    assert kinds[0] == "start" and kinds[-1] == "finish"
    done = {e["key"]: e for e in events if e["event"] == "item_done"}
    assert set(done) == set(FILES)
    for k, e in done.items():
        assert e["outcome"] == "transferred" and e["action"] == "transfer"
        assert e["bytes"] == len(FILES[k])
    progressed = {}
    for e in events:
        if e["event"] == "progress":
            progressed[e["key"]] = progressed.get(e["key"], 0) + e["bytes"]
    assert sum(progressed.values()) == s["transferred_bytes"]
    assert events[-1]["summary"]["transferred"] == 3
    events.clear()
    cairn.sync(local, store, progress=events.append)
    skipped = [e for e in events if e["event"] == "item_done"]
    assert {e["outcome"] for e in skipped} == {"skipped"} and all(e["reason"] for e in skipped)


def test_a_failing_progress_callback_is_raised_after_sync(store, local):
    fill(local)

    def boom(event):
        raise RuntimeError("callback failed")

    with pytest.raises(RuntimeError, match="callback failed"):
        cairn.sync(local, store, progress=boom)
    with pytest.raises(TypeError, match="callable"):
        cairn.sync(local, store, progress=42)


def test_failed_items_are_listed_not_raised(store, tmp_path):
    fill(store)
    dst = tmp_path / "dst"
    dst.mkdir()
    (dst / "a.csv").mkdir()  # a directory where a file must go
    (dst / "a.csv" / "x").write_bytes(b"")
    s = cairn.sync(store, dst)
    assert s["failed"] == 1 and s["transferred"] == 2
    (f,) = s["failures"]
    assert f["key"] == "a.csv" and f["action"] == "transfer" and f["kind"] and f["message"]


@pytest.mark.parametrize("server", ["moto", "garage"])
def test_a_missing_source_bucket_is_a_listed_failure(server):
    options = s3_options(server)
    missing = cairn.Store.open("s3://cairn-no-such-bucket-xyz/p", **options)
    s = cairn.sync(missing, "memory://")
    assert s["failed"] == 1
    assert s["failures"][0]["kind"] == "bucket_not_found", s["failures"]


def test_bad_url_raises(tmp_path):
    with pytest.raises(cairn.InvalidInput):
        cairn.sync("nope://x", str(tmp_path))
    with pytest.raises(TypeError):
        cairn.sync(42, str(tmp_path))
    assert isinstance(pathlib.Path(tmp_path), os.PathLike)
