"""boto3 and the aws cli, unchanged, against `cairn serve` (the built `cairn` binary) over the
local store, the local store with zstd + AES, and Garage passed through.

The binary is $CAIRN_BIN, else target/debug/cairn (scripts/test builds it in its Rust step).
"""

import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import pytest

from servers import missing, require_module, s3_env

ROOT = Path(__file__).resolve().parents[3]
ACCESS, SECRET = "serve-py", "serve-py-secret"
BACKENDS = ["local", "local_zstd_aes", "garage"]


def cairn_bin() -> str:
    b = os.environ.get("CAIRN_BIN")
    if not b:
        target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
        b = str(target / "debug" / "cairn")
    if not os.access(b, os.X_OK):
        missing(f"{b} is not built: run `cargo build -p cairn-cli` (or set CAIRN_BIN)")
    return b


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Gateway:
    """One `cairn serve` process; `restart` keeps its state dir (open multipart uploads)."""

    def __init__(self, args: List[str], env: Dict[str, str], tmp: Path) -> None:
        self.args, self.env, self.tmp = args, env, tmp
        self.port = free_port()
        self.proc: Optional[subprocess.Popen] = None
        self.start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, extra: Optional[List[str]] = None) -> None:
        cmd = [cairn_bin(), "serve", "--listen", f"127.0.0.1:{self.port}",
               "--state-dir", str(self.tmp / "state"), *self.args, *(extra or [])]
        self.log = open(self.tmp / "serve.log", "ab")
        self.proc = subprocess.Popen(cmd, env=self.env, stdout=subprocess.PIPE, stderr=self.log)
        line = self.proc.stdout.readline().decode()
        assert line.startswith(f"cairn serve: listening on {self.endpoint}"), (
            line, (self.tmp / "serve.log").read_text())
        assert "export AWS_ENDPOINT_URL=" + self.endpoint in self.proc.stdout.readline().decode()

    def stop(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout=30)
        self.proc.stdout.close()
        self.log.close()
        return rc

    def client(self, **kw: Any) -> Any:
        boto3 = require_module("boto3")
        from botocore.config import Config
        return boto3.client(
            "s3", endpoint_url=self.endpoint, aws_access_key_id=ACCESS,
            aws_secret_access_key=SECRET, region_name="us-east-1",
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}, **kw))


def serve_env() -> Dict[str, str]:
    env = dict(os.environ)
    env.update(CAIRN_SERVE_ACCESS_KEY=ACCESS, CAIRN_SERVE_SECRET_KEY=SECRET, NO_PROXY="127.0.0.1")
    return env


@pytest.fixture(scope="module", params=BACKENDS)
def gw(request: Any, tmp_path_factory: Any) -> Iterator[Gateway]:
    tmp = tmp_path_factory.mktemp(request.param)
    env = serve_env()
    if request.param == "local":
        args = ["--bucket", f"data=file://{tmp}/data"]
    elif request.param == "local_zstd_aes":
        key = tmp / "k.key"
        key.write_text("33" * 32)
        args = ["--bucket", f"data=file://{tmp}/data?compression=zstd&encryption_key=file:{key}"]
    else:
        g = s3_env("garage")
        run = os.environ.get("CAIRN_TEST_RUN_ID", "local")
        url = (f"s3://{g['bucket']}/{run}/serve-{uuid.uuid4().hex[:8]}?endpoint={g['endpoint']}"
               f"&region={g['region']}&path_style=true&provider=garage")
        args = ["--bucket", f"data={url}"]
        # The backing store's credentials come from the standard AWS env, never argv.
        env.update(AWS_ACCESS_KEY_ID=g["access_key_id"], AWS_SECRET_ACCESS_KEY=g["secret_access_key"])
    gateway = Gateway(args, env, tmp)
    yield gateway
    assert gateway.stop() == 0


@pytest.fixture
def prefix() -> str:
    return f"t-{uuid.uuid4().hex[:8]}/"


