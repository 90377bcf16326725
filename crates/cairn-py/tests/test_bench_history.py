"""cairn.bench_history: reports over time as rows pandas loads, from a directory and from the
archive on every backend."""

import json
from datetime import datetime, timezone

import pandas as pd
import pytest

import cairn


def report(day, put_ops, commit=None):
    res = lambda op, ops, p99: {
        "op": op, "size": 1024, "ops": 100, "objects_per_op": 1, "concurrency": 8,
        "seconds": 1.0, "ops_per_sec": ops, "mb_per_sec": ops * 1024 / 1e6,
        "p50_ms": p99 / 2, "p99_ms": p99,
    }
    r = {
        "schema_version": 2,
        "timestamp": f"2026-02-{day:02}T09:30:00Z",
        "store": "memory://",
        "machine": {"os": "linux", "arch": "x86_64", "cpus": 2, "memory_bytes": None,
                    "hostname": "box", "cairn_version": "0.1.0"},
        "options": {"sizes": [1024], "ops": 100, "concurrency": 8, "large_object_size": 0,
                    "cold_warm": False, "lists": 1},
        "results": [res("put", put_ops, 10.0), res("get", 3000.0, 4.0)],
    }
    if commit:
        r["commit"] = commit
    return json.dumps(r).encode()


def test_a_directory_of_reports_loads_into_pandas(tmp_path):
    d = tmp_path / "reports"
    d.mkdir()
    for day, ops in enumerate([1000, 1005, 990, 500, 1000, 1002], start=1):
        (d / f"run{day}.json").write_bytes(report(day, ops, commit=f"c{day}"))
    (d / "other.json").write_text('{"not": "a report"}')
    with pytest.warns(cairn.BenchReportSkipped, match="skipped other.json: not a bench report"):
        rows = cairn.bench_history(d)
    df = pd.DataFrame(rows)
    # 2 results x 4 metrics x 6 reports.
    assert len(df) == 48
    assert set(df["metric"]) == {"ops_per_sec", "mb_per_sec", "p50_ms", "p99_ms"}
    flagged = df[df["regression"]]
    assert list(zip(flagged["report"], flagged["op"], flagged["metric"])) == [
        ("run4.json", "put", "ops_per_sec"),
        ("run4.json", "put", "mb_per_sec"),
    ]
    put = df[(df["op"] == "put") & (df["metric"] == "ops_per_sec")]
    assert list(put["value"]) == [1000, 1005, 990, 500, 1000, 1002]
    assert put["change_pct"].iloc[3] == pytest.approx((500 - 990) / 990 * 100)
    assert put["timestamp"].iloc[0] == datetime(2026, 2, 1, 9, 30, tzinfo=timezone.utc)
    assert list(put["commit"]) == [f"c{i}" for i in range(1, 7)]
    # A stricter window and threshold are the caller's.
    with pytest.warns(cairn.BenchReportSkipped):
        rows = cairn.bench_history(str(d), regress_pct=60.0, window=2)
    assert not any(r["regression"] for r in rows)
    with pytest.raises(cairn.InvalidInput):
        cairn.bench_history(d, window=0)


def test_archived_reports_on_every_backend(store):
    arch = cairn.Archive(store, prefix="bench-archive")
    for day, ops in [(1, 1000), (2, 1010), (3, 400)]:
        arch.save("ci", "bench", report(day, ops))
    arch.save("other", "bench", report(4, 5))
    rows = cairn.bench_history("archive:ci", archive=arch)
    assert len(rows) == 2 * 4 * 3
    flagged = [(r["timestamp"].day, r["metric"]) for r in rows if r["regression"]]
    assert flagged == [(3, "ops_per_sec"), (3, "mb_per_sec")]
    assert all(r["report"].startswith("bench-archive/ci/") for r in rows)
    assert cairn.bench_history("archive:nobody", archive=arch) == []
