"""The tiered store from Python: `Store("tier+URL", hot=..., mode=...)` and its tier methods
(`tier_stats`, `flush`, `evict`, `tier_verify`), over a local cold directory, moto and Garage.

Each test opens a fresh hot directory and compares counters with a snapshot taken before the
step, so every expected change is exact. The write-back flusher starts by itself on each put,
so nothing here asserts what cold holds *before* a `flush()`.
"""

import asyncio
import csv
import gc
import hashlib
import io
import json
import os
import pathlib
import time
from typing import Any, Dict, Iterator, Tuple

import pytest

import cairn
from servers import spec_for

COLD = ["local", "moto", "garage"]
MODES = ["write-through", "write-back"]
COUNTERS = ("hits", "misses", "fills", "evictions", "flushes")
ALGORITHM = "aes-256-gcm-stream-v1"
INCOMPRESSIBLE = {"wb/blob.bin", "wb/deep/empty.bin"}
STALE = "cold has a newer version (the hot copy is stale)"


@pytest.fixture(params=COLD)
def cold_spec(request: Any, tmp_path: pathlib.Path) -> Iterator[Tuple[str, Dict[str, Any]]]:
    """(url, options) of an empty cold store; S3 prefixes are emptied afterwards."""
    url, options = spec_for(request.param, tmp_path)
    yield url, options
    if url.startswith("s3://"):
        gc.collect()  # close the tiers first: their flushers must not write after this
        s = cairn.Store(url, **options)
        keys = [m.key for m in s.list("")]
        if keys:
            s.delete_many(keys)


@pytest.fixture(params=MODES)
def mode(request: Any) -> str:
    return request.param


def layers(stack: str, tmp_path: pathlib.Path) -> Dict[str, Any]:
    """Store options for a layer stack: `plain` or `zstd+aes`."""
    if stack == "plain":
        return {}
    key = tmp_path / "key"
    key.write_text("11" * 32)
    return {"compression": "zstd", "encryption_key": f"file:{key}"}


def open_tier(spec: Tuple[str, Dict[str, Any]], hot: pathlib.Path, **kw: Any) -> cairn.Store:
    url, options = spec
    return cairn.Store("tier+" + url, hot=hot, **options, **kw)


def open_cold(spec: Tuple[str, Dict[str, Any]], **kw: Any) -> cairn.Store:
    url, options = spec
    return cairn.Store(url, **options, **kw)


def snapshot(s: Any) -> Dict[str, int]:
    st = s.tier_stats()
    return {k: st[k] for k in COUNTERS}


def moved(s: Any, before: Dict[str, int]) -> Dict[str, int]:
    """How much each counter moved since `before` (all of them, zeros included)."""
    now = snapshot(s)
    return {k: now[k] - before[k] for k in COUNTERS}


def change(**kw: int) -> Dict[str, int]:
    return {k: kw.get(k, 0) for k in COUNTERS}


def json_lines(n: int, seed: int) -> bytes:
    rows = (
        {"seq": i, "account": f"acct-{(i * 7 + seed) % 97}", "amount": (i * 31 + seed) % 1000}
        for i in range(n)
    )
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


def csv_rows(n: int) -> bytes:
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(["id", "name", "city", "balance"])
    for i in range(n):
        w.writerow([i, f"name {i}", ["Lyon", "Oslo", "Quito"][i % 3], i * 13 % 5000])
    return out.getvalue().encode()


def reopen(spec: Tuple[str, Dict[str, Any]], hot: pathlib.Path, **kw: Any) -> cairn.Store:
    """Opens a tier on `hot` once its last owner is gone (its flusher may hold the tier for a
    moment after the store is dropped)."""
    gc.collect()
    deadline = time.monotonic() + 5
    while True:
        try:
            return open_tier(spec, hot, **kw)
        except cairn.PermissionDenied:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def stored_path(spec: Tuple[str, Dict[str, Any]], key: str) -> str:
    """The key as the tier stores it: below the URL's prefix (S3 URLs here have one)."""
    url = spec[0]
    if url.startswith("s3://"):
        prefix = url[len("s3://"):].split("/", 1)[1]
        return f"{prefix}/{key}"
    return key


