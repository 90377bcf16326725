"""One runtime per process, thread safety, and the package's shape."""

import os
import threading

import pytest

import cairn


def _threads():
    return len(os.listdir("/proc/self/task"))


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="needs /proc (Linux)")
def test_stores_share_one_runtime():
    cairn.Store.open("memory://").put("warm", b"up")  # the runtime exists from here on
    before = _threads()
    stores = [cairn.Store.open("memory://") for _ in range(20)]
    for i, s in enumerate(stores):
        s.put(f"k{i}", b"x")
        assert s.get(f"k{i}") == b"x"
    # A runtime per store or per call would add at least one thread each.
    assert _threads() - before < 10


def test_threads_share_a_store(store):
    errors = []

    def worker(n):
        try:
            for i in range(15):
                key = f"threads/{n}/{i}"
                store.put(key, f"{n}-{i}".encode())
                assert store.get(key) == f"{n}-{i}".encode()
        except Exception as e:  # surfaced below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(list(store.list("threads/"))) == 120


def test_store_open_on_class_and_instance():
    store = cairn.Store.open("memory://")
    assert isinstance(store, cairn.Store)
    store.put("a", b"1")
    with store.open("a") as f:
        assert f.read() == b"1"


def test_version_and_typing_marker():
    assert cairn.__version__
    here = os.path.dirname(cairn.__file__)
    assert os.path.exists(os.path.join(here, "py.typed"))
    assert os.path.exists(os.path.join(here, "__init__.pyi"))
