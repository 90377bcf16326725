#!/usr/bin/env python3
"""Many concurrent 16 KiB GETs through cairn, obstore and boto3 against one S3 server.

Reads the server from CAIRN_TEST_<SERVER>_{ENDPOINT,BUCKET,REGION,ACCESS_KEY_ID,
SECRET_ACCESS_KEY} (scripts/servers/start.sh writes them), uploads --objects objects of
--size bytes under a fresh prefix, then times --requests GETs at --concurrency in flight:

- cairn (asyncio): AsyncStore.get under a semaphore
- cairn (threads): Store.get from a thread pool (the GIL is released during I/O)
- obstore (asyncio): obstore.get_async(...).bytes_async(), if obstore is installed
- aioboto3 (asyncio), if installed
- boto3 (threads): get_object().read() from a thread pool sized like the connection pool

Each client runs one warm-up round, then --rounds timed rounds; the table shows the median.
This is a benchmark, not a test: numbers depend on the machine and the server.

    scripts/servers/start.sh /tmp/py.env && source /tmp/py.env
    python crates/cairn-py/bench/concurrent_gets.py --server garage
"""

import argparse
import asyncio
import os
import statistics
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Dict, List, Optional

import cairn


def server_env(server: str) -> Dict[str, str]:
    prefix = f"CAIRN_TEST_{server.upper()}_"
    fields = ["ENDPOINT", "BUCKET", "REGION", "ACCESS_KEY_ID", "SECRET_ACCESS_KEY"]
    missing = [prefix + f for f in fields if not os.environ.get(prefix + f)]
    if missing:
        sys.exit(f"missing {', '.join(missing)}: run scripts/servers/start.sh ENVFILE && source ENVFILE")
    return {f.lower(): os.environ[prefix + f] for f in fields}


def cairn_options(env: Dict[str, str], server: str) -> Dict[str, object]:
    return {
        "endpoint": env["endpoint"],
        "region": env["region"],
        "access_key_id": env["access_key_id"],
        "secret_access_key": env["secret_access_key"],
        "path_style": True,
        "allow_http": True,
        "provider": server,
        "pool_size": 256,
    }


def run_cairn_async(url: str, opts: Dict[str, object], keys: List[str], conc: int) -> Callable[..., int]:
    # One store for every round, like the other clients: the warm-up's connections are reused.
    store = cairn.AsyncStore(url, **opts)

    async def once(ks: List[str]) -> int:
        sem = asyncio.Semaphore(conc)

        async def one(k: str) -> int:
            async with sem:
                return len(await store.get(k))

        return sum(await asyncio.gather(*(one(k) for k in ks)))

    return lambda ks=keys: asyncio.run(once(ks))


def run_cairn_threads(url: str, opts: Dict[str, object], keys: List[str], conc: int) -> Callable[..., int]:
    store = cairn.Store.open(url, **opts)
    pool = ThreadPoolExecutor(conc)
    return lambda ks=keys: sum(pool.map(lambda k: len(store.get(k)), ks))


def run_obstore(env: Dict[str, str], prefix: str, keys: List[str], conc: int) -> Optional[Callable[..., int]]:
    try:
        import obstore
        from obstore.store import S3Store
    except ImportError:
        return None
    store = S3Store(
        env["bucket"],
        prefix=prefix,
        endpoint=env["endpoint"],
        region=env["region"],
        access_key_id=env["access_key_id"],
        secret_access_key=env["secret_access_key"],
        virtual_hosted_style_request=False,
        client_options={"allow_http": True, "pool_max_idle_per_host": "256"},
    )

    async def once(ks: List[str]) -> int:
        sem = asyncio.Semaphore(conc)

        async def one(k: str) -> int:
            async with sem:
                resp = await obstore.get_async(store, k)
                return len(await resp.bytes_async())

        return sum(await asyncio.gather(*(one(k) for k in ks)))

    return lambda ks=keys: asyncio.run(once(ks))


