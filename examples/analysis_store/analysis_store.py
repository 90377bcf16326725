#!/usr/bin/env python3
"""Use case 003: an analysis API's storage, on cairn instead of hand-written boto3.

The API saves each analysis as JSON under ``analysis/{year}/{month}/{request_id}.json``, lists
and counts them, reports their total size, migrates a local store to S3 and backs S3 up to a
local directory. Configuration follows the application's environment:

    STORAGE_TYPE   local (default) or s3
    LOCAL_DIR      directory of the local store (default ./analysis_results)
    S3_BUCKET_NAME bucket;  S3_PREFIX  key prefix (default design-analysis)
    S3_ENDPOINT_URL, S3_REGION, S3_ACCESS_KEY_ID, S3_SECRET_ACCESS_KEY, S3_PATH_STYLE,
    or the usual AWS_* variables / profile: read by cairn itself.

Run as a demo (what examples/analysis_store/run.sh does): saves sample analyses locally,
migrates them to S3, backs S3 up to a second local directory, checks every copy byte for byte,
and prints the storage stats as JSON on stdout. Exits non-zero if anything does not match.
"""

import datetime as dt
import json
import os
import sys
import tempfile
import uuid
from collections import Counter
from typing import Any, Dict, Iterator, List, Optional

import cairn

ROOT = "analysis"


class AnalysisStore:
    """Analyses as JSON objects under ``analysis/YYYY/MM/<request_id>.json`` in any store."""

    def __init__(self, store: cairn.Store) -> None:
        self.store = store

    @classmethod
    def from_env(cls) -> "AnalysisStore":
        """The store named by STORAGE_TYPE (local or s3) and its variables."""
        kind = os.environ.get("STORAGE_TYPE", "local")
        if kind == "local":
            directory = os.path.abspath(os.environ.get("LOCAL_DIR", "analysis_results"))
            return cls(cairn.Store.open(f"file://{directory}"))
        if kind == "s3":
            bucket = os.environ["S3_BUCKET_NAME"]
            prefix = os.environ.get("S3_PREFIX", "design-analysis")
            return cls(cairn.Store.open(f"s3://{bucket}/{prefix}"))
        raise SystemExit(f"STORAGE_TYPE must be local or s3, not {kind!r}")

    @staticmethod
    def key_for(request_id: str, when: dt.datetime) -> str:
        return f"{ROOT}/{when:%Y}/{when:%m}/{request_id}.json"

    def save_analysis(self, request_id: str, result: Dict[str, Any], when: Optional[dt.datetime] = None) -> str:
        """Saves one analysis; returns its key. Errors raise (nothing is swallowed)."""
        when = when or dt.datetime.now(dt.timezone.utc)
        key = self.key_for(request_id, when)
        body = json.dumps({"request_id": request_id, "saved_at": when.isoformat(), **result}).encode()
        self.store.put(
            key,
            body,
            content_type="application/json",
            metadata={"implementation": str(result.get("implementation", "unknown"))},
        )
        return key

    def find(self, request_id: str) -> Optional[str]:
        """The key of an analysis by id, newest month first, or None."""
        for year in sorted(self.store.list_prefixes(f"{ROOT}/"), reverse=True):
            for month in sorted(self.store.list_prefixes(year), reverse=True):
                key = f"{month}{request_id}.json"
                if self.store.exists(key):
                    return key
        return None

    def load_analysis(self, request_id: str) -> Optional[Dict[str, Any]]:
        key = self.find(request_id)
        if key is None:
            return None
        with self.store.open(key) as f:
            return json.load(f)

    def list_analyses(self, year: Optional[int] = None, month: Optional[int] = None) -> Iterator[cairn.ObjectMeta]:
        """Analyses in key order, optionally for one year or month (listed lazily)."""
        prefix = f"{ROOT}/"
        if year is not None:
            prefix += f"{year:04}/"
            if month is not None:
                prefix += f"{month:02}/"
        return self.store.list(prefix)

    def storage_stats(self) -> Dict[str, Any]:
        """Count and total size from one listing; implementations from each object's JSON."""
        count, size = 0, 0
        months: Counter = Counter()
        implementations: Counter = Counter()
        for meta in self.list_analyses():
            count += 1
            size += meta.size
            months[meta.key.split("/")[1] + "-" + meta.key.split("/")[2]] += 1
            with self.store.open(meta.key) as f:
                implementations[json.load(f).get("implementation", "unknown")] += 1
        return {
            "store": str(self.store),
            "total_analyses": count,
            "total_size_bytes": size,
            "total_size_mb": round(size / 2**20, 3),
            "per_month": dict(sorted(months.items())),
            "implementations_used": dict(sorted(implementations.items())),
        }


