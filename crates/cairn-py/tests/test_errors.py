"""Errors map 1:1 to exception classes, carry context, and never show secrets."""

import datetime
import uuid

import pytest

import cairn
from servers import s3_env, s3_options

SECRET = "SUPERSECRET-do-not-print-" + uuid.uuid4().hex


@pytest.mark.parametrize(
    "cls,builtin,kind",
    [
        (cairn.NotFound, FileNotFoundError, "not_found"),
        (cairn.AlreadyExists, FileExistsError, "already_exists"),
        (cairn.PermissionDenied, PermissionError, "permission_denied"),
        (cairn.Unauthenticated, PermissionError, "unauthenticated"),
        (cairn.BucketNotFound, FileNotFoundError, "bucket_not_found"),
        (cairn.InvalidInput, ValueError, "invalid_input"),
        (cairn.NetworkError, ConnectionError, "network"),
        (cairn.Timeout, TimeoutError, "timeout"),
        (cairn.Unsupported, NotImplementedError, "unsupported"),
        (cairn.PreconditionFailed, cairn.CairnError, "precondition_failed"),
        (cairn.RateLimited, cairn.CairnError, "rate_limited"),
        (cairn.Unavailable, cairn.CairnError, "unavailable"),
        (cairn.IntegrityError, cairn.CairnError, "integrity"),
        (cairn.UnexpectedError, cairn.CairnError, "unexpected"),
    ],
)
def test_each_kind_has_its_class(cls, builtin, kind):
    assert issubclass(cls, cairn.CairnError)
    assert issubclass(cls, builtin)
    assert cls.kind == kind


def test_not_found_carries_kind_key_and_operation(store):
    with pytest.raises(FileNotFoundError) as info:
        store.get("no/such/key")
    e = info.value
    assert isinstance(e, cairn.NotFound)
    assert e.kind == "not_found"
    assert e.key == "no/such/key"
    assert e.operation == "get"
    assert "no/such/key" in str(e)
    with pytest.raises(cairn.NotFound) as info:
        store.head("no/such/key")
    assert info.value.operation == "head"


@pytest.mark.parametrize("bad", ["", "/abs", "a//b", "a/../b", "a/", "x\x00y"])
def test_invalid_keys_are_value_errors_naming_the_problem(store, bad):
    with pytest.raises(ValueError) as info:
        store.put(bad, b"x")
    e = info.value
    assert isinstance(e, cairn.InvalidInput)
    assert e.operation == "put"
    assert "invalid key" in str(e)
    assert e.hint


def test_invalid_list_prefix():
    store = cairn.Store.open("memory://")
    with pytest.raises(cairn.InvalidInput):
        list(store.list("/abs"))


def test_options_go_through_the_rust_config():
    # bools, ints, floats, strings and timedeltas are all accepted
    cairn.Store.open(
        "memory://",
        path_style=True,
        max_retries=3,
        timeout=2.5,
        connect_timeout=datetime.timedelta(seconds=2),
        region="eu-west-1",
        retry_timeout="30s",
        compression=None,  # None means "not set"
    )
    assert "endpoint" in cairn.config_keys()


def test_unknown_option_is_invalid_input_listing_valid_names():
    with pytest.raises(cairn.InvalidInput) as info:
        cairn.Store.open("memory://", regoin="x")
    assert "regoin" in str(info.value)
    assert "region" in str(info.value)


def test_bad_option_value_names_the_option():
    with pytest.raises(cairn.InvalidInput, match="max_retries"):
        cairn.Store.open("memory://", max_retries="many")
    with pytest.raises(cairn.InvalidInput, match="path_style"):
        cairn.Store.open("memory://", path_style="maybe")
    with pytest.raises(cairn.InvalidInput, match="timeout"):
        cairn.Store.open("memory://", timeout=object())


def test_option_aliases_are_accepted():
    cairn.Store.open("memory://", aws_region="x", force_path_style=False, endpoint_url="http://h:1")


def test_bad_urls_are_invalid_input():
    for url in ["gopher://x", "s3://", "s3://bkt/a/../b"]:
        with pytest.raises(cairn.InvalidInput):
            cairn.Store.open(url)


