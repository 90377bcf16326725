"""cairn.Bucket, presigned URLs, versions and stats against moto and Garage (real servers)."""

import datetime
import os
import urllib.error
import urllib.request
import uuid

import pytest

import cairn
from servers import s3_options


def fresh(server: str) -> cairn.Bucket:
    name = f"py-{os.environ.get('CAIRN_TEST_RUN_ID', 'local')}-{uuid.uuid4().hex[:10]}"
    b = cairn.Bucket(f"s3://{name}", **s3_options(server))
    b.create()
    return b


def test_moto_bucket_settings_round_trip_and_setup_is_idempotent() -> None:
    b = fresh("moto")
    try:
        assert b.versioning() == "off"
        b.set_versioning(True)
        assert b.versioning() == "enabled"
        b.set_encryption("aes256")
        assert b.encryption()["algorithm"] == "AES256"
        rules = [
            {
                "id": "tier",
                "prefix": "analysis/",
                "transitions": [{"days": 30, "storage_class": "STANDARD_IA"}],
                "expiration_days": 365,
            }
        ]
        b.set_lifecycle(rules)
        assert b.lifecycle() == rules
        b.set_policy({"Version": "2012-10-17", "Statement": []})
        assert b.policy() is not None
        b.delete_policy()
        assert b.policy() is None
        with pytest.raises(cairn.InvalidInput):
            b.set_lifecycle([{"id": "noop"}])
        assert b.lifecycle() == rules, "a refused rule changes nothing"

        first = b.setup("analysis")
        assert [c["setting"] for c in first["changed"]] == ["lifecycle"], first
        again = b.setup("analysis")
        assert again["changed"] == [] and again["plan"]["changes"] == [], again
    finally:
        b.delete(force=True)


def test_moto_versions_presign_and_stats_through_a_store() -> None:
    b = fresh("moto")
    try:
        b.set_versioning(True)
        store = cairn.Store.open(f"s3://{b.name}/tenant", **s3_options("moto"))
        store.put("2025/03/a.json", b'{"v": 1}')
        store.put("2025/03/a.json", b'{"v": 2}')
        it = store.list_versions("2025/")
        assert isinstance(it, cairn.VersionIter), "lazy, like Store.list"
        versions = list(it)
        assert next(it, None) is None, "an exhausted listing stays exhausted"
        assert [v["key"] for v in versions] == ["2025/03/a.json"] * 2
        assert sorted(v["is_latest"] for v in versions) == [False, True]
        assert store.list_versions("2025/").collect() == versions
        assert list(store.list_versions("2024/")) == []
        old = next(v for v in versions if not v["is_latest"])
        assert store.get_version("2025/03/a.json", old["version_id"]) == b'{"v": 1}'

        url = store.presign("2025/03/a.json", expires=datetime.timedelta(minutes=5))
        with urllib.request.urlopen(url) as r:
            assert r.read() == b'{"v": 2}'
        with pytest.raises(cairn.InvalidInput):
            store.presign("2025/03/a.json", expires=8 * 24 * 3600)

        s = store.stats(depth=2)
        assert s["total"] == {"objects": 1, "bytes": 8}
        assert list(s["by_prefix"]) == ["2025/03/"]
        assert s["by_class"]["STANDARD"]["objects"] == 1
    finally:
        b.delete(force=True)


def test_garage_says_unsupported_and_presigned_put_works() -> None:
    b = fresh("garage")
    try:
        with pytest.raises(cairn.Unsupported):
            b.set_versioning(True)
        with pytest.raises(cairn.Unsupported):
            b.set_lifecycle([{"id": "t", "transitions": [{"days": 30, "storage_class": "GLACIER"}]}])
        assert b.lifecycle() == []
        b.set_lifecycle('[[rule]]\nid = "tmp"\nexpiration_days = 2\n')
        assert b.lifecycle() == [{"id": "tmp", "prefix": "", "expiration_days": 2}]
        with pytest.raises(cairn.Unsupported):
            b.setup("analysis")

        store = cairn.Store.open(f"s3://{b.name}", **s3_options("garage"))
        url = store.presign("up.csv", method="PUT", expires=60)
        req = urllib.request.Request(url, data=b"a,b\n1,2\n", method="PUT")
        with urllib.request.urlopen(req) as r:
            assert r.status == 200
        assert store.get("up.csv") == b"a,b\n1,2\n"
        bad = store.presign("up.csv").replace("X-Amz-Signature=", "X-Amz-Signature=0")
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(bad)
        assert e.value.code == 403
        assert b.uploads() == []
        assert b.abort_uploads(0, dry_run=True) == []
    finally:
        b.delete(force=True)


def test_local_store_has_stats_but_no_presign(tmp_path: object) -> None:
    store = cairn.Store.open(f"file://{tmp_path}/s")
    store.put("a/x.json", b"12345")
    with pytest.raises(cairn.Unsupported):
        store.presign("a/x.json")
    with pytest.raises(cairn.Unsupported):
        store.get_version("a/x.json", "v1")
    it = store.list_versions()  # lazy: the error comes with the first item
    with pytest.raises(cairn.Unsupported):
        next(it)
    s = store.stats(depth=1)
    assert s["total"]["objects"] == 1 and s["by_class"] == {} and list(s["by_prefix"]) == ["a/"]
