"""S3 test-server settings from the environment (scripts/servers/start.sh writes them)."""

import importlib
import os
import uuid
from typing import Any, Dict, NoReturn, Tuple

import pytest

S3_FIELDS = ["ENDPOINT", "BUCKET", "REGION", "ACCESS_KEY_ID", "SECRET_ACCESS_KEY"]


def servers_required() -> bool:
    """Whether a missing server is a failure: scripts/test starts the servers and sets this."""
    return os.environ.get("CAIRN_TEST_REQUIRE_SERVERS", "") not in ("", "0")


def missing(reason: str) -> NoReturn:
    """Fails the test under scripts/test; otherwise (a plain pytest run) skips it, saying why."""
    if servers_required():
        pytest.fail(f"{reason} (CAIRN_TEST_REQUIRE_SERVERS is set: nothing may be skipped)")
    pytest.skip(reason)


def s3_env(server: str) -> Dict[str, str]:
    """The CAIRN_TEST_<SERVER>_* settings; see `missing` for when they are not set."""
    prefix = f"CAIRN_TEST_{server.upper()}_"
    unset = [prefix + f for f in S3_FIELDS if not os.environ.get(prefix + f)]
    if unset:
        missing(
            f"{', '.join(unset)} not set: start the test servers with "
            "`scripts/servers/start.sh /tmp/py.env && source /tmp/py.env`"
        )
    return {f.lower(): os.environ[prefix + f] for f in S3_FIELDS}


def require_module(name: str) -> Any:
    """Imports an optional test dependency (scripts/servers/install.sh installs them all)."""
    try:
        return importlib.import_module(name)
    except ImportError as e:
        missing(f"{name} is not installed ({e}): run scripts/servers/install.sh")


def s3_options(server: str) -> Dict[str, Any]:
    env = s3_env(server)
    return {
        "endpoint": env["endpoint"],
        "region": env["region"],
        "access_key_id": env["access_key_id"],
        "secret_access_key": env["secret_access_key"],
        "path_style": True,
        "allow_http": True,
        "provider": server,
    }


def spec_for(backend: str, tmp_path: Any) -> Tuple[str, Dict[str, Any]]:
    """(url, options) for a fresh, empty store of this backend."""
    if backend == "memory":
        return "memory://", {}
    if backend == "local":
        return f"file://{tmp_path}/store", {}
    env = s3_env(backend)
    run_id = os.environ.get("CAIRN_TEST_RUN_ID", "local")
    return f"s3://{env['bucket']}/{run_id}/py-{uuid.uuid4().hex[:12]}", s3_options(backend)
