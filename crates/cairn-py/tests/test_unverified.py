"""Objects another tool wrote carry no recorded SHA-256: sync copies them but counts and names
them as unverified (never like checked ones), and download_file's metadata says so."""

import cairn
from servers import require_module, s3_env, spec_for


def foreign_put(url, key, body):
    """Puts `body` at `key` under the store URL `url` with boto3, as any other tool would."""
    boto3 = require_module("boto3")
    env = s3_env("moto")
    bucket, prefix = url[len("s3://") :].split("/", 1)
    client = boto3.client(
        "s3",
        endpoint_url=env["endpoint"],
        region_name=env["region"],
        aws_access_key_id=env["access_key_id"],
        aws_secret_access_key=env["secret_access_key"],
    )
    client.put_object(Bucket=bucket, Key=f"{prefix}/{key}", Body=body)


def test_sync_counts_and_names_objects_without_a_recorded_sha256(tmp_path):
    url, opts = spec_for("moto", tmp_path)
    foreign_put(url, "foreign", b"hello")
    store = cairn.Store.open(url, **opts)
    store.put("own", b"hello")

    events = []
    s = cairn.sync(store, tmp_path / "out", progress=events.append)
    assert s["transferred"] == 2 and s["failed"] == 0
    assert s["unverified"] == 1 and s["unverified_keys"] == ["foreign"]
    done = {e["key"]: e["outcome"] for e in events if e["event"] == "item_done"}
    assert done == {"foreign": "unverified", "own": "transferred"}
    assert (tmp_path / "out" / "foreign").read_bytes() == b"hello"

    # One object: the returned metadata has no recorded SHA-256, so nothing was checked.
    assert store.download_file("foreign", tmp_path / "f").sha256 is None
    assert store.download_file("own", tmp_path / "g").sha256 is not None

    # From a directory (the user's own files), nothing is unverified.
    back = cairn.Store.open("memory://")
    s = cairn.sync(tmp_path / "out", back)
    assert s["transferred"] == 2 and s["unverified"] == 0
