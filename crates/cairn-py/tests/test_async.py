"""AsyncStore: the same calls as awaitables on the shared runtime."""

import asyncio
import socket
import subprocess
import sys
import threading

import pytest

import cairn


def test_async_roundtrip(spec):
    url, options = spec

    async def main():
        store = await cairn.AsyncStore.open(url, **options)
        assert isinstance(store, cairn.AsyncStore)
        res = await store.put("a/x.txt", b"hello", content_type="text/plain")
        assert isinstance(res, cairn.PutResult)
        assert await store.get("a/x.txt") == b"hello"
        assert await store.get("a/x.txt", range=(1, 3)) == b"el"
        meta = await store.head("a/x.txt")
        assert meta.size == 5
        assert await store.exists("a/x.txt")
        await store.copy("a/x.txt", "a/y.txt")
        await store.rename("a/y.txt", "b/z.txt")
        keys = [m.key async for m in store.list("")]
        assert keys == ["a/x.txt", "b/z.txt"]
        entries = [e async for e in store.list("", recursive=False)]
        assert entries == ["a/", "b/"]
        assert await store.list_prefixes("") == ["a/", "b/"]
        assert [m.key for m in await store.list("a/").collect()] == ["a/x.txt"]
        assert await store.delete_many(["a/x.txt", "b/z.txt"]) == []
        await store.delete("a/x.txt")
        assert not await store.exists("a/x.txt")
        await store.health_check()

    asyncio.run(main())


def test_async_errors_raise_the_same_classes(spec):
    url, options = spec

    async def main():
        store = await cairn.AsyncStore.open(url, **options)
        with pytest.raises(cairn.NotFound) as info:
            await store.get("missing/key")
        assert info.value.operation == "get"
        assert info.value.key == "missing/key"
        with pytest.raises(cairn.InvalidInput):
            await store.put("../escape", b"")

    asyncio.run(main())


def test_many_concurrent_requests(spec):
    url, options = spec

    async def main():
        store = await cairn.AsyncStore.open(url, **options)
        payloads = {f"c/{i:03}": bytes([i % 256]) * (1000 + i) for i in range(200)}
        await asyncio.gather(*(store.put(k, v) for k, v in payloads.items()))
        got = await asyncio.gather(*(store.get(k) for k in payloads))
        assert dict(zip(payloads, got)) == payloads
        assert len([m async for m in store.list("c/")]) == 200
        await store.delete_many(list(payloads))

    asyncio.run(main())


def test_sync_and_async_views_share_one_backend():
    store = cairn.Store.open("memory://")
    astore = store.to_async()
    store.put("k", b"v")

    async def main():
        assert await astore.get("k") == b"v"
        await astore.put("k2", b"v2")

    asyncio.run(main())
    assert store.get("k2") == b"v2"
    again = cairn.Store(astore)
    assert isinstance(again, cairn.Store)
    assert again.get("k") == b"v"
    assert cairn.AsyncStore(store).__class__ is cairn.AsyncStore


def test_cancelled_request_does_not_break_the_store():
    async def main():
        store = await cairn.AsyncStore.open("memory://")
        await store.put("k", b"v" * 1000)
        task = asyncio.ensure_future(store.get("k"))
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await store.get("k") == b"v" * 1000

    asyncio.run(main())


# Run in a child process: the traceback, if any, comes from a cairn runtime thread and goes
# straight to the process's stderr, which only a parent can capture whole.
CLOSED_LOOP_CHILD = r'''
import asyncio, gc, socket, sys, threading, time, weakref
import cairn

# A server that accepts the request and holds it until the loop is closed, then hangs up:
# the call is still running when its loop closes, whatever the machine's speed.
listener = socket.create_server(("127.0.0.1", 0))
port = listener.getsockname()[1]
release = threading.Event()

def serve():
    conn, _ = listener.accept()
    release.wait()
    conn.close()

threading.Thread(target=serve, daemon=True).start()
store = cairn.AsyncStore(
    "s3://bucket/p", endpoint=f"http://127.0.0.1:{port}", region="us-east-1",
    access_key_id="AKIDEXAMPLE", secret_access_key="not-a-secret", path_style=True,
    allow_http=True, max_retries=0, retry=False,
)
watch = []

async def start():
    # Fire and forget: nothing awaits or cancels it before the loop closes.
    fut = store.get("slow-key")
    watch.append(weakref.ref(fut))

loop = asyncio.new_event_loop()
loop.run_until_complete(start())
loop.close()
release.set()
# The runtime drops its reference to the future once it has tried to complete it.
deadline = time.monotonic() + 60
while watch[0]() is not None:
    if time.monotonic() > deadline:
        sys.exit("the call never completed")
    gc.collect()
    cairn.config_keys()  # a native call: lets pyo3 release references it deferred
    time.sleep(0.01)
print("done")
'''


def test_a_call_whose_loop_closed_first_is_dropped_quietly():
    out = subprocess.run(
        [sys.executable, "-c", CLOSED_LOOP_CHILD], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "done"
    assert out.stderr == "", out.stderr


def test_cancelling_the_asyncio_task_cancels_the_request():
    # A server that never answers: the request ends only if cancelling the task drops it,
    # which closes the connection the server is reading.
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    got_request, hung_up = threading.Event(), threading.Event()

    def serve():
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            got_request.set()
            while conn.recv(65536):
                pass
            hung_up.set()

    threading.Thread(target=serve, daemon=True).start()

    async def main():
        store = cairn.AsyncStore(
            "s3://bucket/p", endpoint=f"http://127.0.0.1:{port}", region="us-east-1",
            access_key_id="AKIDEXAMPLE", secret_access_key="not-a-secret", path_style=True,
            allow_http=True, max_retries=0, retry=False, timeout="300s",
        )
        task = asyncio.ensure_future(store.get("never-answered"))
        assert await asyncio.get_running_loop().run_in_executor(None, got_request.wait, 60)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert hung_up.wait(60), "the request was still running after its task was cancelled"
    listener.close()