def test_read_through_fills_once_then_hits(cold_spec, mode, tmp_path):
    cold = open_cold(cold_spec)
    data = json_lines(800, 1)
    cold.put("rt/a.jsonl", data)
    cold.put("rt/b.jsonl", json_lines(50, 2))
    s = open_tier(cold_spec, tmp_path / "hot", mode=mode)
    st = s.tier_stats()
    assert (st["entries"], st["hot_bytes"], st["dirty_entries"]) == (0, 0, 0)

    before = snapshot(s)
    assert s.get("rt/a.jsonl") == data
    assert moved(s, before) == change(misses=1, fills=1)
    st = s.tier_stats()
    assert (st["entries"], st["hot_bytes"]) == (1, len(data))

    before = snapshot(s)
    assert s.get("rt/a.jsonl") == data
    assert s.get("rt/a.jsonl", range=(10, 20)) == data[10:20]
    # The checksum layer above the tier serves the range of a small object from one read of
    # its whole part (the object), checked against its digest (docs/design.md, "Verification
    # never hands over corrupt bytes"): one hit, like the whole read.
    assert moved(s, before) == change(hits=2)

    # A partial read of a small object that is not hot: the range misses (its reply says the
    # object is one small part), then the read of that whole part, a full read, misses and
    # fills.
    before = snapshot(s)
    assert s.get("rt/b.jsonl", range=(5, 9)) == json_lines(50, 2)[5:9]
    assert moved(s, before) == change(misses=2, fills=1)
    assert s.tier_stats()["entries"] == 2
    assert s.tier_stats()["hit_rate"] == pytest.approx(2 / 5)


def test_a_missing_key_is_a_miss_and_fills_nothing(cold_spec, tmp_path):
    s = open_tier(cold_spec, tmp_path / "hot")
    before = snapshot(s)
    with pytest.raises(cairn.NotFound):
        s.get("nothing/here")
    assert moved(s, before) == change(misses=1)
    assert s.tier_stats()["entries"] == 0


def test_write_through_puts_reach_cold_before_they_return(cold_spec, tmp_path):
    s = open_tier(cold_spec, tmp_path / "hot", mode="write-through")
    data = csv_rows(400)
    s.put("wt/rows.csv", data, content_type="text/csv")
    cold = open_cold(cold_spec)
    assert cold.get("wt/rows.csv") == data
    assert cold.head("wt/rows.csv").content_type == "text/csv"
    st = s.tier_stats()
    assert (st["entries"], st["hot_bytes"], st["dirty_entries"], st["dirty_bytes"]) == (
        1, len(data), 0, 0)
    before = snapshot(s)
    assert s.get("wt/rows.csv") == data
    assert moved(s, before) == change(hits=1)