def test_local_root_option_accepts_a_path(tmp_path):
    store = cairn.Store.open("local://", root=tmp_path)
    store.put("x/y.txt", b"here")
    assert (tmp_path / "x" / "y.txt").read_bytes() == b"here"


def _assert_no_secret(e):
    for text in (str(e), repr(e), repr(e.args), str(e.hint), str(e.store)):
        assert SECRET not in text, text


def test_secret_options_never_appear_in_errors_or_reprs():
    # A bad value next to a secret: the error names the bad option only.
    with pytest.raises(cairn.InvalidInput) as info:
        cairn.Store.open("memory://", secret_access_key=SECRET, max_retries="x")
    _assert_no_secret(info.value)
    store = cairn.Store.open("memory://", secret_access_key=SECRET, session_token=SECRET)
    assert SECRET not in repr(store) and SECRET not in str(store)


def test_unreachable_endpoint_is_a_network_error_without_secrets():
    # Port 1 on loopback: nothing listens, the connection is refused at once.
    store = cairn.Store.open(
        "s3://cairn-unreachable/x",
        endpoint="http://127.0.0.1:1",
        region="us-east-1",
        access_key_id="AKIDEXAMPLE",
        secret_access_key=SECRET,
        path_style=True,
        allow_http=True,
        max_retries=0,
        retry=False,
        connect_timeout="2s",
    )
    assert SECRET not in repr(store)
    with pytest.raises(cairn.CairnError) as info:
        store.get("k")
    # Refused at once: a network error, not a timeout.
    assert isinstance(info.value, cairn.NetworkError), repr(info.value)
    assert isinstance(info.value, ConnectionError)
    # object_store's retry budget (max_retries=0) is used up: retrying the call is no help.
    assert not info.value.temporary
    _assert_no_secret(info.value)


@pytest.mark.parametrize("server", ["moto", "garage"])
def test_wrong_secret_is_unauthenticated_and_never_printed(server):
    opts = s3_options(server)
    bucket = cairn.Store.open(f"s3://{_bucket(server)}", **opts)
    opts["secret_access_key"] = SECRET
    store = cairn.Store.open(f"s3://{_bucket(server)}", **opts)
    calls = {
        "get": lambda: store.get(f"missing-{uuid.uuid4().hex}"),
        "list": lambda: store.list("").collect(),
        "health_check": store.health_check,
    }
    for op, call in calls.items():
        if server == "moto" and op != "get":
            continue  # moto checks no signature: these succeed there
        with pytest.raises(cairn.CairnError) as info:
            call()
        if server == "garage":
            # Garage checks signatures: a wrong secret is refused, never "not found".
            assert type(info.value) is cairn.Unauthenticated, (op, repr(info.value))
            assert info.value.kind == "unauthenticated"
        else:
            assert type(info.value) is cairn.NotFound, (op, repr(info.value))
        _assert_no_secret(info.value)
    bucket.health_check()


def test_wrong_secret_on_head_is_unauthenticated_on_garage():
    # A 403 reply to HEAD has no body; cairn asks again with a GET, whose error says which.
    opts = dict(s3_options("garage"), secret_access_key=SECRET)
    store = cairn.Store.open(f"s3://{_bucket('garage')}", **opts)
    with pytest.raises(cairn.CairnError) as info:
        store.head(f"missing-{uuid.uuid4().hex}")
    _assert_no_secret(info.value)
    assert type(info.value) is cairn.Unauthenticated, repr(info.value)


@pytest.mark.parametrize("server", ["moto", "garage"])
def test_missing_bucket_is_bucket_not_found(server):
    store = cairn.Store.open(f"s3://cairn-missing-{uuid.uuid4().hex[:12]}", **s3_options(server))
    with pytest.raises(cairn.BucketNotFound) as info:
        store.get("k")
    assert isinstance(info.value, FileNotFoundError)
    assert info.value.kind == "bucket_not_found"


def _bucket(server):
    return s3_env(server)["bucket"]
