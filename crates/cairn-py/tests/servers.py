"""S3 test-server settings from the environment (scripts/servers/start.sh writes them)."""

import os
import uuid
from typing import Any, Dict, Tuple

import pytest

S3_FIELDS = ["ENDPOINT", "BUCKET", "REGION", "ACCESS_KEY_ID", "SECRET_ACCESS_KEY"]


def s3_env(server: str) -> Dict[str, str]:
    """The CAIRN_TEST_<SERVER>_* settings, failing the test if any is missing."""
    prefix = f"CAIRN_TEST_{server.upper()}_"
    missing = [prefix + f for f in S3_FIELDS if not os.environ.get(prefix + f)]
    if missing:
        pytest.fail(
            f"{', '.join(missing)} not set: start the test servers with "
            "`scripts/servers/start.sh /tmp/py.env && source /tmp/py.env`"
        )
    return {f.lower(): os.environ[prefix + f] for f in S3_FIELDS}


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


def user_meta(meta: Any) -> Dict[str, str]:
    """An object's metadata without the names cairn's layers add (``cairn-sha256``, ...)."""
    return {k: v for k, v in meta.metadata.items() if not k.lower().startswith("cairn-")}
