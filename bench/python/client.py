#!/usr/bin/env python3
"""One measured client run for bench/python/run.sh: one tool, one scenario, one process, so
that peak RSS and CPU belong to that tool alone. Prints one JSON line.

Usage: client.py seed
       client.py TOOL small|large        TOOL: cairn, obstore or boto3

- small: N_SMALL GETs of the N_SMALL seeded objects (SMALL_BYTES each), CONCURRENCY in flight,
  through crates/cairn-py/bench/concurrent_gets.py's clients: cairn's AsyncStore.get and
  obstore's get_async + bytes_async under an asyncio semaphore; boto3 from a thread pool of
  CONCURRENCY threads (boto3 has no asyncio API). One untimed warm-up pass of WARMUP GETs
  first (connections, credentials), then one timed pass.
- large: one streamed read of the LARGE_MIB object. LARGE_READ=chunks (default) reads CHUNK_MIB
  at a time: cairn `store.open(key, "rb").read(CHUNK)`, obstore `get(...).stream(min_chunk_size=
  CHUNK)`, boto3 `get_object()["Body"].iter_chunks(CHUNK)`; LARGE_READ=whole is one call each:
  cairn `store.open(key).read()`, obstore `get(...).bytes()`, boto3 `Body.read()`.

Wall time covers the timed pass only; CPU is user+sys of this whole process (all threads)
over that pass, from getrusage deltas; peak RSS is the process's ru_maxrss at the end.
Server and sizes come from the environment: ENDPOINT, BUCKET, REGION, AK, SK, N_SMALL,
SMALL_BYTES, CONCURRENCY, LARGE_MIB, CHUNK_MIB, LARGE_READ, WARMUP.
"""

import json
import os
import resource
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "crates" / "cairn-py" / "bench"))

import cairn  # noqa: E402
from concurrent_gets import run_boto3, run_cairn_async, run_obstore  # noqa: E402

E = os.environ
N_SMALL = int(E.get("N_SMALL", "10000"))
SMALL_BYTES = int(E.get("SMALL_BYTES", "16384"))
CONC = int(E.get("CONCURRENCY", "64"))
LARGE_MIB = int(E.get("LARGE_MIB", "1024"))
CHUNK = int(E.get("CHUNK_MIB", "8")) * 1024 * 1024
LARGE_READ = E.get("LARGE_READ", "chunks")
WARMUP = int(E.get("WARMUP", "1000"))
SMALL_PREFIX = "small"
LARGE_KEY = "large/large.bin"

ENV = {
    "endpoint": E["ENDPOINT"],
    "bucket": E["BUCKET"],
    "region": E.get("REGION", "us-east-1"),
    "access_key_id": E["AK"],
    "secret_access_key": E["SK"],
}
CAIRN_OPTS = {
    "endpoint": ENV["endpoint"],
    "region": ENV["region"],
    "access_key_id": ENV["access_key_id"],
    "secret_access_key": ENV["secret_access_key"],
    "path_style": True,
    "allow_http": True,
    "provider": "generic",
    "pool_size": 256,
}


def small_keys() -> list:
    return [f"obj-{i:05}" for i in range(N_SMALL)]


def seed() -> None:
    store = cairn.Store.open(f"s3://{ENV['bucket']}/{SMALL_PREFIX}", **CAIRN_OPTS)
    payload = os.urandom(SMALL_BYTES)
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda k: store.put(k, payload), small_keys()))
    big = cairn.Store.open(f"s3://{ENV['bucket']}", **CAIRN_OPTS)
    block = os.urandom(1024 * 1024)
    with big.open(LARGE_KEY, "wb") as f:
        for i in range(LARGE_MIB):
            # Distinct blocks, so nothing along the way can dedupe or compress them.
            f.write(i.to_bytes(8, "little") + block[8:])
    print(json.dumps({"seeded": N_SMALL, "small_bytes": SMALL_BYTES, "large_mib": LARGE_MIB}))


def small(tool: str):
    keys = small_keys()
    url = f"s3://{ENV['bucket']}/{SMALL_PREFIX}"
    make = {
        "cairn": lambda k: run_cairn_async(url, CAIRN_OPTS, k, CONC),
        "obstore": lambda k: run_obstore(ENV, SMALL_PREFIX, k, CONC),
        "boto3": lambda k: run_boto3(ENV, SMALL_PREFIX, k, CONC),
    }[tool]
    fn = make(keys)
    if fn is None:
        sys.exit(f"{tool} is not installed")
    fn(keys[: min(WARMUP, len(keys))])  # the same client, pool and connections as timed
    return fn, len(keys) * SMALL_BYTES


def large(tool: str):
    want = LARGE_MIB * 1024 * 1024
    whole = LARGE_READ == "whole"
    if tool == "cairn":
        store = cairn.Store.open(f"s3://{ENV['bucket']}", **CAIRN_OPTS)

        def fn() -> int:
            with store.open(LARGE_KEY, "rb") as f:
                if whole:
                    return len(f.read())
                n = 0
                while chunk := f.read(CHUNK):
                    n += len(chunk)
                return n

    elif tool == "obstore":
        import obstore
        from obstore.store import S3Store

        store = S3Store(
            ENV["bucket"],
            endpoint=ENV["endpoint"],
            region=ENV["region"],
            access_key_id=ENV["access_key_id"],
            secret_access_key=ENV["secret_access_key"],
            virtual_hosted_style_request=False,
            client_options={"allow_http": True},
        )

        def fn() -> int:
            r = obstore.get(store, LARGE_KEY)
            if whole:
                return len(r.bytes())
            return sum(len(c) for c in r.stream(min_chunk_size=CHUNK))

    elif tool == "boto3":
        import boto3
        from botocore.config import Config

        s3 = boto3.client(
            "s3",
            endpoint_url=ENV["endpoint"],
            region_name=ENV["region"],
            aws_access_key_id=ENV["access_key_id"],
            aws_secret_access_key=ENV["secret_access_key"],
            config=Config(s3={"addressing_style": "path"}),
        )

        def fn() -> int:
            body = s3.get_object(Bucket=ENV["bucket"], Key=LARGE_KEY)["Body"]
            if whole:
                return len(body.read())
            return sum(len(c) for c in body.iter_chunks(CHUNK))

    else:
        sys.exit(f"unknown tool {tool}")
    return fn, want


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main() -> None:
    if sys.argv[1:] == ["seed"]:
        seed()
        return
    tool, scenario = sys.argv[1:3]
    fn, want = {"small": small, "large": large}[scenario](tool)
    c0, t0 = cpu(), time.perf_counter()
    got = fn()
    wall, cpu_s = time.perf_counter() - t0, cpu() - c0
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "label": f"{tool}:{scenario}",
                "tool": tool,
                "scenario": scenario,
                "wall_s": round(wall, 4),
                "cpu_s": round(cpu_s, 3),
                "rss_mib": round(rss_mib, 1),
                "bytes": got,
                "verify": "ok" if got == want else f"read {got} bytes, expected {want}",
            }
        )
    )


if __name__ == "__main__":
    main()