@pytest.mark.parametrize("stack", ["plain", "zstd+aes"])
def test_write_back_flush_puts_the_stored_bytes_in_cold(cold_spec, stack, tmp_path):
    opts = layers(stack, tmp_path)
    hot = tmp_path / "hot"
    s = open_tier(cold_spec, hot, mode="write-back", **opts)
    objects = {
        "wb/ledger.jsonl": json_lines(3000, 3),
        "wb/accounts.csv": csv_rows(2000),
        "wb/blob.bin": os.urandom(70_000),
        "wb/deep/empty.bin": b"",
    }
    before = snapshot(s)
    for k, v in objects.items():
        s.put(k, v)
    # Until the flush, the tier answers from hot.
    for k, v in objects.items():
        assert s.get(k) == v
    s.flush()
    assert moved(s, before) == change(hits=len(objects), flushes=len(objects))
    st = s.tier_stats()
    assert (st["dirty_entries"], st["dirty_bytes"], st["entries"]) == (0, 0, len(objects))
    assert st["flush_lag_secs"] == 0.0 and st["last_error"] is None and st["errors"] == 0

    cold = open_cold(cold_spec, **opts)
    assert sorted(m.key for m in cold.list("wb/")) == sorted(objects)
    for k, v in objects.items():
        assert cold.get(k) == v, k
        meta = cold.head(k)
        # The stored bytes in cold are the hot copy's, byte for byte (a flush copies them).
        hot_bytes = (hot / "data" / stored_path(cold_spec, k)).read_bytes()
        assert meta.stored_size == len(hot_bytes), k
        assert meta.sha256 == hashlib.sha256(hot_bytes).hexdigest(), k
        if cold_spec[0].startswith("file://"):
            cold_root = pathlib.Path(cold_spec[0][len("file://"):])
            assert (cold_root / k).read_bytes() == hot_bytes, k
        if stack == "zstd+aes":
            # Random bytes are stored uncompressed (zstd would only grow them).
            assert meta.compression == (None if k in INCOMPRESSIBLE else "zstd"), k
            assert meta.encryption == ALGORITHM, k
        else:
            assert meta.compression is None and meta.encryption is None, k
            assert hot_bytes == v, k
    if stack == "zstd+aes":
        # What reached cold is compressed: the JSON lines shrink well below a quarter.
        meta = cold.head("wb/ledger.jsonl")
        assert meta.stored_size < len(objects["wb/ledger.jsonl"]) // 4
        # And it is encrypted: a store without the key refuses to read it.
        with pytest.raises(cairn.PermissionDenied):
            open_cold(cold_spec).get("wb/ledger.jsonl")


def test_write_back_deletes_reach_cold_on_flush(cold_spec, tmp_path):
    s = open_tier(cold_spec, tmp_path / "hot", mode="write-back")
    s.put("del/a", b"a" * 100)
    s.put("del/b", b"b" * 100)
    s.flush()
    s.delete("del/a")
    assert not s.exists("del/a")
    s.flush()
    assert [m.key for m in open_cold(cold_spec).list("del/")] == ["del/b"]
    assert s.tier_stats()["entries"] == 1


def test_evict_returns_the_count_and_the_next_read_refills(cold_spec, mode, tmp_path):
    s = open_tier(cold_spec, tmp_path / "hot", mode=mode)
    data = {f"ev/{i}.jsonl": json_lines(100 + i, i) for i in range(3)}
    data["other/x.jsonl"] = json_lines(10, 9)
    data["other/y.jsonl"] = json_lines(20, 8)
    for k, v in data.items():
        s.put(k, v)
    s.flush()
    assert s.tier_stats()["entries"] == 5

    before = snapshot(s)
    assert s.evict("ev/") == 3
    assert moved(s, before) == change(evictions=3)
    assert s.tier_stats()["entries"] == 2
    assert s.evict("ev/") == 0
    assert s.evict("nothing/") == 0

    before = snapshot(s)
    assert s.get("ev/1.jsonl") == data["ev/1.jsonl"]
    assert moved(s, before) == change(misses=1, fills=1)
    before = snapshot(s)
    assert s.get("ev/1.jsonl") == data["ev/1.jsonl"]
    assert moved(s, before) == change(hits=1)

    # "" is everything under the URL's prefix.
    assert s.evict() == 3
    st = s.tier_stats()
    assert (st["entries"], st["hot_bytes"]) == (0, 0)
    with pytest.raises(cairn.InvalidInput):
        s.evict("../up")


def test_verify_names_hot_copies_that_cold_no_longer_matches(cold_spec, mode, tmp_path):
    s = open_tier(cold_spec, tmp_path / "hot", mode=mode)
    for k in ("v/a.json", "v/b.json", "v/c.json"):
        s.put(k, json_lines(200, len(k)))
    s.flush()
    assert s.tier_verify() == []
    cold = open_cold(cold_spec)
    # Behind the tier's back: same size, other bytes (only the ETag tells).
    cold.put("v/b.json", json_lines(200, len("v/b.json") + 1))
    cold.delete("v/c.json")
    assert s.tier_verify() == [("v/b.json", STALE), ("v/c.json", "gone from cold")]
    # Evicting the stale copy leaves only the deleted one to report; a read refills it.
    assert s.evict("v/b.json") == 1
    assert s.get("v/b.json") == json_lines(200, len("v/b.json") + 1)
    assert s.tier_verify() == [("v/c.json", "gone from cold")]


