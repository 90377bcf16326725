"""A forked child gets its own runtime; stores from the parent fail clearly there."""

import asyncio
import os
import sys

import pytest

import cairn

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")


def _in_child(fn):
    """Runs fn in a forked child; returns its exit code (0 = all assertions held)."""
    pid = os.fork()
    if pid == 0:  # child
        code = 1
        try:
            fn()
            code = 0
        except BaseException as e:  # reported through the exit code
            print(f"child failed: {e!r}", file=sys.stderr)
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status) if hasattr(os, "waitstatus_to_exitcode") else status >> 8


def test_child_after_fork_opens_new_stores_and_refuses_inherited_ones(tmp_path):
    parent = cairn.Store.open(f"file://{tmp_path}")
    parent.put("from-parent", b"p")  # the parent's runtime is running now

    def child():
        with pytest.raises(cairn.Unsupported, match="fork"):
            parent.get("from-parent")
        fresh = cairn.Store.open(f"file://{tmp_path}")
        assert fresh.get("from-parent") == b"p"
        fresh.put("from-child", b"c")

        async def main():
            astore = await cairn.AsyncStore.open(f"file://{tmp_path}")
            assert await astore.get("from-child") == b"c"

        asyncio.run(main())

    assert _in_child(child) == 0
    assert parent.get("from-child") == b"c"
