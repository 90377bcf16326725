"""Shared fixtures: every behaviour test runs against memory, local disk, moto and Garage.

The S3 servers come from scripts/servers/start.sh (`source` its env file). A missing
CAIRN_TEST_MOTO_* / CAIRN_TEST_GARAGE_* variable skips the test with the reason in a plain
pytest run, and fails it under scripts/test (CAIRN_TEST_REQUIRE_SERVERS=1).
Each test writes under a fresh random prefix, deleted afterwards.
"""

from typing import Any, Dict, Iterator, Tuple

import pytest

import cairn
from servers import servers_required, spec_for

BACKENDS = ["memory", "local", "moto", "garage"]


@pytest.fixture(params=BACKENDS)
def backend(request: Any) -> str:
    return request.param


@pytest.fixture
def spec(backend: str, tmp_path: Any) -> Tuple[str, Dict[str, Any]]:
    return spec_for(backend, tmp_path)


@pytest.fixture
def store(spec: Tuple[str, Dict[str, Any]]) -> Iterator[cairn.Store]:
    url, options = spec
    s = cairn.Store.open(url, **options)
    yield s
    # Leave nothing behind on the shared S3 buckets.
    if url.startswith("s3://"):
        keys = [m.key for m in s.list("")]
        if keys:
            s.delete_many(keys)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: Any, call: Any) -> Iterator[None]:
    """Under scripts/test (CAIRN_TEST_REQUIRE_SERVERS) a skipped test is a failed one: the suite
    installs and starts everything, so a skip there means something is missing."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and servers_required() and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.longrepr = f"skipped under CAIRN_TEST_REQUIRE_SERVERS: {reason}"

