"""File-like objects: csv, json, readline, seeking, streaming writes, commit/abort rules."""

import csv
import gc
import hashlib
import io
import json
import os
import warnings

import pytest

import cairn


def test_csv_roundtrip_through_text_mode(store):
    rows = [["id", "name", "note"], ["1", "Ana", "comma, inside"], ["2", "Bo", 'quote "x"']]
    with store.open("csv/people.csv", "w", newline="") as f:
        csv.writer(f).writerows(rows)
    with store.open("csv/people.csv", "r", newline="") as f:
        assert list(csv.reader(f)) == rows
    # the spelling from the csv docs: a TextIOWrapper over the binary reader
    with io.TextIOWrapper(store.open("csv/people.csv", "rb"), encoding="utf-8", newline="") as f:
        assert list(csv.DictReader(f))[1]["note"] == 'quote "x"'


def test_json_dump_and_load(store):
    doc = {"model": "m1", "scores": [0.5, 0.25], "ok": True, "name": "über"}
    with store.open("json/doc.json", "w") as f:
        json.dump(doc, f)
    with store.open("json/doc.json") as f:  # "rb" is the default: json.load takes bytes too
        assert json.load(f) == doc
    with store.open("json/doc.json", "r") as f:
        assert json.load(f) == doc


def test_binary_readline_iteration_and_readinto(store):
    store.put("lines/a.txt", b"one\ntwo\nthree")
    with store.open("lines/a.txt", "rb") as f:
        assert f.readline() == b"one\n"
        assert list(f) == [b"two\n", b"three"]
    with store.open("lines/a.txt", "rb", buffering=0) as raw:
        buf = bytearray(5)
        assert raw.readinto(buf) == 5
        assert bytes(buf) == b"one\nt"
        assert raw.read() == b"wo\nthree"
        assert raw.read() == b""


def test_seek_and_tell_use_ranged_reads(store):
    data = bytes(range(256)) * 4096  # 1 MiB
    store.put("seek/blob", data)
    with store.open("seek/blob", "rb", buffering=0) as f:
        assert f.size == len(data)
        assert f.read(10) == data[:10]
        assert f.tell() == 10
        f.seek(500_000)
        assert f.read(16) == data[500_000:500_016]
        f.seek(-8, io.SEEK_END)
        assert f.read() == data[-8:]
        f.seek(3)
        assert f.read(4) == data[3:7]
        f.seek(10, io.SEEK_CUR)
        assert f.tell() == 17
        assert f.read(3) == data[17:20]
        f.seek(len(data) + 10)
        assert f.read(5) == b""
        with pytest.raises(ValueError):
            f.seek(-1)


def test_reader_raises_not_found_at_open(store):
    with pytest.raises(cairn.NotFound) as info:
        store.open("missing/file.txt", "rb")
    assert info.value.key == "missing/file.txt"


def test_reading_after_close_is_an_error(store):
    store.put("c/x", b"abc")
    f = store.open("c/x", "rb")
    f.close()
    with pytest.raises(ValueError):
        f.read()


def test_reader_is_pinned_to_the_version_it_opened(store):
    if not store.capabilities["conditional_get"]:
        pytest.skip("store does not enforce if-match on get")
    store.put("pin/obj", b"a" * 100_000)
    f = store.open("pin/obj", "rb", buffering=0)
    assert f.read(10) == b"a" * 10
    store.put("pin/obj", b"b" * 100_000)
    f.seek(0)  # backwards: a new ranged GET, pinned to the ETag first read
    with pytest.raises(cairn.PreconditionFailed):
        f.read(10)


def test_streaming_write_of_many_parts(store):
    part = 5 * 1024 * 1024
    chunk = os.urandom(1024 * 1024 + 13)
    digest = hashlib.sha256()
    with store.open("big/blob", "wb", part_size=part, concurrency=2) as f:
        for _ in range(12):  # ~12 MiB: three parts
            f.write(chunk)
            digest.update(chunk)
        assert f.tell() == 12 * len(chunk)
    got = store.get("big/blob")
    assert len(got) == 12 * len(chunk)
    assert hashlib.sha256(got).hexdigest() == digest.hexdigest()
    assert store.head("big/blob").size == len(got)


def test_writer_commits_on_close_and_reports_the_result(store):
    f = store.open("w/obj", "wb", content_type="text/plain", metadata={"a": "b"})
    f.write(b"hello ")
    f.write(memoryview(b"world"))
    assert not store.exists("w/obj")  # nothing visible before close
    f.close()
    assert store.get("w/obj") == b"hello world"
    assert isinstance(f.result, cairn.PutResult)
    f.close()  # closing twice is fine
    with pytest.raises(ValueError):
        f.write(b"more")
    if store.capabilities["metadata"]:
        meta = store.head("w/obj")
        assert meta.content_type == "text/plain"
        assert meta.metadata == {"a": "b"}


