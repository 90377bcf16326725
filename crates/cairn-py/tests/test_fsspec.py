"""The fsspec filesystem (protocol "cairn") over every backend."""

import csv
import io

import fsspec
import pytest

import cairn
from cairn.fsspec import CairnFileSystem
from servers import require_module


@pytest.fixture
def fs(spec):
    url, options = spec
    fs = fsspec.filesystem("cairn", url=url, skip_instance_cache=True, **options)
    yield fs
    if url.startswith("s3://"):
        keys = [m.key for m in fs.store.list("")]
        if keys:
            fs.store.delete_many(keys)


def test_protocol_is_registered():
    assert fsspec.get_filesystem_class("cairn") is CairnFileSystem


def test_pipe_cat_info_ls(fs):
    fs.pipe_file("data/a.csv", b"x,y\n1,2\n")
    fs.pipe_file("data/sub/b.txt", b"hi")
    assert fs.cat_file("data/a.csv") == b"x,y\n1,2\n"
    assert fs.cat_file("cairn://data/a.csv", start=2, end=5) == b"y\n1"
    assert fs.cat_file("data/a.csv", start=-4) == b"1,2\n"
    assert fs.cat_file("data/a.csv", start=1, end=-1) == b",y\n1,2"
    assert fs.cat_file("data/a.csv", start=100) == b""
    info = fs.info("data/a.csv")
    assert info["type"] == "file" and info["size"] == 8 and info["name"] == "data/a.csv"
    assert fs.info("data")["type"] == "directory"
    assert fs.info("")["type"] == "directory"
    assert fs.ls("data", detail=False) == ["data/a.csv", "data/sub"]
    assert fs.ls("data/a.csv", detail=False) == ["data/a.csv"]
    assert fs.isdir("data/sub") and fs.isfile("data/sub/b.txt")
    assert fs.exists("data/a.csv") and not fs.exists("data/nope")
    with pytest.raises(FileNotFoundError):
        fs.info("data/nope")
    with pytest.raises(FileNotFoundError):
        fs.ls("nothing")


def test_find_walk_glob_du(fs):
    for k in ["t/a.csv", "t/b.csv", "t/sub/c.csv", "t/sub/d.txt"]:
        fs.pipe_file(k, b"12345")
    assert fs.find("t") == ["t/a.csv", "t/b.csv", "t/sub/c.csv", "t/sub/d.txt"]
    assert fs.find("t/a.csv") == ["t/a.csv"]
    assert fs.find("t", maxdepth=1) == ["t/a.csv", "t/b.csv"]
    assert sorted(fs.glob("t/**/*.csv")) == ["t/a.csv", "t/b.csv", "t/sub/c.csv"]
    assert fs.du("t") == 20
    assert [d for d, _, _ in fs.walk("t")] == ["t", "t/sub"]


def test_open_text_and_binary(fs):
    with fs.open("cairn://f/rows.csv", "w", newline="") as f:
        csv.writer(f).writerows([["a", "b"], ["1", "2"]])
    with fs.open("f/rows.csv", "r", newline="") as f:
        assert list(csv.reader(f)) == [["a", "b"], ["1", "2"]]
    with fs.open("f/rows.csv", "rb") as f:
        assert f.read(3) == b"a,b"
    with fs.open("f/rows.csv", "rt") as f:
        assert f.readline().strip() == "a,b"


def test_fsspec_open_by_url_with_storage_options(spec):
    url, options = spec
    with fsspec.open("cairn://o/x.txt", "wt", url=url, **options) as f:
        f.write("through fsspec.open\n")
    with fsspec.open("cairn://o/x.txt", "rt", url=url, **options) as f:
        assert f.read() == "through fsspec.open\n"


def test_copy_move_remove(fs):
    fs.pipe_file("m/a", b"A")
    fs.cp_file("m/a", "m/b")
    assert fs.cat_file("m/b") == b"A"
    fs.mv("m/b", "m/c")
    assert not fs.exists("m/b") and fs.cat_file("m/c") == b"A"
    fs.pipe_file("m/d/e", b"E")
    fs.mkdir("m/newdir")  # a no-op, like every object store
    fs.rm("m", recursive=True)
    assert fs.find("m") == []
    fs.pipe_file("m/one", b"1")
    fs.rm_file("m/one")
    assert not fs.exists("m/one")


def test_from_store_shares_an_open_store():
    store = cairn.Store.open("memory://")
    store.put("k/v", b"value")
    fs = CairnFileSystem.from_store(store)
    assert fs.cat_file("k/v") == b"value"


def test_missing_url_says_how_to_configure():
    with pytest.raises(cairn.InvalidInput, match="url="):
        CairnFileSystem(skip_instance_cache=True)


def test_transactions_are_refused(fs):
    with pytest.raises(cairn.Unsupported):
        fs._open("x", "wb", autocommit=False)


def test_pandas_through_fsspec(spec):
    pd = require_module("pandas")
    url, options = spec
    df = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})
    # One filesystem instance: each open of memory:// is a new, empty store.
    fs = fsspec.filesystem("cairn", url=url, skip_instance_cache=True, **options)
    with fs.open("pd/df.csv", "w") as f:
        df.to_csv(f, index=False)
    with fs.open("pd/df.csv", "rb") as f:
        assert pd.read_csv(f).equals(df)
    if url.startswith("memory://"):
        return
    # Persistent stores: pandas' own cairn:// URL handling, and the bytes via a plain Store.
    df.to_csv("cairn://pd/df2.csv", index=False, storage_options={"url": url, **options})
    back = pd.read_csv("cairn://pd/df2.csv", storage_options={"url": url, **options})
    assert back.equals(df)
    raw = io.BytesIO(cairn.Store.open(url, **options).get("pd/df2.csv"))
    assert pd.read_csv(raw).equals(df)
