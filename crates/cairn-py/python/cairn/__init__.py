"""cairn: one storage API over local disk, memory and any S3-compatible service.

    import cairn

    store = cairn.Store.open("s3://my-bucket/reports", region="eu-west-1")
    store.put("2026/11/run.json", b"{}")
    with store.open("2026/11/run.csv", "w", newline="") as f:
        csv.writer(f).writerow(["a", 1])
    for meta in store.list("2026/"):
        print(meta.key, meta.size)

- :class:`Store`: blocking calls; the GIL is released during I/O, so threads run in parallel.
- :class:`AsyncStore`: the same calls for asyncio (``await store.get(key)``).
- ``Store("tier+s3://bucket/prefix", hot="/var/cache/cairn", mode="write-back")``: a local hot
  tier in front of any store, with ``tier_stats()``, ``flush()``, ``evict(prefix)`` and
  ``tier_verify()``.
- Errors are :class:`CairnError` subclasses that also subclass the matching builtin
  (``NotFound`` is a ``FileNotFoundError``).
- :class:`Archive`: named, timestamped documents (snapshots, reports) with metadata,
  list/latest/restore/verify/prune (:class:`AsyncArchive` for asyncio).
- :func:`sync`: make one store (or directory) match another, with an optional progress callback.
- :func:`bench_history`: ``cairn bench`` reports over time, as rows for pandas.
- ``cairn.fsspec.CairnFileSystem``: the ``cairn`` protocol for pandas, pyarrow and friends.

All I/O runs on one runtime per process, shared by every store, sync and async.
"""

import types
from typing import Any

from ._cairn import (
    Archive,
    AsyncArchive,
    AsyncListIter,
    AsyncStore,
    Bucket,
    Entry,
    ListIter,
    ObjectMeta,
    PutResult,
    VersionIter,
)
from ._cairn import Store as _NativeStore
from ._cairn import __version__, config_keys, sync
from ._cairn import bench_history as _bench_history
from ._errors import (
    AlreadyExists,
    BucketNotFound,
    CairnError,
    IntegrityError,
    InvalidInput,
    NetworkError,
    NotFound,
    PermissionDenied,
    PreconditionFailed,
    RateLimited,
    Timeout,
    Unauthenticated,
    Unavailable,
    UnexpectedError,
    Unsupported,
)
from . import _errors
from ._io import ObjectReader, ObjectWriter, TextObjectWriter, open_object

__all__ = [
    "Store",
    "AsyncStore",
    "Bucket",
    "ObjectMeta",
    "PutResult",
    "ListIter",
    "VersionIter",
    "AsyncListIter",
    "Archive",
    "AsyncArchive",
    "Entry",
    "sync",
    "bench_history",
    "BenchReportSkipped",
    "ObjectReader",
    "ObjectWriter",
    "TextObjectWriter",
    "config_keys",
    *_errors.__all__,
    "__version__",
]


def _open_store(cls: Any, url: str, /, **options: Any) -> "Store":
    """Opens the store at ``url`` with ``options`` (the Rust config names, e.g. ``endpoint``,
    ``region``, ``access_key_id``, ``secret_access_key``, ``path_style``, ``timeout``)."""
    return cls(url, **options)


class _Open:
    """``Store.open(url, **options)`` opens a store; ``store.open(key, mode)`` opens an object.

    On the class it is :func:`_open_store`; on an instance it is :func:`cairn.open_object`.
    """

    def __get__(self, obj: Any, objtype: Any = None) -> Any:
        if obj is None:
            return types.MethodType(_open_store, objtype)
        return types.MethodType(open_object, obj)


class Store(_NativeStore):
    """A blocking handle on one store (thread-safe; the GIL is released during I/O).

    ``Store.open(url, **options)`` (or ``Store(url, **options)``) opens one;
    ``Store(async_store)`` shares an :class:`AsyncStore`'s backend.

    Keys are relative paths like ``"reports/2026/11/run.json"``. Methods: ``put``, ``get``,
    ``head``, ``exists``, ``delete``, ``delete_many``, ``list``, ``list_prefixes``, ``copy``,
    ``rename``, ``open`` (file-like objects), ``health_check``, ``to_async``.

    A store opened from a ``tier+URL`` (options ``hot``, ``mode``, ``hot_max``, ``pin``, ...)
    also has ``tier_stats``, ``flush``, ``evict`` and ``tier_verify``; other stores raise
    :class:`InvalidInput` there.
    """

    __slots__ = ()
    open = _Open()

    def to_async(self) -> AsyncStore:
        """The same store as an :class:`AsyncStore` (shares the backend and its connections)."""
        return AsyncStore(self)

    def __repr__(self) -> str:
        return f"cairn.Store({str(self)!r})"


class BenchReportSkipped(UserWarning):
    """A file among the bench reports that is no report, or of a schema this cairn cannot read."""


def bench_history(source, *, archive=None, regress_pct=15.0, window=5):
    """Every bench report of ``source`` as rows, oldest first, one per (report, op, size, metric).

    ``source`` is ``"archive:NAME"`` (reports saved with ``cairn bench --archive NAME``, in
    ``archive``: an :class:`Archive`, a store or a URL, default ``local://archive``), a store or
    URL prefix, or a directory (``os.PathLike`` or a plain path) of report files.

    Each row is a dict: ``report``, ``timestamp`` (an aware ``datetime``), ``commit``, ``host``,
    ``op``, ``size``, ``metric`` (``ops_per_sec``, ``mb_per_sec``, ``p50_ms``, ``p99_ms``),
    ``value``, ``change_pct`` (from the previous report), ``median`` (of the last ``window``)
    and ``regression`` (worse than the previous report by more than ``regress_pct`` percent,
    the rule of ``cairn bench --baseline``). ``pandas.DataFrame(rows)`` loads them.

    Files that are not reports, or have a schema this cairn does not read, are left out, each
    named in a :class:`BenchReportSkipped` warning.
    """
    import json
    import warnings
    from datetime import datetime

    rows, skipped = _bench_history(
        source, archive=archive, regress_pct=regress_pct, window=window
    )
    for name, reason in skipped:
        warnings.warn(f"skipped {name}: {reason}", BenchReportSkipped, stacklevel=2)
    rows = json.loads(rows)
    for r in rows:
        r["timestamp"] = datetime.fromisoformat(r["timestamp"].replace("Z", "+00:00"))
    return rows
