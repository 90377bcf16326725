#!/usr/bin/env python3
"""Use case 004, the Python side: snapshot agent state on cairn.

Saves snapshots with metadata (agent_id, session_id, description), lists them, restores the
latest, verifies every one, streams a large snapshot from a file, and prunes old ones. The
store comes from ``CAIRN_URL`` (any cairn URL, default the local store); credentials come from
the standard AWS chain. Snapshots are gzip-compressed and SHA-256-verified on every read.

    CAIRN_URL=s3://bucket/prefix python examples/agent_snapshots/agent_snapshots.py

Exits non-zero (an AssertionError or a cairn error) if anything does not behave.
"""

import json
import os
import tempfile
import time

import cairn

AGENT = "agent-py"


def state(agent: str, step: int) -> bytes:
    memory = [f"observation {i} of {agent}" for i in range(step * 50)]
    return json.dumps({"agent": agent, "step": step, "memory": memory}).encode()


def meta(agent: str, session: str, description: str) -> dict:
    return {"agent_id": agent, "session_id": session, "description": description}


def main() -> None:
    url = os.environ.get("CAIRN_URL", "local://examples/agent_snapshots")
    store = cairn.Store.open(url, compression="gzip")
    archive = cairn.Archive(store, prefix="snapshots")
    print(f"store: {store}")
    # Start clean so reruns against the same store see only this run's snapshots.
    for e in archive.list(name=AGENT):
        archive.delete(e.key)

    saved = []
    for step, session in [(1, "s-1"), (2, "s-1"), (3, "s-2")]:
        e = archive.save(
            AGENT,
            "snapshot",
            state(AGENT, step),
            metadata=meta(AGENT, session, f"after step {step}"),
            content_type="application/json",
        )
        print(f"saved  {e.key} ({e.size} bytes)")
        saved.append(e)
        time.sleep(0.005)  # distinct millisecond timestamps

    listed = archive.list(name=AGENT)
    assert [e.key for e in listed] == [e.key for e in reversed(saved)], "newest first"
    assert len(archive.list(metadata={"session_id": "s-1"})) == 2, "filter by session"

    latest = archive.latest(AGENT, kind="snapshot")
    assert latest is not None and latest.key == saved[-1].key
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, f"{AGENT}.json")
        archive.restore(latest.key, path)
        with open(path, "rb") as f:
            assert f.read() == state(AGENT, 3), "restore is byte for byte"
        print(f"restored {latest.key} -> {path}")
    info = archive.metadata(latest.key)
    assert info.metadata["description"] == "after step 3"
    assert info.metadata["agent_id"] == AGENT

    for e in listed:
        v = archive.verify(e.key)
        print(f"verify {e.key} {v}")
        assert v == "ok", "every snapshot verifies"

    # A large snapshot streams from a file in bounded memory.
    with tempfile.TemporaryFile() as f:
        f.write(b"x" * (24 * 1024 * 1024))
        f.seek(0)
        big = archive.save(AGENT, "checkpoint", f, metadata=meta(AGENT, "s-2", "large"))
    assert big.size == 24 * 1024 * 1024
    assert archive.verify(big.key) == "ok"
    print(f"streamed {big.key} ({big.size} bytes)")

    planned = archive.prune(name=AGENT, kind="snapshot", keep_last=1, dry_run=True)
    assert len(archive.list(name=AGENT)) == 4, "dry run deletes nothing"
    pruned = archive.prune(name=AGENT, kind="snapshot", keep_last=1)
    assert [e.key for e in pruned] == [e.key for e in planned] and len(pruned) == 2
    left = archive.list(name=AGENT)
    assert sorted(e.kind for e in left) == ["checkpoint", "snapshot"], "latest + checkpoint remain"
    for e in left:
        archive.delete(e.key)
    print("agent_snapshots.py: ok")


if __name__ == "__main__":
    main()