def test_exception_inside_with_discards_the_write(store):
    store.put("w/keep", b"original")
    with pytest.raises(RuntimeError):
        with store.open("w/keep", "wb") as f:
            f.write(b"partial " * 1000)
            raise RuntimeError("boom")
    assert store.get("w/keep") == b"original"
    with pytest.raises(RuntimeError):
        with store.open("w/new.csv", "w", newline="") as f:
            csv.writer(f).writerow(["a", "b"])
            raise RuntimeError("boom")
    assert not store.exists("w/new.csv")


def test_large_aborted_write_leaves_nothing(store):
    with pytest.raises(KeyError):
        with store.open("w/big-aborted", "wb", part_size=5 * 1024 * 1024) as f:
            f.write(os.urandom(11 * 1024 * 1024))  # multipart already started
            raise KeyError("stop")
    assert not store.exists("w/big-aborted")


def test_unclosed_writer_is_discarded_with_a_warning(store):
    def write_without_close():
        f = store.open("w/leaked", "wb")
        f.write(b"data")

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        write_without_close()
        gc.collect()
    assert any(issubclass(w.category, ResourceWarning) for w in caught)
    assert not store.exists("w/leaked")


def test_exclusive_mode_refuses_existing_objects(store):
    # Checked by cairn where the server does not (conditional_create False; not atomic).
    with store.open("x/once", "xb") as f:
        f.write(b"1")
    f = store.open("x/once", "x")
    f.write("2")
    with pytest.raises(cairn.AlreadyExists):
        f.close()
    assert store.get("x/once") == b"1"


@pytest.mark.parametrize("mode", ["a", "ab", "r+", "w+b", "rw", "q", "rbt", "rr"])
def test_unsupported_modes_are_invalid_input(store, mode):
    with pytest.raises(cairn.InvalidInput):
        store.open("m/x", mode)


def test_text_encoding_and_newlines(store):
    with store.open("t/latin1.txt", "w", encoding="latin-1") as f:
        f.write("café\n")
    assert store.get("t/latin1.txt") == "café\n".encode("latin-1")
    with store.open("t/latin1.txt", "r", encoding="latin-1") as f:
        assert f.read() == "café\n"
    store.put("t/crlf.txt", b"a\r\nb\r\n")
    with store.open("t/crlf.txt", "r") as f:
        assert f.readlines() == ["a\n", "b\n"]


def test_pandas_reads_and_writes_through_file_objects(store):
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({"x": [1, 2, 3], "y": ["a", "b", "c"]})
    with store.open("pd/frame.csv", "w", newline="") as f:
        df.to_csv(f, index=False)
    with store.open("pd/frame.csv", "rb") as f:
        back = pd.read_csv(f)
    assert back.equals(df)


def test_upload_file_and_download_file_through_the_engine(store, tmp_path):
    # 11 MiB + 5 with 5 MiB parts: a multipart upload and three parallel ranged GETs.
    data = os.urandom(11 * 1024 * 1024 + 5)
    src = tmp_path / "big.bin"
    src.write_bytes(data)
    put = store.upload_file(
        src, "files/big.bin", content_type="application/x-demo", metadata={"owner": "ana"},
        part_size=5 * 1024 * 1024, concurrency=2,
    )
    assert put.etag
    meta = store.head("files/big.bin")
    assert meta.size == len(data)
    assert meta.content_type == "application/x-demo"
    assert meta.metadata == {"owner": "ana"}
    out = tmp_path / "out" / "big.bin"
    got = store.download_file(
        "files/big.bin", str(out), part_size=5 * 1024 * 1024, concurrency=3, fsync=False
    )
    assert got.size == len(data)
    assert hashlib.sha256(out.read_bytes()).digest() == hashlib.sha256(data).digest()
    assert sorted(os.listdir(out.parent)) == ["big.bin"], "no temp files are left"


def test_upload_file_and_download_file_errors_write_nothing(store, tmp_path):
    with pytest.raises(cairn.NotFound):
        store.download_file("files/missing.bin", tmp_path / "x.bin")
    assert not (tmp_path / "x.bin").exists()
    with pytest.raises(FileNotFoundError):
        store.upload_file(tmp_path / "nope.bin", "files/nope.bin")
    with pytest.raises(cairn.InvalidInput, match="concurrency"):
        store.upload_file(tmp_path / "nope.bin", "files/nope.bin", concurrency=0)
    assert not store.exists("files/nope.bin")


def test_async_upload_file_and_download_file(store, tmp_path):
    import asyncio

    data = os.urandom(300_000)
    (tmp_path / "a.bin").write_bytes(data)
    astore = store.to_async()

    async def main():
        await astore.upload_file(tmp_path / "a.bin", "files/a.bin")
        return await astore.download_file("files/a.bin", tmp_path / "b.bin")

    meta = asyncio.run(main())
    assert meta.size == len(data)
    assert (tmp_path / "b.bin").read_bytes() == data