def test_a_hot_directory_has_one_owner(cold_spec, tmp_path):
    hot = tmp_path / "hot"
    first = open_tier(cold_spec, hot)
    first.put("lock/a", b"a")
    with pytest.raises(cairn.PermissionDenied) as info:
        open_tier(cold_spec, hot)
    msg = str(info.value)
    assert "in use by another tiered store" in msg
    assert f"(lock {hot}/lock)" in msg
    assert info.value.operation == "open tier"
    # Another hot directory over the same cold store is fine.
    other = open_tier(cold_spec, tmp_path / "hot2")
    assert other.get("lock/a") == b"a"
    # Closing the owner frees the directory.
    del first
    again = reopen(cold_spec, hot)
    before = snapshot(again)
    assert again.get("lock/a") == b"a"
    assert moved(again, before) == change(hits=1)


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"mode": "later"},
         'mode must be write-through or write-back, not "later"'),
        ({"hot_max": "lots"},
         'hot_max must be a size like `10GiB`, `512MiB` or `1000`, not "lots"'),
        ({"dirty_max": "12 parsecs"},
         'dirty_max must be a size like `10GiB`, `512MiB` or `1000`, not "12 parsecs"'),
        ({"flush_concurrency": 0}, "flush_concurrency must be at least 1"),
        ({"immutable": "sometimes"}, 'immutable must be true or false, not "sometimes"'),
        ({"hot_max_entries": "many"}, 'hot_max_entries must be a whole number, not "many"'),
        ({"ttl": "soon"}, "ttl must be a duration"),
    ],
)
def test_bad_tier_options_say_what_is_wrong(bad, message, tmp_path):
    with pytest.raises(cairn.InvalidInput) as info:
        cairn.Store(f"tier+file://{tmp_path}/cold", hot=tmp_path / "hot", **bad)
    assert message in str(info.value)


def test_a_tier_url_needs_a_hot_directory_and_plain_urls_take_no_tier_options(tmp_path):
    with pytest.raises(cairn.InvalidInput) as info:
        cairn.Store(f"tier+file://{tmp_path}/cold")
    assert "names no hot directory" in str(info.value)
    assert info.value.hint == "add ?hot=/path/to/cache (or the `hot` option)"
    with pytest.raises(cairn.InvalidInput) as info:
        cairn.Store(f"file://{tmp_path}/cold", hot=tmp_path / "hot")
    assert "hot= applies to tiered stores" in str(info.value)
    assert info.value.hint == f"write tier+file://{tmp_path}/cold to put a hot tier in front of it"


def test_options_in_the_url_query_work_like_keywords(tmp_path):
    s = cairn.Store(f"tier+file://{tmp_path}/cold?hot={tmp_path}/hot&mode=write-back&hot_max=1MiB")
    s.put("q/a", b"x" * 10)
    s.flush()
    assert cairn.Store(f"file://{tmp_path}/cold").get("q/a") == b"x" * 10


@pytest.mark.parametrize("op", ["tier_stats", "flush", "evict", "tier_verify"])
def test_tier_methods_on_a_plain_store_say_the_url_must_start_with_tier(op, tmp_path):
    s = cairn.Store(f"file://{tmp_path}/plain")
    with pytest.raises(cairn.InvalidInput) as info:
        getattr(s, op)()
    assert isinstance(info.value, ValueError)
    assert info.value.operation == op
    assert f"{op} needs a tiered store" in str(info.value)
    assert "the URL must start with tier+" in str(info.value)


def test_pins_keep_entries_hot_when_the_quota_evicts_local(tmp_path):
    """`pin` and `hot_max` as keywords: over quota, the LRU sweep spares the pinned prefix."""
    s = cairn.Store(f"tier+file://{tmp_path}/cold", hot=tmp_path / "hot",
                    hot_max="10KiB", pin="active/")
    active = os.urandom(6000)
    s.put("active/seg", active)
    for i in range(5):
        s.put(f"sealed/{i}", os.urandom(3000))
    st = s.tier_stats()
    # 6000 + 5 * 3000 bytes with a 10 KiB quota: sweeps bring hot to at most 9216 bytes,
    # dropping the least recently used sealed entries and never the pinned one.
    assert st["entries"] == 2 and st["evictions"] == 4 and st["hot_bytes"] == 9000
    before = snapshot(s)
    assert s.get("active/seg") == active
    assert s.get("sealed/4") == s.get("sealed/4")
    assert moved(s, before) == change(hits=3)


