"""TLS by default, through the Python API (the CLI's crates/cairn-cli/tests/cli_tls.rs): plain
http to a host other than this machine is refused before any request, with an error naming
allow_http; ``allow_http=True`` lets it through; plain http to this machine is allowed."""

import socket
import threading
import time
import uuid
from typing import Any, Dict, List, Optional

import pytest

import cairn
from servers import s3_env

CREDS: Dict[str, Any] = {
    "region": "us-east-1",
    "access_key_id": "AKIDTLS",
    "secret_access_key": "tls-secret",
    "path_style": True,
}


def outward_ip() -> str:
    """This machine's address on its outward interface (not loopback): a "remote" host that a
    test can listen on. Connecting a UDP socket sends nothing."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.connect(("10.255.255.254", 9))
        ip = s.getsockname()[0]
    finally:
        s.close()
    assert not ip.startswith("127.") and ip != "0.0.0.0", f"no outward interface: {ip}"
    return ip


@pytest.fixture
def remote() -> Any:
    """A listener on the outward address: the "remote" endpoint; nothing answers on it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((outward_ip(), 0))
    sock.listen(8)
    sock.setblocking(False)
    yield sock
    sock.close()


def endpoint_of(sock: socket.socket, scheme: str = "http") -> str:
    host, port = sock.getsockname()
    return f"{scheme}://{host}:{port}"


def assert_nothing_reached(sock: socket.socket) -> None:
    with pytest.raises(BlockingIOError):
        conn, _ = sock.accept()
        conn.close()


def accept_within(sock: socket.socket, seconds: float) -> Optional[bytes]:
    """The first bytes of the first connection to `sock` within `seconds`, or None if none came."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            conn, _ = sock.accept()
        except BlockingIOError:
            time.sleep(0.02)
            continue
        conn.settimeout(5)
        first = b""
        try:
            # Up to the end of the request line, or a TLS record's first bytes.
            while b"\r\n" not in first and len(first) < 64:
                chunk = conn.recv(64)
                if not chunk:
                    break
                first += chunk
        except socket.timeout:
            pass
        finally:
            conn.close()
        return first
    return None


def test_plain_http_off_this_machine_is_refused_naming_allow_http(remote, tmp_path):
    endpoint = endpoint_of(remote)
    src = tmp_path / "f.txt"
    src.write_bytes(b"hello")
    t = time.monotonic()
    with pytest.raises(cairn.InvalidInput) as info:
        store = cairn.Store.open("s3://tls-bucket/p", endpoint=endpoint, **CREDS)
        store.put("k", b"hello")
    e = info.value
    assert isinstance(e, ValueError)
    assert e.kind == "invalid_input"
    assert f"endpoint {endpoint} is plain http to a host other than this machine" in str(e)
    assert "unencrypted" in str(e)
    assert e.hint is not None and "allow_http=True" in e.hint, e.hint
    assert time.monotonic() - t < 10, "refused at once"
    assert_nothing_reached(remote)
    # The same endpoint as a URL option, and from the environment (AWS_ENDPOINT_URL).
    with pytest.raises(cairn.InvalidInput) as info:
        cairn.Store.open(f"s3://tls-bucket/p?endpoint={endpoint}", **CREDS)
    assert f"endpoint {endpoint} is plain http" in str(info.value)
    assert "allow_http=True" in (info.value.hint or "")
    assert_nothing_reached(remote)


def test_endpoint_from_the_environment_follows_the_same_rule(remote, monkeypatch):
    endpoint = endpoint_of(remote)
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    with pytest.raises(cairn.InvalidInput) as info:
        cairn.Store.open("s3://tls-bucket/p", **CREDS)
    assert f"endpoint {endpoint} is plain http" in str(info.value)
    assert "allow_http=True" in (info.value.hint or "")
    assert_nothing_reached(remote)


def test_allow_http_false_refuses_even_this_machine():
    with pytest.raises(cairn.InvalidInput) as info:
        cairn.Store.open("s3://tls-bucket/p", endpoint="http://127.0.0.1:1", allow_http=False,
                         **CREDS)
    assert "endpoint http://127.0.0.1:1 is plain http but allow_http is false" in str(info.value)
    assert "allow_http=true" in (info.value.hint or "")


@pytest.mark.parametrize("opt", ["keyword", "url"])
def test_allow_http_lets_plain_http_off_this_machine_through(remote, opt):
    endpoint = endpoint_of(remote)
    options = dict(CREDS, max_retries=0, retry=False, timeout="5s", connect_timeout="5s")
    if opt == "keyword":
        store = cairn.Store.open("s3://tls-bucket/p", endpoint=endpoint, allow_http=True,
                                 **options)
    else:
        store = cairn.Store.open(f"s3://tls-bucket/p?endpoint={endpoint}&allow_http=true",
                                 **options)
    errors: List[BaseException] = []

    def put() -> None:
        try:
            store.put("k", b"hello")
        except BaseException as e:  # noqa: BLE001 - handed to the test thread
            errors.append(e)

    th = threading.Thread(target=put)
    th.start()
    first = accept_within(remote, 20)
    th.join(30)
    assert not th.is_alive()
    # The request went out in plain http (the listener closes it without an answer) ...
    assert first is not None, "allow_http=True reaches the endpoint"
    assert first.startswith(b"PUT /tls-bucket/p/k HTTP/1.1"), first
    # ... and the closed connection is a network error.
    assert len(errors) == 1 and isinstance(errors[0], cairn.NetworkError), errors


def test_https_is_the_default_and_needs_no_allow_http(remote):
    """An https:// endpoint off this machine is used as given: the connection opens with a TLS
    handshake, not a plain request."""
    endpoint = endpoint_of(remote, "https")
    store = cairn.Store.open("s3://tls-bucket/p", endpoint=endpoint, max_retries=0,
                             retry=False, timeout="5s", connect_timeout="5s", **CREDS)
    errors: List[BaseException] = []

    def put() -> None:
        try:
            store.put("k", b"hello")
        except BaseException as e:  # noqa: BLE001 - handed to the test thread
            errors.append(e)

    th = threading.Thread(target=put)
    th.start()
    first = accept_within(remote, 20)
    th.join(30)
    assert not th.is_alive()
    assert first is not None, "the https endpoint was reached"
    # A TLS record of type handshake (0x16), version 3.x: a ClientHello, no plain request.
    assert first[:2] == b"\x16\x03", first
    assert len(errors) == 1 and isinstance(errors[0], cairn.NetworkError), errors


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_plain_http_to_this_machine_needs_no_allow_http(host):
    """Loopback (moto from scripts/servers/start.sh) takes plain http without allow_http."""
    env = s3_env("moto")
    port = env["endpoint"].rsplit(":", 1)[1]
    assert env["endpoint"].startswith("http://127.0.0.1:"), env["endpoint"]
    store = cairn.Store.open(
        f"s3://{env['bucket']}/tls-{uuid.uuid4().hex[:12]}",
        endpoint=f"http://{host}:{port}",
        region=env["region"],
        access_key_id=env["access_key_id"],
        secret_access_key=env["secret_access_key"],
        path_style=True,
        provider="moto",
    )
    store.put("k", b"over plain http")
    try:
        assert store.get("k") == b"over plain http"
    finally:
        store.delete("k")
