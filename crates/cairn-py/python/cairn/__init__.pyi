"""Type stubs for the ``cairn`` package."""

import io
from typing import Any, ClassVar, Dict, List, Literal, Optional, Protocol, TypedDict, overload

from ._cairn import Archive as Archive
from ._cairn import AsyncArchive as AsyncArchive
from ._cairn import AsyncListIter as AsyncListIter
from ._cairn import Entry as Entry
from ._cairn import SyncEvent as SyncEvent
from ._cairn import SyncFailure as SyncFailure
from ._cairn import SyncSummary as SyncSummary
from ._cairn import TierStats as TierStats
from ._cairn import sync as sync
from datetime import datetime
import os
from ._cairn import AsyncStore as AsyncStore
from ._cairn import Bucket as Bucket
from ._cairn import ListIter as ListIter
from ._cairn import VersionIter as VersionIter
from ._cairn import ObjectMeta as ObjectMeta
from ._cairn import PutResult as PutResult
from ._cairn import Store as _NativeStore
from ._cairn import __version__ as __version__
from ._cairn import config_keys as config_keys
from ._errors import AlreadyExists as AlreadyExists
from ._errors import BucketNotFound as BucketNotFound
from ._errors import CairnError as CairnError
from ._errors import IntegrityError as IntegrityError
from ._errors import InvalidInput as InvalidInput
from ._errors import NetworkError as NetworkError
from ._errors import NotFound as NotFound
from ._errors import PermissionDenied as PermissionDenied
from ._errors import PreconditionFailed as PreconditionFailed
from ._errors import RateLimited as RateLimited
from ._errors import Timeout as Timeout
from ._errors import Unauthenticated as Unauthenticated
from ._errors import Unavailable as Unavailable
from ._errors import UnexpectedError as UnexpectedError
from ._errors import Unsupported as Unsupported
from ._io import ObjectReader as ObjectReader
from ._io import ObjectWriter as ObjectWriter
from ._io import TextObjectWriter as TextObjectWriter
from ._io import open_object as open_object

class _OpenStore(Protocol):
    def __call__(self, url: str, /, **options: Any) -> "Store": ...

class _OpenObject(Protocol):
    @overload
    def __call__(self, key: str, mode: Literal["rb", "br"] = "rb", *, buffering: int = -1) -> io.BufferedReader: ...
    @overload
    def __call__(
        self,
        key: str,
        mode: Literal["r", "rt", "tr"],
        *,
        buffering: int = -1,
        encoding: Optional[str] = None,
        errors: Optional[str] = None,
        newline: Optional[str] = None,
    ) -> io.TextIOWrapper: ...
    @overload
    def __call__(
        self,
        key: str,
        mode: Literal["wb", "bw", "xb", "bx"],
        *,
        content_type: Optional[str] = None,
        metadata: Optional[Dict[str, str]] = None,
        if_match: Optional[str] = None,
        part_size: Optional[int] = None,
        concurrency: Optional[int] = None,
    ) -> ObjectWriter: ...
    @overload
    def __call__(
        self,
        key: str,
        mode: Literal["w", "wt", "tw", "x", "xt", "tx"],
        *,
        encoding: Optional[str] = None,
        errors: Optional[str] = None,
        newline: Optional[str] = None,
        content_type: Optional[str] = None,
        metadata: Optional[Dict[str, str]] = None,
        if_match: Optional[str] = None,
        part_size: Optional[int] = None,
        concurrency: Optional[int] = None,
    ) -> TextObjectWriter: ...

class _Open:
    @overload
    def __get__(self, obj: None, objtype: Any = None) -> _OpenStore: ...
    @overload
    def __get__(self, obj: "Store", objtype: Any = None) -> _OpenObject: ...

class Store(_NativeStore):
    """A blocking handle on one store. ``Store.open(url, **options)`` opens one;
    ``store.open(key, mode)`` opens an object as a file."""

    open: ClassVar[_Open]
    def to_async(self) -> AsyncStore:
        """The same store as an :class:`AsyncStore` (shares the backend and its connections)."""


class BenchReportSkipped(UserWarning):
    """A file among the bench reports that is no report, or of a schema this cairn cannot read."""

class BenchRow(TypedDict):
    report: str
    timestamp: datetime
    commit: Optional[str]
    host: Optional[str]
    op: str
    size: int
    metric: Literal["ops_per_sec", "mb_per_sec", "p50_ms", "p99_ms"]
    value: float
    change_pct: Optional[float]
    median: float
    regression: bool

def bench_history(
    source: "str | os.PathLike[str] | Store | AsyncStore",
    *,
    archive: "str | Store | AsyncStore | Archive | None" = None,
    regress_pct: float = 15.0,
    window: int = 5,
) -> List[BenchRow]:
    """Every bench report of ``source`` (``"archive:NAME"``, a store or URL prefix, or a
    directory) as rows, oldest first; ``pandas.DataFrame(rows)`` loads them. Skipped files
    are named in ``BenchReportSkipped`` warnings."""
    ...
