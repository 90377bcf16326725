#!/usr/bin/env python3
"""obstore (object_store from Python) as a peer: upload or download a tree or one file.

Usage: obstore_peer.py up   SRC_DIR_OR_FILE s3://BUCKET[/PREFIX_OR_KEY]
       obstore_peer.py down s3://BUCKET[/PREFIX_OR_KEY] DST_DIR_OR_FILE
Reads AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and CONCURRENCY
(default 32) from the environment.
"""
import asyncio
import os
import sys
from pathlib import Path

import obstore as obs
from obstore.store import S3Store

CONC = int(os.environ.get("CONCURRENCY", "32"))


def split(url: str) -> tuple[str, str]:
    bucket, _, path = url.removeprefix("s3://").partition("/")
    return bucket, path


def store(bucket: str) -> S3Store:
    return S3Store(
        bucket,
        endpoint=os.environ["AWS_ENDPOINT_URL"],
        region=os.environ.get("AWS_REGION", "us-east-1"),
        access_key_id=os.environ["AWS_ACCESS_KEY_ID"],
        secret_access_key=os.environ["AWS_SECRET_ACCESS_KEY"],
        virtual_hosted_style_request=False,
        client_options={"allow_http": True},
    )


async def up(s: S3Store, src: Path, dst: str) -> None:
    if src.is_file():
        await obs.put_async(s, dst, src)
        return
    sem = asyncio.Semaphore(CONC)

    async def one(p: Path) -> None:
        async with sem:
            rel = p.relative_to(src).as_posix()
            await obs.put_async(s, f"{dst.rstrip('/')}/{rel}" if dst else rel, p)

    await asyncio.gather(*(one(p) for p in src.rglob("*") if p.is_file()))


async def fetch(s: S3Store, key: str, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    r = await obs.get_async(s, key)
    with open(path, "wb") as f:
        async for chunk in r.stream(min_chunk_size=8 * 1024 * 1024):
            f.write(chunk)


async def down(s: S3Store, src: str, dst: Path) -> None:
    prefix = src.rstrip("/") + "/" if src else ""
    keys = []
    async for batch in obs.list(s, prefix):
        keys.extend(m["path"] for m in batch)
    if not keys:
        await fetch(s, src, dst)
        return
    sem = asyncio.Semaphore(CONC)

    async def one(k: str) -> None:
        async with sem:
            await fetch(s, k, dst / k[len(prefix) :])

    await asyncio.gather(*(one(k) for k in keys))


def main() -> None:
    mode, a, b = sys.argv[1:4]
    if mode == "up":
        bucket, key = split(b)
        asyncio.run(up(store(bucket), Path(a), key))
    else:
        bucket, key = split(a)
        asyncio.run(down(store(bucket), key, Path(b)))


if __name__ == "__main__":
    main()
