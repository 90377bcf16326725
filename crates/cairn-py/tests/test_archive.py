"""cairn.Archive, run against every backend."""

import datetime
import io
import os
import time

import pytest

import cairn
from servers import spec_for

UTC = datetime.timezone.utc


def save_spaced(archive, *args, **kwargs):
    """Saves, then waits past the timestamp's millisecond so the next save sorts after it."""
    entry = archive.save(*args, **kwargs)
    time.sleep(0.003)
    return entry


@pytest.fixture
def archive(store):
    return cairn.Archive(store, prefix="snapshots")


def test_save_returns_an_entry_that_loads_back(archive):
    before = datetime.datetime.now(UTC) - datetime.timedelta(seconds=5)
    e = archive.save("agent-1", "snapshot", b'{"step": 1}', metadata={"session_id": "s1"},
                     content_type="application/json")
    assert isinstance(e, cairn.Entry)
    assert e.name == "agent-1" and e.kind == "snapshot" and e.size == 11
    assert e.key.startswith("snapshots/agent-1/") and e.key.endswith("-snapshot.json")
    assert e.timestamp.tzinfo is not None and e.timestamp > before
    assert e.metadata["session_id"] == "s1"
    assert archive.load(e.key) == b'{"step": 1}'
    assert archive.exists(e.key)
    assert e.to_dict()["key"] == e.key and "agent-1" in repr(e)


def test_save_streams_a_binary_file(archive):
    data = os.urandom(9 * 1024 * 1024 + 3)  # more than one read() chunk
    e = archive.save("big", "blob", io.BytesIO(data))
    assert e.size == len(data)
    assert archive.load(e.key) == data


def test_save_rejects_a_text_file_and_str(archive):
    with pytest.raises(cairn.InvalidInput, match="binary mode"):
        archive.save("t", "doc", io.StringIO("text"))
    with pytest.raises(TypeError, match="encode"):
        archive.save("t", "doc", "text")
    assert archive.list(name="t") == []


def test_save_rejects_a_bad_name_or_kind(archive):
    with pytest.raises(cairn.InvalidInput, match="kind"):
        archive.save("a", "snap/shot", b"x")
    with pytest.raises(cairn.InvalidInput, match="name"):
        archive.save("", "snapshot", b"x")
    with pytest.raises(cairn.InvalidInput, match="name"):
        archive.save("a//b", "snapshot", b"x")
    assert archive.list() == []


def test_list_is_newest_first_and_filters(archive):
    a1 = save_spaced(archive, "a", "snapshot", b"1")
    b1 = save_spaced(archive, "b", "report", b"2")
    a2 = save_spaced(archive, "a", "report", b"3", metadata={"tag": "x"})
    a3 = save_spaced(archive, "a", "snapshot", b"4")
    assert [e.key for e in archive.list()] == [a3.key, a2.key, b1.key, a1.key]
    assert [e.key for e in archive.list(name="a")] == [a3.key, a2.key, a1.key]
    assert [e.key for e in archive.list(kind="report")] == [a2.key, b1.key]
    assert [e.key for e in archive.list(since=a2.timestamp)] == [a3.key, a2.key]
    assert [e.key for e in archive.list(until=a2.timestamp)] == [b1.key, a1.key]
    tagged = archive.list(metadata={"tag": "x"})
    assert [e.key for e in tagged] == [a2.key]
    assert tagged[0].metadata["tag"] == "x"
    assert archive.latest("a").key == a3.key
    assert archive.latest("a").timestamp == a3.timestamp  # what save returns is what lists show
    assert archive.latest("a", kind="report").key == a2.key
    assert archive.latest("nobody") is None


def test_metadata_returns_the_full_entry(archive):
    e = archive.save("m", "snapshot", b"abc", metadata={"agent_id": "m", "description": "first"})
    got = archive.metadata(e.key)
    assert got.key == e.key and got.name == "m" and got.size == 3
    assert got.metadata["agent_id"] == "m" and got.metadata["description"] == "first"
    with pytest.raises(cairn.NotFound):
        archive.metadata("snapshots/m/2020/01/20200101T000000.000Z-snapshot.bin")


def test_restore_writes_the_file(archive, tmp_path):
    e = archive.save("r", "snapshot", b"state")
    out = tmp_path / "restored" / "state.bin"
    assert archive.restore(e.key, out) == 5
    assert out.read_bytes() == b"state"
    assert [p.name for p in out.parent.iterdir()] == ["state.bin"]


def test_restore_of_a_missing_key_writes_nothing(archive, tmp_path):
    with pytest.raises(cairn.NotFound):
        archive.restore("snapshots/x/2020/01/20200101T000000.000Z-snapshot.bin", tmp_path / "out" / "o")
    assert list((tmp_path / "out").iterdir()) == []


def test_verify_reports_ok_for_checksummed_saves(archive):
    e = archive.save("v", "snapshot", b"verified")
    assert archive.verify(e.key) == "ok"