def test_put_get_head_metadata(gw: Gateway, prefix: str) -> None:
    s3 = gw.client()
    body = b'{"run": 1}' * 1000
    put = s3.put_object(Bucket="data", Key=prefix + "r.json", Body=body,
                        ContentType="application/json", Metadata={"repo-id": "a1"})
    got = s3.get_object(Bucket="data", Key=prefix + "r.json")
    assert got["Body"].read() == body
    assert got["ContentType"] == "application/json"
    assert got["Metadata"] == {"repo-id": "a1"}
    assert got["ETag"] == put["ETag"]
    head = s3.head_object(Bucket="data", Key=prefix + "r.json")
    assert head["ContentLength"] == len(body)
    assert head["ETag"] == put["ETag"]
    with pytest.raises(s3.exceptions.ClientError) as e:
        s3.get_object(Bucket="data", Key=prefix + "missing")
    assert e.value.response["Error"]["Code"] == "NoSuchKey"
    with pytest.raises(s3.exceptions.ClientError) as e:
        s3.head_object(Bucket="nope-bucket", Key="x")
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_ranges_and_conditionals(gw: Gateway, prefix: str) -> None:
    s3 = gw.client()
    body = bytes(range(256)) * 40
    etag = s3.put_object(Bucket="data", Key=prefix + "r", Body=body)["ETag"]
    k = prefix + "r"
    assert s3.get_object(Bucket="data", Key=k, Range="bytes=10-19")["Body"].read() == body[10:20]
    r = s3.get_object(Bucket="data", Key=k, Range="bytes=-5")
    assert r["Body"].read() == body[-5:]
    assert r["ContentRange"] == f"bytes {len(body) - 5}-{len(body) - 1}/{len(body)}"
    assert s3.get_object(Bucket="data", Key=k, Range="bytes=10000-")["Body"].read() == body[10000:]
    with pytest.raises(s3.exceptions.ClientError) as e:
        s3.get_object(Bucket="data", Key=k, Range="bytes=20000-20001")
    assert e.value.response["Error"]["Code"] == "InvalidRange"
    assert s3.get_object(Bucket="data", Key=k, IfMatch=etag)["Body"].read() == body
    with pytest.raises(s3.exceptions.ClientError) as e:
        s3.get_object(Bucket="data", Key=k, IfMatch='"other"')
    assert e.value.response["Error"]["Code"] == "PreconditionFailed"
    with pytest.raises(s3.exceptions.ClientError) as e:
        s3.get_object(Bucket="data", Key=k, IfNoneMatch=etag)
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 304


def test_conditional_put(gw: Gateway, prefix: str) -> None:
    s3 = gw.client()
    k = prefix + "once"
    if gw.args[1].startswith("data=s3://"):
        # Garage does not enforce If-None-Match: the gateway says so instead of racing.
        with pytest.raises(s3.exceptions.ClientError) as e:
            s3.put_object(Bucket="data", Key=k, Body=b"1", IfNoneMatch="*")
        assert e.value.response["Error"]["Code"] == "NotImplemented"
        return
    s3.put_object(Bucket="data", Key=k, Body=b"1", IfNoneMatch="*")
    with pytest.raises(s3.exceptions.ClientError) as e:
        s3.put_object(Bucket="data", Key=k, Body=b"2", IfNoneMatch="*")
    assert e.value.response["Error"]["Code"] == "PreconditionFailed"
    assert s3.get_object(Bucket="data", Key=k)["Body"].read() == b"1"
    etag = s3.head_object(Bucket="data", Key=k)["ETag"]
    s3.put_object(Bucket="data", Key=k, Body=b"3", IfMatch=etag)
    with pytest.raises(s3.exceptions.ClientError) as e:
        s3.put_object(Bucket="data", Key=k, Body=b"4", IfMatch=etag)
    assert e.value.response["Error"]["Code"] == "PreconditionFailed"
    assert s3.get_object(Bucket="data", Key=k)["Body"].read() == b"3"


