#!/usr/bin/env python3
"""Use case 000 as the application wrote it: plain boto3, configured by S3_* env vars.

Archives benchmark reports under benchmarks/{repo-id}/{timestamp}-{run-type}.json, lists the
earlier ones, downloads the latest and checks it for a regression. Nothing here knows about
cairn: S3_ENDPOINT_URL points at `cairn serve`.
"""

import json
import os
import sys
import time

import boto3


def client():
    return boto3.client(
        "s3",
        endpoint_url=os.environ["S3_ENDPOINT_URL"],
        aws_access_key_id=os.environ["S3_ACCESS_KEY_ID"],
        aws_secret_access_key=os.environ["S3_SECRET_ACCESS_KEY"],
        region_name=os.environ.get("S3_REGION", "us-east-1"),
    )


def main() -> None:
    s3, bucket, repo = client(), os.environ["S3_BUCKET_NAME"], "a1b2c3d4"
    runs = []
    for i, (run_type, ms) in enumerate([("lite", 120.0), ("pro", 340.5), ("lite", 131.0)]):
        ts = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(1_760_000_000 + i * 3600))
        key = f"benchmarks/{repo}/{ts}-{run_type}.json"
        report = {"repo": repo, "run_type": run_type, "median_ms": ms, "tests": 812}
        s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(report).encode(),
                      ContentType="application/json")
        runs.append(key)
        print(f"uploaded {key}", file=sys.stderr)
    listed = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"benchmarks/{repo}/"):
        listed += [o["Key"] for o in page.get("Contents", [])]
    assert listed == sorted(runs), listed
    lite = [k for k in listed if k.endswith("-lite.json")]
    prev, last = (json.loads(s3.get_object(Bucket=bucket, Key=k)["Body"].read()) for k in lite[-2:])
    change = (last["median_ms"] - prev["median_ms"]) / prev["median_ms"] * 100
    regressed = change > 5
    print(json.dumps({"latest": lite[-1], "change_pct": round(change, 1), "regressed": regressed}))
    assert regressed, "the example's third run is 9% slower than the first"
    head = s3.head_object(Bucket=bucket, Key=lite[-1])
    assert head["ContentType"] == "application/json"


if __name__ == "__main__":
    main()