@pytest.mark.parametrize("backend", ["local", "moto", "garage"])  # memory: no second view
def test_verify_reports_unverifiable_without_the_checksum_layer(backend, tmp_path):
    url, options = spec_for(backend, tmp_path)
    bare = cairn.Archive(cairn.Store.open(url, checksum=False, **options))
    e = bare.save("u", "snapshot", b"no digest")
    assert bare.verify(e.key) == "unverifiable"
    bare.delete(e.key)


def test_verify_reports_corrupt_bytes(tmp_path):
    archive = cairn.Archive(f"file://{tmp_path}/store")
    e = archive.save("c", "snapshot", b"original bytes")
    path = tmp_path / "store" / e.key
    st = path.stat()
    path.write_bytes(b"tampered bytes")
    # Same size and mtime, so the local store still trusts its recorded metadata (a changed
    # mtime makes it drop the stale checksum, and verify would say "unverifiable").
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert archive.verify(e.key) == "corrupt"
    with pytest.raises(cairn.IntegrityError):
        archive.load(e.key)


def test_delete(archive):
    e = archive.save("d", "snapshot", b"x")
    archive.delete(e.key)
    assert not archive.exists(e.key)
    assert archive.list(name="d") == []


def test_prune_keeps_the_newest_per_name(archive):
    a = [save_spaced(archive, "a", "snapshot", bytes([i])) for i in range(4)]
    b = save_spaced(archive, "b", "snapshot", b"b")
    planned = archive.prune(keep_last=2, dry_run=True)
    assert sorted(e.key for e in planned) == sorted([a[0].key, a[1].key])
    assert len(archive.list()) == 5
    gone = archive.prune(keep_last=2)
    assert sorted(e.key for e in gone) == sorted([a[0].key, a[1].key])
    assert [e.key for e in archive.list()] == [b.key, a[3].key, a[2].key]


def test_prune_by_age_accepts_seconds_and_timedeltas(archive):
    e = archive.save("old", "snapshot", b"x")
    assert archive.prune(older_than=datetime.timedelta(hours=1)) == []
    assert archive.prune(older_than=3600) == []
    time.sleep(0.01)
    gone = archive.prune(name="old", older_than=0.001)
    assert [g.key for g in gone] == [e.key]
    assert not archive.exists(e.key)


def test_prune_needs_a_policy(archive):
    archive.save("p", "snapshot", b"x")
    with pytest.raises(cairn.InvalidInput, match="keep_last or older_than"):
        archive.prune()
    with pytest.raises(cairn.InvalidInput, match="older_than"):
        archive.prune(older_than="1d")
    with pytest.raises(cairn.InvalidInput):
        archive.prune(older_than=-1)
    assert len(archive.list()) == 1


def test_custom_template_and_url_store(tmp_path):
    archive = cairn.Archive(f"file://{tmp_path}/s", template="benchmarks/{name}/{timestamp}-{kind}.{ext}")
    e = archive.save("repo-1", "nightly", b"{}", content_type="application/json")
    assert e.key.startswith("benchmarks/repo-1/") and e.key.endswith("-nightly.json")
    assert archive.latest("repo-1").key == e.key
    with pytest.raises(cairn.InvalidInput, match="timestamp"):
        cairn.Archive("memory://", template="{name}.{ext}")


def test_archive_shares_the_store(store):
    archive = cairn.Archive(store)
    e = archive.save("s", "snapshot", b"shared")
    assert store.get(e.key) == b"shared"
    assert cairn.Archive(store.to_async()).load(e.key) == b"shared"


def test_async_archive_roundtrip(store, tmp_path):
    import asyncio

    async def main():
        archive = cairn.AsyncArchive(store.to_async(), prefix="snapshots")
        saved = []
        for i in range(3):
            saved.append(await archive.save("a", "snapshot", bytes([i]) * 10, metadata={"i": str(i)}))
            await asyncio.sleep(0.003)
        big = os.urandom(9 * 1024 * 1024)
        streamed = await archive.save("b", "blob", io.BytesIO(big))
        assert streamed.size == len(big) and await archive.load(streamed.key) == big
        # Concurrent calls from one loop.
        loaded = await asyncio.gather(*(archive.load(e.key) for e in saved))
        assert loaded == [bytes([i]) * 10 for i in range(3)]
        assert [e.key for e in await archive.list(name="a")] == [e.key for e in reversed(saved)]
        assert (await archive.latest("a")).key == saved[-1].key
        assert (await archive.metadata(saved[0].key)).metadata["i"] == "0"
        assert await archive.verify(saved[0].key) == "ok"
        assert await archive.restore(saved[1].key, tmp_path / "r.bin") == 10
        assert (tmp_path / "r.bin").read_bytes() == bytes([1]) * 10
        gone = await archive.prune(name="a", keep_last=1)
        assert sorted(e.key for e in gone) == sorted(e.key for e in saved[:2])
        assert not await archive.exists(saved[0].key)
        await archive.delete(saved[2].key)
        assert await archive.list(name="a") == []
        with pytest.raises(cairn.InvalidInput):
            await archive.prune()
        with pytest.raises(cairn.NotFound):
            await archive.load(saved[0].key)

    asyncio.run(main())