def test_list_v2_v1_delimiter_pagination(gw: Gateway, prefix: str) -> None:
    s3 = gw.client()
    keys = [f"{prefix}a/{i:03}" for i in range(25)] + [prefix + "b/x", prefix + "c", prefix + "odd key+%.txt"]
    for k in keys:
        s3.put_object(Bucket="data", Key=k, Body=b"12345")
    seen: List[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket="data", Prefix=prefix, PaginationConfig={"PageSize": 7}):
        seen += [o["Key"] for o in page.get("Contents", [])]
        assert all(o["Size"] == 5 for o in page.get("Contents", []))
    assert seen == sorted(keys)
    r = s3.list_objects_v2(Bucket="data", Prefix=prefix, Delimiter="/")
    assert [p["Prefix"] for p in r["CommonPrefixes"]] == [prefix + "a/", prefix + "b/"]
    assert [o["Key"] for o in r["Contents"]] == [prefix + "c", prefix + "odd key+%.txt"]
    r = s3.list_objects_v2(Bucket="data", Prefix=prefix + "a/", StartAfter=prefix + "a/020")
    assert [o["Key"] for o in r["Contents"]] == [f"{prefix}a/{i:03}" for i in range(21, 25)]
    v1: List[str] = []
    for page in s3.get_paginator("list_objects").paginate(Bucket="data", Prefix=prefix, PaginationConfig={"PageSize": 10}):
        v1 += [o["Key"] for o in page.get("Contents", [])]
    assert v1 == sorted(keys)
    # A delimiter listing paged one entry at a time names each prefix once.
    names: List[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket="data", Prefix=prefix, Delimiter="/", PaginationConfig={"PageSize": 1}):
        names += [p["Prefix"] for p in page.get("CommonPrefixes", [])] + [o["Key"] for o in page.get("Contents", [])]
    assert names == [prefix + "a/", prefix + "b/", prefix + "c", prefix + "odd key+%.txt"]


