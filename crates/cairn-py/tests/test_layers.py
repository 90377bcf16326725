"""What the layers record (checksum, compression, encryption, content digest) has fields of its
own on ObjectMeta; `metadata` is the user's only. Run on every backend, with compressible data."""

import hashlib
import json
import os
import pathlib

import pytest

import cairn

STACKS = {
    "plain": {},
    "zstd": {"compression": "zstd"},
    "aes": {"encryption": True},
    "zstd+aes": {"compression": "zstd", "encryption": True},
}
ALGORITHM = "aes-256-gcm-stream-v1"


def json_rows(n: int, seed: int = 0) -> bytes:
    return json.dumps([{"id": i, "name": f"row {i}", "seed": seed} for i in range(n)]).encode()


def key_file(tmp_path: pathlib.Path, byte: str) -> str:
    path = tmp_path / f"key-{byte}"
    path.write_text(byte * 32)
    return f"file:{path}"


def open_stack(spec, stack: str, tmp_path: pathlib.Path, key: str = "11") -> cairn.Store:
    url, options = spec
    layers = dict(STACKS[stack])
    if layers.pop("encryption", False):
        layers["encryption_key"] = key_file(tmp_path, key)
    return cairn.Store.open(url, **options, **layers)


@pytest.fixture(params=list(STACKS))
def stack(request) -> str:
    return request.param


@pytest.fixture
def cleanup(spec):
    yield
    url, options = spec
    if url.startswith("s3://"):
        s = cairn.Store.open(url, **options)
        keys = [m.key for m in s.list("")]
        if keys:
            s.delete_many(keys)


def test_head_keeps_layer_records_apart_from_user_metadata(spec, stack, tmp_path, cleanup):
    store = open_stack(spec, stack, tmp_path)
    data = json_rows(3000)
    store.put("t/rows.json", data, content_type="application/json", metadata={"owner": "ana"})
    meta = store.head("t/rows.json")
    assert meta.metadata == {"owner": "ana"}
    assert meta.size == len(data) and meta.size_known
    content_sha = hashlib.sha256(data).hexdigest()
    compressed = "zstd" in stack
    encrypted = "aes" in stack
    assert meta.compression == ("zstd" if compressed else None)
    assert meta.encryption == (ALGORITHM if encrypted else None)
    if encrypted:
        assert meta.encryption_key_id, "an encrypted object names its key"
    else:
        assert meta.encryption_key_id is None
    # The checksum layer hashes the bytes as stored: the content's SHA-256 only when untransformed.
    assert meta.sha256 is not None and len(meta.sha256) == 64
    assert (meta.sha256 == content_sha) == (stack == "plain")
    if compressed:
        assert meta.stored_size < meta.size // 4, "JSON rows compress well"
    elif encrypted:
        assert meta.stored_size > meta.size  # header and tags
    else:
        assert meta.stored_size == meta.size
    if spec[0].startswith("file://"):
        # The local store's file is the stored bytes: the stored size and hash are of it.
        raw = (pathlib.Path(spec[0][len("file://"):]) / "t" / "rows.json").read_bytes()
        assert len(raw) == meta.stored_size
        assert hashlib.sha256(raw).hexdigest() == meta.sha256
    assert store.get("t/rows.json") == data
    d = meta.to_dict()
    for field in ("size", "stored_size", "size_known", "metadata", "sha256", "compression",
                  "encryption", "encryption_key_id", "content_digest"):
        assert d[field] == getattr(meta, field), field


def test_listings_say_whether_the_size_is_logical(spec, stack, tmp_path, cleanup):
    store = open_stack(spec, stack, tmp_path)
    data = json_rows(3000)
    store.put("l/rows.json", data)
    (entry,) = store.list("l/")
    stored = store.head("l/rows.json").stored_size
    assert entry.stored_size == stored
    assert entry.metadata == {}
    if stack == "plain":
        assert entry.size_known and entry.size == len(data)
    else:
        # A listing carries no metadata, so through a transforming layer it cannot know.
        assert not entry.size_known and entry.size == stored


def test_an_untransformed_objects_content_digest_is_its_sha256(spec, tmp_path, cleanup):
    store = open_stack(spec, "plain", tmp_path)
    data = json_rows(500)
    store.put("d/rows.json", data)
    assert store.head("d/rows.json").content_digest == "sha256:" + hashlib.sha256(data).hexdigest()


def test_a_compressed_objects_content_digest_is_of_the_content(spec, tmp_path, cleanup):
    store = open_stack(spec, "zstd", tmp_path)
    data = json_rows(500)
    store.put("d/rows.json", data)
    meta = store.head("d/rows.json")
    assert meta.content_digest == "sha256:" + hashlib.sha256(data).hexdigest()
    assert meta.sha256 != hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("stack", ["aes", "zstd+aes"])
def test_an_encrypted_objects_content_digest_is_keyed(spec, stack, tmp_path, cleanup):
    store = open_stack(spec, stack, tmp_path)
    data, other = json_rows(500), json_rows(500, seed=1)
    store.put("e/a", data)
    store.put("e/b", data)
    store.put("e/c", other)
    a, b, c = (store.head(k) for k in ("e/a", "e/b", "e/c"))
    # Each put encrypts with a fresh nonce: the stored bytes differ, the content digest not.
    assert a.sha256 != b.sha256
    assert a.content_digest is not None
    assert a.content_digest == b.content_digest != c.content_digest
    assert a.content_digest.startswith(f"hmac-sha256:{a.encryption_key_id}:")
    # Keyed: it does not reveal the content's plain hash.
    assert hashlib.sha256(data).hexdigest() not in a.content_digest
    # Another key gives another digest of the same content.
    other_key = open_stack(spec, stack, tmp_path, key="22")
    other_key.put("e/d", data)
    d = other_key.head("e/d")
    assert d.encryption_key_id != a.encryption_key_id
    assert d.content_digest != a.content_digest


def test_async_head_has_the_same_fields(spec, tmp_path, cleanup):
    import asyncio

    url, options = spec
    key = key_file(tmp_path, "11")

    async def main():
        store = await cairn.AsyncStore.open(url, **options, compression="zstd", encryption_key=key)
        await store.put("a/rows.json", json_rows(100), metadata={"k": "v"})
        return await store.head("a/rows.json")

    meta = asyncio.run(main())
    assert meta.metadata == {"k": "v"}
    assert meta.compression == "zstd" and meta.encryption == ALGORITHM
    assert os.path.basename(meta.key) == "rows.json"