def test_pins_are_relative_to_the_urls_prefix(tmp_path):
    spec = spec_for("garage", tmp_path)
    try:
        s = open_tier(spec, tmp_path / "hot", hot_max="10KiB", pin="active/")
        s.put("active/seg", os.urandom(6000))
        for i in range(5):
            s.put(f"sealed/{i}", os.urandom(3000))
        before = snapshot(s)
        s.get("active/seg")
        assert moved(s, before) == change(hits=1)
    finally:
        gc.collect()
        cold = open_cold(spec)
        cold.delete_many([m.key for m in cold.list("")])


def test_hot_copies_survive_a_restart(cold_spec, tmp_path):
    hot = tmp_path / "hot"
    s = open_tier(cold_spec, hot)
    data = json_lines(300, 5)
    s.put("rs/a.jsonl", data)
    del s
    s = reopen(cold_spec, hot)
    assert s.tier_stats()["entries"] == 1
    before = snapshot(s)
    assert s.get("rs/a.jsonl") == data
    assert moved(s, before) == change(hits=1)
    assert s.tier_verify() == []


def test_a_flushed_write_back_copy_is_a_hit_after_a_restart(tmp_path):
    spec = (f"file://{tmp_path}/cold", {})
    s = open_tier(spec, tmp_path / "hot", mode="write-back")
    s.put("rs/a", b"a" * 5000)
    s.flush()
    del s
    s = reopen(spec, tmp_path / "hot", mode="write-back")
    before = snapshot(s)
    assert s.get("rs/a") == b"a" * 5000
    assert moved(s, before) == change(hits=1)


def test_verify_after_a_restart_sees_a_same_size_overwrite(tmp_path):
    spec = (f"file://{tmp_path}/cold", {})
    s = open_tier(spec, tmp_path / "hot", mode="write-back")
    s.put("rs/a", b"a" * 5000)
    s.flush()
    del s
    s = reopen(spec, tmp_path / "hot", mode="write-back")
    open_cold(spec).put("rs/a", b"b" * 5000)
    assert s.tier_verify() == [("rs/a", STALE)]


def test_async_store_has_the_tier_methods(cold_spec, tmp_path):
    url, options = cold_spec
    data = json_lines(500, 4)

    async def main() -> None:
        s = await cairn.AsyncStore.open("tier+" + url, hot=tmp_path / "hot", mode="write-back",
                                        **options)
        await s.put("as/a.jsonl", data)
        await s.put("as/b.jsonl", data[:100])
        await s.flush()
        assert s.tier_stats()["dirty_entries"] == 0
        assert await open_cold(cold_spec).to_async().get("as/a.jsonl") == data
        assert await s.tier_verify() == []
        assert await s.evict("as/") == 2
        before = snapshot(s)
        assert await s.get("as/a.jsonl") == data
        assert moved(s, before) == change(misses=1, fills=1)
        plain = await cairn.AsyncStore.open(f"file://{tmp_path}/plain")
        with pytest.raises(cairn.InvalidInput, match="the URL must start with tier"):
            await plain.flush()
        del s

    asyncio.run(main())


def test_wrapping_a_tiered_store_shares_its_tier(tmp_path):
    s = cairn.Store(f"tier+file://{tmp_path}/cold", hot=tmp_path / "hot")
    s.put("sh/a", b"a" * 50)
    a = s.to_async()
    again = cairn.Store(a)
    before = snapshot(s)
    assert again.get("sh/a") == b"a" * 50
    assert moved(s, before) == change(hits=1)
    assert a.tier_stats() == s.tier_stats()
    assert again.evict() == 1
    assert s.tier_stats()["entries"] == 0
