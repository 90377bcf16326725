"""Store behaviour, run against every backend."""

import datetime
import hashlib
import os

import pytest

import cairn


def test_put_get_roundtrip_of_bytes_like_values(store):
    assert store.put("a/bytes", b"hello").__class__ is cairn.PutResult
    store.put("a/bytearray", bytearray(b"bytearray"))
    store.put("a/memoryview", memoryview(b"xxmemoryview")[2:])
    store.put("a/empty", b"")
    assert store.get("a/bytes") == b"hello"
    assert store.get("a/bytearray") == b"bytearray"
    assert store.get("a/memoryview") == b"memoryview"
    assert store.get("a/empty") == b""


def test_put_rejects_str_with_a_type_error(store):
    with pytest.raises(TypeError, match="encode"):
        store.put("k", "text")
    assert not store.exists("k")


def test_binary_data_is_kept_byte_for_byte(store):
    data = os.urandom(3 * 1024 * 1024 + 7)
    store.put("bin/blob", data)
    got = store.get("bin/blob")
    assert hashlib.sha256(got).hexdigest() == hashlib.sha256(data).hexdigest()


def test_head_reports_size_time_type_and_metadata(store):
    before = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=5)
    res = store.put(
        "m/obj.json", b"{}", content_type="application/json", metadata={"owner": "ana"}
    )
    meta = store.head("m/obj.json")
    assert isinstance(meta, cairn.ObjectMeta)
    assert meta.key == "m/obj.json"
    assert meta.size == 2
    assert meta.last_modified.tzinfo is not None
    assert meta.last_modified > before
    if res.etag is not None:
        assert meta.etag == res.etag
    if store.capabilities["metadata"]:
        assert meta.content_type == "application/json"
        assert meta.metadata == {"owner": "ana"}
    d = meta.to_dict()
    assert d["key"] == "m/obj.json" and d["size"] == 2
    assert "m/obj.json" in repr(meta)


def test_exists_and_delete(store):
    store.put("d/x", b"1")
    assert store.exists("d/x")
    store.delete("d/x")
    assert not store.exists("d/x")
    store.delete("d/x")  # deleting a missing object succeeds
    with pytest.raises(cairn.NotFound):
        store.head("d/x")


def test_delete_many_returns_no_failures_on_success(store):
    keys = [f"many/{i}" for i in range(25)]
    for k in keys:
        store.put(k, b"x")
    assert store.delete_many(keys + ["many/missing"]) == []
    assert list(store.list("many/")) == []


def test_list_is_sorted_recursive_and_prefix_scoped(store):
    for k in ["p/b/2", "p/a", "p/b/1", "p/c/deep/x", "q/other", "pp"]:
        store.put(k, k.encode())
    keys = [m.key for m in store.list("p/")]
    assert keys == ["p/a", "p/b/1", "p/b/2", "p/c/deep/x"]
    assert [m.size for m in store.list("p/b/")] == [5, 5]
    # a raw string prefix, S3 style
    assert [m.key for m in store.list("p")] == ["p/a", "p/b/1", "p/b/2", "p/c/deep/x", "pp"]
    assert [m.key for m in store.list("p/", start_after="p/b/1")] == ["p/b/2", "p/c/deep/x"]


def test_shallow_list_yields_objects_and_prefixes(store):
    for k in ["t/a", "t/b/1", "t/b/2", "t/c/d/e", "t/z"]:
        store.put(k, b"")
    entries = list(store.list("t/", recursive=False))
    objects = [e.key for e in entries if isinstance(e, cairn.ObjectMeta)]
    prefixes = [e for e in entries if isinstance(e, str)]
    assert objects == ["t/a", "t/z"]
    assert prefixes == ["t/b/", "t/c/"]
    assert store.list_prefixes("t/") == ["t/b/", "t/c/"]
    assert store.list_prefixes("t/b/") == []