def setup_bucket() -> cairn.Bucket:
    """The use case's bucket set-up in one call: SSE AES-256, versioning, and the 30 d ->
    STANDARD_IA, 90 d -> GLACIER, 365 d expiry lifecycle (cairn's ``analysis`` preset). Safe to
    run at every start: a bucket already set up is left as it is."""
    bucket = cairn.Bucket(f"s3://{os.environ['S3_BUCKET_NAME']}")
    if os.environ.get("ANALYSIS_CREATE_BUCKET") and not bucket.exists():
        bucket.create()
    first = bucket.setup("analysis")
    print(f"bucket set-up changed: {[c['setting'] for c in first['changed']]}", file=sys.stderr)
    assert bucket.setup("analysis")["changed"] == [], "set-up is idempotent"
    return bucket


def storage_info(bucket: cairn.Bucket) -> Dict[str, Any]:
    """What the use case reports about its bucket: versioning and encryption."""
    info = bucket.info()
    return {"bucket": info["bucket"], "versioning": info["versioning"], "encryption": info["encryption"]}


def copy_all(src: cairn.Store, dst: cairn.Store, prefix: str) -> List[str]:
    """Makes ``dst`` match ``src`` under ``prefix`` with cairn's sync (streamed, concurrent,
    unchanged objects skipped); returns the keys copied. Raises if any object failed."""
    copied: List[str] = []

    def progress(event: Dict[str, Any]) -> None:
        if event["event"] == "item_done" and event["outcome"] == "transferred":
            copied.append(event["key"])

    summary = cairn.sync(src, dst, include=[f"{prefix}**"], progress=progress)
    if summary["failed"]:
        first = summary["failures"][0]
        raise RuntimeError(f"{summary['failed']} objects failed to copy, e.g. {first['key']}: {first['message']}")
    return sorted(copied)


def migrate_local_to_s3(local: AnalysisStore, s3: AnalysisStore) -> List[str]:
    return copy_all(local.store, s3.store, f"{ROOT}/")


def backup_s3_to_local(s3: AnalysisStore, backup_dir: str) -> AnalysisStore:
    backup = AnalysisStore(cairn.Store.open(f"file://{os.path.abspath(backup_dir)}"))
    copy_all(s3.store, backup.store, f"{ROOT}/")
    return backup


def same_contents(a: AnalysisStore, b: AnalysisStore) -> bool:
    left = {m.key: m.size for m in a.list_analyses()}
    right = {m.key: m.size for m in b.list_analyses()}
    return left == right and all(a.store.get(k) == b.store.get(k) for k in left)


def demo() -> int:
    with tempfile.TemporaryDirectory(prefix="analysis-store-") as work:
        return run_demo(work)


def run_demo(work: str) -> int:
    local = AnalysisStore(cairn.Store.open(f"file://{work}/analysis_results"))
    impls = ["hybrid", "openai", "langchain"]
    ids = []
    for i in range(12):
        when = dt.datetime(2025 + (i >= 9), (i * 5) % 12 + 1, 1 + i, tzinfo=dt.timezone.utc)
        rid = f"{uuid.UUID(int=i + 1)}"
        local.save_analysis(rid, {"implementation": impls[i % 3], "insights": [f"insight {i}"] * (i + 1)}, when)
        ids.append(rid)
    print(f"saved {len(ids)} analyses to {local.store}", file=sys.stderr)

    assert local.load_analysis(ids[4])["insights"] == ["insight 4"] * 5
    assert local.load_analysis("no-such-id") is None
    march = [m.key for m in local.list_analyses(2025, 11)]
    print(f"2025-11: {march}", file=sys.stderr)

    if os.environ.get("STORAGE_TYPE", "local") != "s3":
        print(json.dumps(local.storage_stats(), indent=2))
        return 0

    bucket = setup_bucket()
    s3 = AnalysisStore.from_env()
    existing = [m.key for m in s3.list_analyses()]
    if existing:
        s3.store.delete_many(existing)
    migrated = migrate_local_to_s3(local, s3)
    print(f"migrated {len(migrated)} analyses to {s3.store}", file=sys.stderr)
    if not same_contents(local, s3):
        print("error: S3 does not match the local store after migration", file=sys.stderr)
        return 1
    # sync skips what is already there: a second migration copies nothing.
    assert len(migrated) == 12 and migrate_local_to_s3(local, s3) == []

    backup = backup_s3_to_local(s3, f"{work}/local_backup")
    print(f"backed up S3 to {backup.store}", file=sys.stderr)
    if not same_contents(s3, backup):
        print("error: the backup does not match S3", file=sys.stderr)
        return 1

    stats = s3.storage_stats()
    assert stats == {**local.storage_stats(), "store": str(s3.store)}
    assert stats["total_analyses"] == 12
    # The same counts from cairn's streamed stats (no object is read), by year/month.
    quick = s3.store.stats(f"{ROOT}/", depth=2)
    assert quick["total"]["objects"] == stats["total_analyses"]
    assert {k.rstrip("/").replace("/", "-"): v["objects"] for k, v in quick["by_prefix"].items()} == stats["per_month"]
    print(json.dumps({**stats, "storage_info": storage_info(bucket), "by_class": quick["by_class"]}, indent=2))
    s3.store.delete_many([m.key for m in s3.list_analyses()])
    if os.environ.get("ANALYSIS_CREATE_BUCKET"):
        bucket.delete(force=True)
    return 0


if __name__ == "__main__":
    sys.exit(demo())
