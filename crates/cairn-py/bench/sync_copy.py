#!/usr/bin/env python3
"""Uploading a local directory to one S3 server: ``cairn.sync`` vs a Python loop over
``Store.open`` (what examples/analysis_store did before sync was bound) vs boto3's
``upload_file`` from a thread pool, plus a no-op re-sync.

Reads the server from CAIRN_TEST_<SERVER>_* (scripts/servers/start.sh writes them), writes
--objects files of --size bytes to a temp dir, and times each client over --rounds rounds under
fresh prefixes (median shown). A benchmark, not a test: numbers depend on machine and server.

    scripts/servers/start.sh /tmp/py.env && source /tmp/py.env
    python crates/cairn-py/bench/sync_copy.py --server garage
"""

import argparse
import os
import statistics
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import cairn
from concurrent_gets import server_env


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", default="garage")
    ap.add_argument("--objects", type=int, default=200)
    ap.add_argument("--size", type=int, default=256 * 1024)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    env = server_env(args.server)
    opts = dict(endpoint=env["endpoint"], region=env["region"], access_key_id=env["access_key_id"],
                secret_access_key=env["secret_access_key"], path_style=True, allow_http=True,
                provider=args.server)
    run = f"bench-sync-{uuid.uuid4().hex[:8]}"
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.objects):
            with open(os.path.join(tmp, f"f{i:05d}.bin"), "wb") as f:
                f.write(os.urandom(args.size))
        local = cairn.Store.open(f"file://{tmp}")

        def fresh():
            return cairn.Store.open(f"s3://{env['bucket']}/{run}/{uuid.uuid4().hex[:8]}", **opts)

        def py_loop(dst):
            for m in local.list(""):
                if m.key.startswith(".cairn/"):
                    continue
                with local.open(m.key, "rb") as r, dst.open(m.key, "wb") as w:
                    while chunk := r.read(1024 * 1024):
                        w.write(chunk)

        clients = {
            "cairn.sync": lambda dst: cairn.sync(local, dst),
            "python loop (Store.open)": py_loop,
        }
        try:
            import boto3

            s3 = boto3.client("s3", endpoint_url=env["endpoint"], region_name=env["region"],
                              aws_access_key_id=env["access_key_id"],
                              aws_secret_access_key=env["secret_access_key"])

            def boto(dst):
                prefix = str(dst).split("/", 3)[3]
                names = [n for n in os.listdir(tmp) if n.endswith(".bin")]
                with ThreadPoolExecutor(16) as pool:
                    list(pool.map(lambda n: s3.upload_file(os.path.join(tmp, n), env["bucket"],
                                                           f"{prefix}/{n}"), names))

            clients["boto3 upload_file x16 threads"] = boto
        except ImportError:
            pass
        for name, fn in clients.items():
            times = []
            for _ in range(args.rounds):
                dst = fresh()
                t = time.perf_counter()
                fn(dst)
                times.append(time.perf_counter() - t)
            results[name] = statistics.median(times)
        dst = fresh()
        cairn.sync(local, dst)
        times = []
        for _ in range(args.rounds):
            t = time.perf_counter()
            s = cairn.sync(local, dst)
            times.append(time.perf_counter() - t)
            assert s["transferred"] == 0
        results["cairn.sync, nothing changed"] = statistics.median(times)
    mib = args.objects * args.size / 2**20
    print(f"{args.objects} x {args.size} B to {args.server} ({mib:.0f} MiB), median of {args.rounds}")
    for name, secs in results.items():
        print(f"  {name:32s} {secs:7.3f} s  {mib / secs:8.1f} MiB/s")
    # Leave nothing behind on the shared bucket.
    root = cairn.Store.open(f"s3://{env['bucket']}/{run}", **opts)
    root.delete_many([m.key for m in root.list("")])


if __name__ == "__main__":
    main()