def test_list_streams_past_one_page(store):
    # 1100 keys: more than one S3 page (1000), pulled lazily by the iterator.
    import asyncio

    astore = store.to_async()

    async def fill():
        sem = asyncio.Semaphore(32)

        async def one(i):
            async with sem:
                await astore.put(f"page/{i:05}", b"")

        await asyncio.gather(*(one(i) for i in range(1100)))

    asyncio.run(fill())
    it = store.list("page/")
    first = next(it)
    assert first.key == "page/00000"
    rest = [m.key for m in it]
    assert len(rest) == 1099
    assert rest[-1] == "page/01099"
    assert next(it, None) is None
    assert len(store.list("page/").collect()) == 1100


def test_list_of_empty_prefix_is_empty(store):
    assert list(store.list("nothing/here/")) == []
    assert store.list_prefixes("nothing/") == []


def test_copy_and_rename(store):
    store.put("c/src", b"payload", content_type="text/plain")
    store.copy("c/src", "c/dst")
    assert store.get("c/dst") == b"payload"
    assert store.get("c/src") == b"payload"
    store.rename("c/dst", "c/moved")
    assert not store.exists("c/dst")
    assert store.get("c/moved") == b"payload"
    with pytest.raises(cairn.NotFound):
        store.copy("c/missing", "c/x")


def test_copy_without_overwrite_refuses_an_existing_target(store):
    # Checked by cairn where the server does not (conditional_create False; not atomic).
    store.put("co/a", b"a")
    store.put("co/b", b"b")
    with pytest.raises(cairn.AlreadyExists):
        store.copy("co/a", "co/b", overwrite=False)
    assert store.get("co/b") == b"b"


@pytest.mark.parametrize(
    "rng,expected",
    [
        ((0, 5), b"01234"),
        ((5, None), b"56789"),
        ((8, 100), b"89"),
        (slice(2, 4), b"23"),
        (slice(7, None), b"789"),
        (slice(-3, None), b"789"),
        (slice(None, 2), b"01"),
        ((3, 3), b""),
    ],
)
def test_ranged_gets(store, rng, expected):
    store.put("r/digits", b"0123456789")
    assert store.get("r/digits", range=rng) == expected


@pytest.mark.parametrize("rng", [(5, 2), (-1, 3), slice(0, 4, 2), (1, 2, 3), "0-4"])
def test_bad_ranges_are_invalid_input(store, rng):
    store.put("r/digits", b"0123456789")
    with pytest.raises(cairn.InvalidInput):
        store.get("r/digits", range=rng)


def test_create_mode_refuses_to_overwrite(store):
    # Where the server does not enforce it (conditional_create False) cairn checks first: not
    # atomic against a racing writer, but one writer alone is refused all the same.
    store.put("x/once", b"first", mode="create")
    with pytest.raises(cairn.AlreadyExists) as info:
        store.put("x/once", b"second", mode="create")
    assert isinstance(info.value, FileExistsError)
    assert info.value.kind == "already_exists"
    assert store.get("x/once") == b"first"


def test_if_match_guards_updates(store):
    # Checked by cairn where the server does not (conditional_update False; not atomic).
    first = store.put("u/doc", b"v1")
    assert first.etag
    second = store.put("u/doc", b"v2", if_match=first.etag)
    with pytest.raises(cairn.PreconditionFailed) as info:
        store.put("u/doc", b"v3", if_match=first.etag)
    assert info.value.kind == "precondition_failed"
    assert store.get("u/doc") == b"v2"
    assert second.etag != first.etag


def test_bad_put_mode_is_invalid_input(store):
    with pytest.raises(cairn.InvalidInput, match="mode"):
        store.put("k", b"", mode="append")
    with pytest.raises(cairn.InvalidInput):
        store.put("k", b"", mode="create", if_match="abc")


def test_health_check_passes(store):
    store.health_check()


def test_str_and_repr_name_the_store(store, spec):
    assert "Store(" in repr(store)
    assert str(store)