def test_multipart_and_listing_uploads(gw: Gateway, prefix: str) -> None:
    s3 = gw.client()
    k = prefix + "mp.bin"
    part = os.urandom(5 * 1024 * 1024)
    up = s3.create_multipart_upload(Bucket="data", Key=k, ContentType="application/x-test", Metadata={"m": "1"})
    uid = up["UploadId"]
    e1 = s3.upload_part(Bucket="data", Key=k, UploadId=uid, PartNumber=1, Body=part)["ETag"]
    e2 = s3.upload_part(Bucket="data", Key=k, UploadId=uid, PartNumber=2, Body=b"tail")["ETag"]
    parts = s3.list_parts(Bucket="data", Key=k, UploadId=uid)["Parts"]
    assert [(p["PartNumber"], p["Size"], p["ETag"]) for p in parts] == [(1, len(part), e1), (2, 4, e2)]
    ups = s3.list_multipart_uploads(Bucket="data", Prefix=prefix)["Uploads"]
    assert [(u["Key"], u["UploadId"]) for u in ups] == [(k, uid)]
    s3.complete_multipart_upload(Bucket="data", Key=k, UploadId=uid, MultipartUpload={
        "Parts": [{"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2}]})
    got = s3.get_object(Bucket="data", Key=k)
    assert got["Body"].read() == part + b"tail"
    assert got["ContentType"] == "application/x-test" and got["Metadata"] == {"m": "1"}
    assert "Uploads" not in s3.list_multipart_uploads(Bucket="data", Prefix=prefix)
    # Abort leaves nothing; a later part upload names no upload.
    uid = s3.create_multipart_upload(Bucket="data", Key=prefix + "gone")["UploadId"]
    s3.upload_part(Bucket="data", Key=prefix + "gone", UploadId=uid, PartNumber=1, Body=b"x")
    s3.abort_multipart_upload(Bucket="data", Key=prefix + "gone", UploadId=uid)
    with pytest.raises(s3.exceptions.ClientError) as e:
        s3.upload_part(Bucket="data", Key=prefix + "gone", UploadId=uid, PartNumber=2, Body=b"x")
    assert e.value.response["Error"]["Code"] == "NoSuchUpload"
    with pytest.raises(s3.exceptions.ClientError) as e:
        s3.head_object(Bucket="data", Key=prefix + "gone")
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    # boto3's managed transfer (multipart above its threshold, parts in parallel).
    big = os.urandom(20 * 1024 * 1024)
    path = gw.tmp / "big.bin"
    path.write_bytes(big)
    s3.upload_file(str(path), "data", prefix + "big.bin")
    out = gw.tmp / "big.out"
    s3.download_file("data", prefix + "big.bin", str(out))
    assert out.read_bytes() == big


def test_copy_and_delete(gw: Gateway, prefix: str) -> None:
    s3 = gw.client()
    s3.put_object(Bucket="data", Key=prefix + "src", Body=b"copy me", Metadata={"o": "src"})
    s3.copy_object(Bucket="data", Key=prefix + "dst", CopySource={"Bucket": "data", "Key": prefix + "src"})
    got = s3.get_object(Bucket="data", Key=prefix + "dst")
    assert got["Body"].read() == b"copy me" and got["Metadata"] == {"o": "src"}
    s3.copy_object(Bucket="data", Key=prefix + "dst2", CopySource={"Bucket": "data", "Key": prefix + "src"},
                   MetadataDirective="REPLACE", Metadata={"o": "new"}, ContentType="text/plain")
    got = s3.get_object(Bucket="data", Key=prefix + "dst2")
    assert got["Metadata"] == {"o": "new"} and got["ContentType"] == "text/plain"
    s3.delete_object(Bucket="data", Key=prefix + "dst")
    r = s3.delete_objects(Bucket="data", Delete={"Objects": [
        {"Key": prefix + "src"}, {"Key": prefix + "dst2"}, {"Key": prefix + "never"}]})
    assert sorted(d["Key"] for d in r["Deleted"]) == sorted([prefix + "src", prefix + "dst2", prefix + "never"])
    assert s3.list_objects_v2(Bucket="data", Prefix=prefix)["KeyCount"] == 0


def test_presigned_urls(gw: Gateway, prefix: str) -> None:
    # boto3 presigns with SigV2 unless told s3v4; both are s3s's to check.
    for s3 in (gw.client(signature_version="s3v4"), gw.client()):
        k = prefix + "p"
        put = s3.generate_presigned_url("put_object", Params={"Bucket": "data", "Key": k}, ExpiresIn=60)
        # An empty Content-Type, as signed (urllib would add a form type otherwise).
        req = urllib.request.Request(put, data=b"presigned", method="PUT", headers={"Content-Type": ""})
        assert urllib.request.urlopen(req).status == 200
        get = s3.generate_presigned_url("get_object", Params={"Bucket": "data", "Key": k}, ExpiresIn=60)
        assert urllib.request.urlopen(get).read() == b"presigned"
        sig = get.split("ignature=")[1][:1]
        tampered = get.replace("ignature=" + sig, "ignature=" + ("1" if sig == "0" else "0"), 1)
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(tampered)
        assert (e.value.code, b"<Code>SignatureDoesNotMatch</Code>" in e.value.read()) == (403, True)
    s3 = gw.client(signature_version="s3v4")
    expired = s3.generate_presigned_url("get_object", Params={"Bucket": "data", "Key": prefix + "p"}, ExpiresIn=1)
    time.sleep(2.1)
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(expired)
    assert e.value.code == 403
    assert b"<Code>AccessDenied</Code>" in e.value.read()


def test_wrong_secret_is_refused(gw: Gateway) -> None:
    boto3 = require_module("boto3")
    s3 = boto3.client("s3", endpoint_url=gw.endpoint, aws_access_key_id=ACCESS,
                      aws_secret_access_key="wrong", region_name="us-east-1")
    with pytest.raises(s3.exceptions.ClientError) as e:
        s3.list_objects_v2(Bucket="data")
    assert e.value.response["Error"]["Code"] == "SignatureDoesNotMatch"


def test_aws_cli(gw: Gateway, prefix: str) -> None:
    aws = shutil.which("aws")
    if not aws:
        missing("the aws cli is not installed: run scripts/servers/install.sh")
    env = dict(os.environ, AWS_ACCESS_KEY_ID=ACCESS, AWS_SECRET_ACCESS_KEY=SECRET,
               AWS_DEFAULT_REGION="us-east-1", AWS_ENDPOINT_URL=gw.endpoint, NO_PROXY="127.0.0.1")
    src = gw.tmp / f"cli-{prefix.strip('/')}"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_text("alpha")
    (src / "sub" / "b.bin").write_bytes(os.urandom(9 * 1024 * 1024))

    def run(*args: str) -> str:
        r = subprocess.run([aws, *args], env=env, capture_output=True, text=True)
        assert r.returncode == 0, (args, r.stdout, r.stderr)
        return r.stdout

    run("s3", "cp", "--recursive", str(src), f"s3://data/{prefix}")
    ls = run("s3", "ls", "--recursive", f"s3://data/{prefix}")
    assert sorted(line.split()[-1] for line in ls.splitlines()) == [prefix + "a.txt", prefix + "sub/b.bin"]
    assert [line.split()[-1] for line in ls.splitlines() if line.endswith("b.bin")] == [prefix + "sub/b.bin"]
    dst = gw.tmp / f"cli-back-{prefix.strip('/')}"
    run("s3", "sync", f"s3://data/{prefix}", str(dst))
    assert (dst / "a.txt").read_text() == "alpha"
    assert (dst / "sub" / "b.bin").read_bytes() == (src / "sub" / "b.bin").read_bytes()
    run("s3api", "copy-object", "--bucket", "data", "--key", prefix + "c.txt", "--copy-source", f"data/{prefix}a.txt")
    assert run("s3", "cp", f"s3://data/{prefix}c.txt", "-") == "alpha"
    run("s3", "rm", "--recursive", f"s3://data/{prefix}")
    r = subprocess.run([aws, "s3", "ls", "--recursive", f"s3://data/{prefix}"], env=env, capture_output=True, text=True)
    # The aws cli exits 1 when a listing finds nothing.
    assert (r.returncode, r.stdout) == (1, "")


def test_health_and_buckets(gw: Gateway) -> None:
    with urllib.request.urlopen(gw.endpoint + "/health") as r:
        assert (r.status, r.read()) == (200, b"ok\n")
    s3 = gw.client()
    assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["data"]
    s3.head_bucket(Bucket="data")
    assert s3.get_bucket_location(Bucket="data").get("LocationConstraint") is None


def test_root_buckets_restart_keeps_uploads_and_limits(tmp_path: Path) -> None:
    """--root: directories are buckets; a SIGTERM keeps open multipart uploads for the next
    start; a request beyond --max-requests is answered 503 SlowDown."""
    root = tmp_path / "root"
    env = serve_env()
    # The real run: --root comes before the subcommand (a global flag).
    cmd_env = dict(env)
    port = free_port()

    def start(max_requests: str) -> subprocess.Popen:
        p = subprocess.Popen([cairn_bin(), "--root", str(root), "serve", "--listen", f"127.0.0.1:{port}",
                              "--max-requests", max_requests], env=cmd_env, stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL)
        assert p.stdout.readline().decode().startswith("cairn serve: listening")
        return p

    boto3 = require_module("boto3")
    from botocore.config import Config
    s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}", aws_access_key_id=ACCESS,
                      aws_secret_access_key=SECRET, region_name="us-east-1",
                      config=Config(retries={"max_attempts": 1}))
    p = start("4")
    s3.create_bucket(Bucket="made-here")
    assert (root / "made-here").is_dir()
    uid = s3.create_multipart_upload(Bucket="made-here", Key="k")["UploadId"]
    part = os.urandom(5 * 1024 * 1024)
    e1 = s3.upload_part(Bucket="made-here", Key="k", UploadId=uid, PartNumber=1, Body=part)["ETag"]
    p.send_signal(signal.SIGTERM)
    assert p.wait(timeout=30) == 0
    p = start("1")
    e2 = s3.upload_part(Bucket="made-here", Key="k", UploadId=uid, PartNumber=2, Body=b"end")["ETag"]
    s3.complete_multipart_upload(Bucket="made-here", Key="k", UploadId=uid, MultipartUpload={
        "Parts": [{"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2}]})
    assert s3.get_object(Bucket="made-here", Key="k")["Body"].read() == part + b"end"
    # One request in flight (a PUT whose body has not all arrived); the next is SlowDown.
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
    req = AWSRequest(method="PUT", url=f"http://127.0.0.1:{port}/made-here/slow", data=b"x" * 100)
    S3SigV4Auth(Credentials(ACCESS, SECRET), "s3", "us-east-1").add_auth(req)
    head = "".join(f"{k}: {v}\r\n" for k, v in req.headers.items())
    hold = socket.create_connection(("127.0.0.1", port))
    hold.sendall(f"PUT /made-here/slow HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{head}Content-Length: 100\r\n\r\nx".encode())
    time.sleep(0.3)
    with pytest.raises(s3.exceptions.ClientError) as e:
        s3.list_objects_v2(Bucket="made-here")
    assert (e.value.response["Error"]["Code"], e.value.response["ResponseMetadata"]["HTTPStatusCode"]) == ("SlowDown", 503)
    hold.close()
    time.sleep(0.3)
    assert s3.list_objects_v2(Bucket="made-here")["KeyCount"] == 1
    with pytest.raises(s3.exceptions.ClientError) as e:
        s3.delete_bucket(Bucket="made-here")
    assert e.value.response["Error"]["Code"] == "BucketNotEmpty"
    s3.delete_object(Bucket="made-here", Key="k")
    s3.delete_bucket(Bucket="made-here")
    assert not (root / "made-here").exists()
    p.send_signal(signal.SIGTERM)
    assert p.wait(timeout=30) == 0


def test_tls_warning_and_no_secrets_in_output(tmp_path: Path) -> None:
    """TLS via --tls-cert/--tls-key (boto3 verifies the certificate); a non-loopback address
    without TLS warns; the secret never appears in the output, access log included (-v)."""
    openssl = shutil.which("openssl")
    if not openssl:
        missing("openssl is not installed")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    port = free_port()
    env = serve_env()
    p = subprocess.Popen([cairn_bin(), "-v", "serve", "--listen", f"127.0.0.1:{port}",
                          "--state-dir", str(tmp_path / "state"), "--tls-cert", str(cert),
                          "--tls-key", str(key), "--bucket", f"data=file://{tmp_path}/data"],
                         env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    line = p.stdout.readline().decode()
    assert line.startswith(f"cairn serve: listening on https://127.0.0.1:{port}"), line
    boto3 = require_module("boto3")
    s3 = boto3.client("s3", endpoint_url=f"https://127.0.0.1:{port}", aws_access_key_id=ACCESS,
                      aws_secret_access_key=SECRET, region_name="us-east-1", verify=str(cert))
    s3.put_object(Bucket="data", Key="tls/x", Body=b"over tls")
    assert s3.get_object(Bucket="data", Key="tls/x")["Body"].read() == b"over tls"
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=30)
    assert p.returncode == 0
    text = line + out.decode() + err.decode()
    assert "PUT /data/tls/x 200" in text, text
    assert SECRET not in text
    # Any address but loopback, without TLS: a warning on stderr (and it still serves).
    port = free_port()
    p = subprocess.Popen([cairn_bin(), "serve", "--listen", f"0.0.0.0:{port}", "--state-dir",
                          str(tmp_path / "state"), "--bucket", f"data=file://{tmp_path}/data"],
                         env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert p.stdout.readline().decode().startswith(f"cairn serve: listening on http://0.0.0.0:{port}")
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=30)
    assert p.returncode == 0
    assert f"warning: listening on 0.0.0.0:{port} without TLS" in err.decode(), err.decode()
    # Neither keys nor --anonymous: refused at start, naming the way out.
    r = subprocess.run([cairn_bin(), "serve", "--bucket", f"data=file://{tmp_path}/data"],
                       env={k: v for k, v in env.items() if not k.startswith("CAIRN_SERVE_")},
                       capture_output=True, text=True)
    assert r.returncode == 1 and "--anonymous" in r.stderr, r.stderr


def test_config_file(tmp_path: Path) -> None:
    """--serve-config holds the listen address and bucket mappings; --bucket adds to them."""
    port = free_port()
    cfg = tmp_path / "serve.toml"
    cfg.write_text(f'listen = "127.0.0.1:{port}"\nstate_dir = "{tmp_path}/state"\n'
                   f'[buckets]\nalpha = "file://{tmp_path}/a"\nbeta = "file://{tmp_path}/b?compression=zstd"\n')
    p = subprocess.Popen([cairn_bin(), "serve", "--serve-config", str(cfg), "--bucket",
                          f"gamma=file://{tmp_path}/c"], env=serve_env(), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    line = p.stdout.readline().decode()
    assert line == f"cairn serve: listening on http://127.0.0.1:{port} (buckets: alpha, beta, gamma)\n", line
    boto3 = require_module("boto3")
    s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}", aws_access_key_id=ACCESS,
                      aws_secret_access_key=SECRET, region_name="us-east-1")
    assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["alpha", "beta", "gamma"]
    s3.put_object(Bucket="beta", Key="k", Body=b"a" * 10000)
    assert s3.get_object(Bucket="beta", Key="k")["Body"].read() == b"a" * 10000
    # Stored compressed: the file under the store's root is much smaller than the object.
    assert (tmp_path / "b" / "k").stat().st_size < 1000
    with pytest.raises(s3.exceptions.ClientError) as e:
        s3.create_bucket(Bucket="delta")
    assert e.value.response["Error"]["Code"] == "NotImplemented"
    p.send_signal(signal.SIGTERM)
    p.communicate(timeout=30)
    assert p.returncode == 0


def parse_metrics(text: str) -> Dict[str, float]:
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            k, _, v = line.rpartition(" ")
            out[k] = float(v)
    return out


def test_metrics_endpoint_counts_requests_and_store_calls(tmp_path: Path) -> None:
    """--metrics serves Prometheus text: the gateway's requests by method and status, and the
    backing store's calls and bytes, exactly."""
    mport = free_port()
    gw = Gateway(["--bucket", f"data=file://{tmp_path}/data", "--metrics", f"127.0.0.1:{mport}"],
                 serve_env(), tmp_path)
    try:
        assert gw.proc.stdout.readline().decode() == f"  metrics: http://127.0.0.1:{mport}/metrics\n"
        s3 = gw.client()
        bodies = [b'{"n": %d}' % i for i in range(4)]
        for i, b in enumerate(bodies):
            s3.put_object(Bucket="data", Key=f"m/{i}.json", Body=b)
        assert s3.get_object(Bucket="data", Key="m/2.json")["Body"].read() == bodies[2]
        with pytest.raises(s3.exceptions.NoSuchKey):
            s3.get_object(Bucket="data", Key="m/missing.json")
        with urllib.request.urlopen(f"http://127.0.0.1:{mport}/metrics", timeout=10) as r:
            m = parse_metrics(r.read().decode())
        assert m['cairn_serve_requests_total{method="PUT",status="200"}'] == 4
        assert m['cairn_serve_requests_total{method="GET",status="200"}'] == 1
        assert m['cairn_serve_requests_total{method="GET",status="404"}'] == 1
        assert m['cairn_requests_total{op="put",outcome="ok"}'] == 4
        assert m['cairn_bytes_total{op="put",direction="written"}'] == sum(map(len, bodies))
        assert m['cairn_bytes_total{op="get",direction="read"}'] == len(bodies[2])
    finally:
        assert gw.stop() == 0