def run_aioboto3(env: Dict[str, str], prefix: str, keys: List[str], conc: int) -> Optional[Callable[[], int]]:
    try:
        import aioboto3
        from botocore.config import Config
    except ImportError:
        return None

    async def once() -> int:
        session = aioboto3.Session()
        cfg = Config(max_pool_connections=conc, s3={"addressing_style": "path"})
        async with session.client(
            "s3",
            endpoint_url=env["endpoint"],
            region_name=env["region"],
            aws_access_key_id=env["access_key_id"],
            aws_secret_access_key=env["secret_access_key"],
            config=cfg,
        ) as s3:
            sem = asyncio.Semaphore(conc)

            async def one(k: str) -> int:
                async with sem:
                    r = await s3.get_object(Bucket=env["bucket"], Key=f"{prefix}/{k}")
                    async with r["Body"] as body:
                        return len(await body.read())

            return sum(await asyncio.gather(*(one(k) for k in keys)))

    return lambda: asyncio.run(once())


def run_boto3(env: Dict[str, str], prefix: str, keys: List[str], conc: int) -> Optional[Callable[..., int]]:
    try:
        import boto3
        from botocore.config import Config
    except ImportError:
        return None
    s3 = boto3.client(
        "s3",
        endpoint_url=env["endpoint"],
        region_name=env["region"],
        aws_access_key_id=env["access_key_id"],
        aws_secret_access_key=env["secret_access_key"],
        config=Config(max_pool_connections=conc, s3={"addressing_style": "path"}),
    )
    pool = ThreadPoolExecutor(conc)

    def one(k: str) -> int:
        return len(s3.get_object(Bucket=env["bucket"], Key=f"{prefix}/{k}")["Body"].read())

    return lambda ks=keys: sum(pool.map(one, ks))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--server", default="garage", choices=["moto", "garage"])
    ap.add_argument("--objects", type=int, default=256)
    ap.add_argument("--size", type=int, default=16 * 1024)
    ap.add_argument("--requests", type=int, default=4000)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()

    env = server_env(args.server)
    prefix = f"bench-{uuid.uuid4().hex[:10]}"
    url = f"s3://{env['bucket']}/{prefix}"
    opts = cairn_options(env, args.server)
    objects = [f"obj-{i:05}" for i in range(args.objects)]
    keys = [objects[i % len(objects)] for i in range(args.requests)]

    setup = cairn.Store.open(url, **opts)
    payload = os.urandom(args.size)
    pool = ThreadPoolExecutor(16)
    list(pool.map(lambda k: setup.put(k, payload), objects))

    clients = [
        ("cairn (asyncio)", run_cairn_async(url, opts, keys, args.concurrency)),
        ("cairn (threads)", run_cairn_threads(url, opts, keys, args.concurrency)),
        ("obstore (asyncio)", run_obstore(env, prefix, keys, args.concurrency)),
        ("aioboto3 (asyncio)", run_aioboto3(env, prefix, keys, args.concurrency)),
        ("boto3 (threads)", run_boto3(env, prefix, keys, args.concurrency)),
    ]
    results = {}
    try:
        for name, fn in clients:
            if fn is None:
                print(f"{name}: not installed, skipped", file=sys.stderr)
                continue
            total = fn()  # warm-up: connections, credentials
            if total != args.requests * args.size:
                sys.exit(f"{name}: read {total} bytes, expected {args.requests * args.size}")
            times = []
            for _ in range(args.rounds):
                t0 = time.perf_counter()
                fn()
                times.append(time.perf_counter() - t0)
            results[name] = statistics.median(times)
    finally:
        setup.delete_many(objects)

    base = results.get("boto3 (threads)")
    print(
        f"\n{args.requests} GETs of {args.size // 1024} KiB, {args.concurrency} in flight, "
        f"{args.server} at {env['endpoint']}, median of {args.rounds} rounds\n"
    )
    print(f"| {'client':<20} | {'seconds':>8} | {'req/s':>8} | {'MiB/s':>7} | {'vs boto3':>8} |")
    print(f"| {'-' * 20} | {'-' * 8}:| {'-' * 8}:| {'-' * 7}:| {'-' * 8}:|")
    for name, secs in results.items():
        rps = args.requests / secs
        mibs = args.requests * args.size / secs / 2**20
        ratio = f"{base / secs:.2f}x" if base else "-"
        print(f"| {name:<20} | {secs:>8.3f} | {rps:>8.0f} | {mibs:>7.1f} | {ratio:>8} |")


if __name__ == "__main__":
    main()
