#!/usr/bin/env python3
"""Use case 002 as the application wrote it: plain boto3 against S3_ENDPOINT_URL.

Uploads a directory tree of CSV files preserving its structure (data/{track}/{file}), then
discovers tracks (common prefixes) and sessions (from file names), and loads lap times by
trying the file-name variants the app knows (underscores or hyphens).
"""

import csv
import io
import os
import re
import tempfile
from pathlib import Path

import boto3


def client():
    return boto3.client(
        "s3",
        endpoint_url=os.environ["S3_ENDPOINT_URL"],
        aws_access_key_id=os.environ["S3_ACCESS_KEY_ID"],
        aws_secret_access_key=os.environ["S3_SECRET_ACCESS_KEY"],
        region_name=os.environ.get("S3_REGION", "us-east-1"),
    )


def make_tree(root: Path) -> None:
    for track in ["barber", "cota", "sonoma"]:
        for session in ["R1", "R2"]:
            d = root / track
            d.mkdir(parents=True, exist_ok=True)
            sep = "_" if track != "cota" else "-"
            with open(d / f"{track}{sep}lap{sep}times{sep}{session}.csv", "w", newline="") as f:
                w = csv.writer(f)
                w.writerow(["lap", "vehicle", "seconds"])
                for lap in range(1, 40):
                    w.writerow([lap, f"GR86-{lap % 7}", 98.0 + (lap % 5) * 0.37])
            (d / f"{track}{sep}telemetry{sep}{session}.csv").write_text("t,speed\n" + "".join(
                f"{i},{120 + i % 30}\n" for i in range(5000)))


def upload_tree(s3, bucket: str, root: Path) -> int:
    n = 0
    for path in sorted(root.rglob("*")):
        if path.is_file():
            key = "data/" + path.relative_to(root).as_posix()
            s3.upload_file(str(path), bucket, key, ExtraArgs={"ContentType": "text/csv"})
            n += 1
    return n


def tracks(s3, bucket: str) -> list:
    r = s3.list_objects_v2(Bucket=bucket, Prefix="data/", Delimiter="/")
    return [p["Prefix"].split("/")[1] for p in r.get("CommonPrefixes", [])]


def sessions(s3, bucket: str, track: str) -> list:
    found = set()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"data/{track}/"):
        for o in page.get("Contents", []):
            m = re.search(r"[_-](R\d+)\.csv$", o["Key"])
            if m:
                found.add(m.group(1))
    return sorted(found)


def load_lap_times(s3, bucket: str, track: str, session: str):
    for sep in ["_", "-"]:
        key = f"data/{track}/{track}{sep}lap{sep}times{sep}{session}.csv"
        try:
            body = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()
        except s3.exceptions.NoSuchKey:
            continue
        return list(csv.DictReader(io.StringIO(body)))
    return None


def main() -> None:
    s3, bucket = client(), os.environ["S3_BUCKET_NAME"]
    with tempfile.TemporaryDirectory() as tmp:
        make_tree(Path(tmp))
        assert upload_tree(s3, bucket, Path(tmp)) == 12
    assert tracks(s3, bucket) == ["barber", "cota", "sonoma"], tracks(s3, bucket)
    for t in ["barber", "cota", "sonoma"]:
        assert sessions(s3, bucket, t) == ["R1", "R2"]
        laps = load_lap_times(s3, bucket, t, "R2")
        assert laps is not None and len(laps) == 39, t
    assert load_lap_times(s3, bucket, "barber", "R9") is None
    fastest = min(float(r["seconds"]) for r in load_lap_times(s3, bucket, "cota", "R1"))
    print(f"tracks: 3, sessions: 2 each, fastest cota R1 lap: {fastest:.2f}s")


if __name__ == "__main__":
    main()
