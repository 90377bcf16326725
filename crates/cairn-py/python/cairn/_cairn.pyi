"""Type stubs for the native module ``cairn._cairn`` (see ``src/*.rs``)."""

import datetime
from typing import (
    Any,
    AsyncIterator,
    Awaitable,
    Dict,
    Iterable,
    Iterator,
    List,
    Literal,
    Optional,
    Tuple,
    TypedDict,
    Union,
    overload,
)

import os
from typing import BinaryIO, Callable

from ._errors import CairnError

__version__: str

Range = Union[Tuple[int, Optional[int]], slice]
Data = Union[bytes, bytearray, memoryview]
PutMode = Literal["overwrite", "create"]

def config_keys() -> List[str]:
    """The option names ``Store.open(url, **options)`` accepts (canonical names)."""

class ObjectMeta:
    """What a head or a listing says about an object.

    ``metadata`` is the user's only; what the layers recorded (checksum, compression,
    encryption, content digest) has fields of its own.
    """

    @property
    def key(self) -> str: ...
    @property
    def size(self) -> int:
        """Logical size: what a full read returns (see ``size_known``)."""
    @property
    def stored_size(self) -> int:
        """Bytes as stored, after compression and encryption."""
    @property
    def size_known(self) -> bool:
        """False in a listing through a compressing or encrypting store, where ``size`` is the
        stored size until a head."""
    @property
    def etag(self) -> Optional[str]: ...
    @property
    def last_modified(self) -> datetime.datetime:
        """Timezone-aware UTC."""
    @property
    def content_type(self) -> Optional[str]:
        """From head; listings leave it None."""
    @property
    def metadata(self) -> Dict[str, str]:
        """The user's metadata, from head; listings leave it empty. Never holds ``cairn-*``."""
    @property
    def sha256(self) -> Optional[str]:
        """SHA-256 (hex) of the bytes as stored, recorded by the checksum layer (from head)."""
    @property
    def compression(self) -> Optional[str]:
        """``"zstd"`` or ``"gzip"`` if the object is stored compressed (from head)."""
    @property
    def encryption(self) -> Optional[str]:
        """The encryption algorithm, or None if the object is not encrypted (from head)."""
    @property
    def encryption_key_id(self) -> Optional[str]:
        """The id of the key the object is encrypted with (from head)."""
    @property
    def content_digest(self) -> Optional[str]:
        """What sync compares: ``sha256:<hex>`` of the content, or
        ``hmac-sha256:<key id>:<hex>`` (keyed) for an encrypted object; None if unknown."""
    @property
    def version(self) -> Optional[str]: ...
    def to_dict(self) -> Dict[str, Any]: ...

class PutResult:
    """The new object's ETag and version, when the store has them."""

    @property
    def etag(self) -> Optional[str]: ...
    @property
    def version(self) -> Optional[str]: ...

class ListIter(Iterator[Any]):
    """A lazy listing; pages are fetched as you iterate."""

    def __iter__(self) -> "ListIter": ...
    def __next__(self) -> Any: ...
    def collect(self) -> List[Any]: ...

class VersionIter(Iterator[Dict[str, Any]]):
    """A lazy ``Store.list_versions``; pages are fetched as you iterate."""

    def __iter__(self) -> "VersionIter": ...
    def __next__(self) -> Dict[str, Any]: ...
    def collect(self) -> List[Dict[str, Any]]: ...

class AsyncListIter(AsyncIterator[Any]):
    """A lazy async listing: ``async for meta in store.list(prefix)``."""

    def __aiter__(self) -> "AsyncListIter": ...
    def __anext__(self) -> Awaitable[Any]: ...
    def collect(self) -> Awaitable[List[Any]]: ...

class Reader:
    key: str
    size: int
    etag: Optional[str]
    closed: bool
    def read(self, size: int = -1) -> bytes: ...
    def seek(self, offset: int, whence: int = 0) -> int: ...
    def tell(self) -> int: ...
    def close(self) -> None: ...

class Writer:
    key: str
    written: int
    closed: bool
    def write(self, data: Data) -> int: ...
    def close(self) -> Optional[PutResult]: ...
    def abort(self) -> None: ...

class TierStats(TypedDict):
    """``tier_stats()``: the hot tier's sizes now, and its counters."""

    hot_bytes: int
    entries: int
    dirty_bytes: int
    """Write-back bytes not yet in cold."""
    dirty_entries: int
    """Keys with a write-back put or delete not yet in cold."""
    flush_lag_secs: float
    """Age of the oldest pending write-back operation (0 when none)."""
    hits: int
    misses: int
    fills: int
    evictions: int
    flushes: int
    errors: int
    hit_rate: float
    last_error: Optional[str]
    """The last flush error, while the flusher is failing."""

class Store:
    """The native blocking store; use ``cairn.Store``, which adds ``open``."""

    def __init__(self, url: Union[str, "Store", "AsyncStore"], /, **options: Any) -> None:
        """Opens ``url`` (``tier+URL`` puts a local hot tier in front of it: options ``hot``,
        ``mode``, ``hot_max``, ``hot_max_entries``, ``ttl``, ``immutable``, ``dirty_max``,
        ``demote_after``, ``pin``, ``flush_concurrency``, ``flush_delay``), or shares a store's backend."""
    def put(
        self,
        key: str,
        data: Data,
        *,
        content_type: Optional[str] = None,
        metadata: Optional[Dict[str, str]] = None,
        mode: PutMode = "overwrite",
        if_match: Optional[str] = None,
    ) -> PutResult: ...
    def get(self, key: str, *, range: Optional[Range] = None) -> bytes: ...
    def head(self, key: str) -> ObjectMeta: ...
    def get_version(self, key: str, version_id: str) -> bytes: ...
    def presign(
        self, key: str, *, method: str = "GET", expires: Union[float, datetime.timedelta, None] = None
    ) -> str:
        """A URL allowing GET/PUT/HEAD of ``key`` for ``expires`` (default 15 min, at most 7 days)."""
        ...
    def list_versions(self, prefix: str = "") -> VersionIter:
        """Every version and delete marker under ``prefix``, lazily, as dicts (``key``,
        ``version_id``, ``is_latest``, ``delete_marker``, ``size``, ``last_modified``,
        ``etag``, ``storage_class``)."""
        ...
    def stats(self, prefix: str = "", *, depth: int = 0) -> Dict[str, Any]:
        """Count and stored bytes: ``total``, ``by_class``, ``by_prefix`` (first ``depth`` levels)."""
        ...
    def exists(self, key: str) -> bool: ...
    def delete(self, key: str) -> None: ...
    def delete_many(self, keys: Iterable[str]) -> List[Tuple[str, CairnError]]: ...
    @overload
    def list(
        self, prefix: str = "", *, recursive: Literal[True] = True, start_after: Optional[str] = None
    ) -> Iterator[ObjectMeta]: ...
    @overload
    def list(
        self, prefix: str = "", *, recursive: Literal[False], start_after: Optional[str] = None
    ) -> Iterator[Union[ObjectMeta, str]]: ...
    def list_prefixes(self, prefix: str = "") -> List[str]: ...
    def copy(self, src: str, dst: str, *, overwrite: bool = True) -> None: ...
    def upload_file(
        self,
        path: Union[str, "os.PathLike[str]"],
        key: str,
        *,
        content_type: Optional[str] = None,
        metadata: Optional[Dict[str, str]] = None,
        part_size: Optional[int] = None,
        concurrency: Optional[int] = None,
    ) -> PutResult: ...
    def download_file(
        self,
        key: str,
        path: Union[str, "os.PathLike[str]"],
        *,
        part_size: Optional[int] = None,
        concurrency: Optional[int] = None,
        fsync: bool = True,
    ) -> ObjectMeta:
        """Downloads ``key`` to ``path``, checked against its recorded SHA-256, replacing
        ``path`` atomically. An object with no recorded SHA-256 (written by another tool) is
        downloaded unchecked: the returned metadata's ``sha256`` is then None."""
    def rename(self, src: str, dst: str) -> None: ...
    def health_check(self) -> None: ...
    @property
    def capabilities(self) -> Dict[str, Any]: ...
    def tier_stats(self) -> TierStats:
        """The hot tier's sizes and counters. The four tier methods raise ``InvalidInput`` on
        a store not opened from a ``tier+`` URL."""
    def flush(self) -> None:
        """Uploads every pending write-back write; returns once nothing is dirty."""
    def evict(self, prefix: str = "") -> int:
        """Drops the clean hot copies under ``prefix`` (relative to the URL's prefix; ``""``
        for all) and returns how many; the next read of one refills it from cold."""
    def tier_verify(self) -> List[Tuple[str, str]]:
        """``(key, problem)`` for each clean hot copy that is stale, corrupt or gone from
        cold; ``[]`` when hot and cold agree."""
    def _reader(self, key: str) -> Reader: ...
    def _writer(
        self,
        key: str,
        *,
        content_type: Optional[str] = None,
        metadata: Optional[Dict[str, str]] = None,
        mode: PutMode = "overwrite",
        if_match: Optional[str] = None,
        part_size: Optional[int] = None,
        concurrency: Optional[int] = None,
    ) -> Writer: ...

class Bucket:
    """One S3 bucket's settings: versioning, encryption, lifecycle, policy, ACL, uploads, presets."""

    def __init__(self, url: str, /, **options: Any) -> None: ...
    @property
    def name(self) -> str: ...
    def create(self, *, object_lock: bool = False) -> None: ...
    def exists(self) -> bool: ...
    def delete(self, *, force: bool = False) -> None: ...
    def info(self) -> Dict[str, Any]: ...
    def versioning(self) -> str: ...
    def set_versioning(self, enabled: bool) -> None: ...
    def encryption(self) -> Dict[str, Any]: ...
    def set_encryption(self, kind: str, *, kms_key: Optional[str] = None) -> None: ...
    def lifecycle(self) -> List[Dict[str, Any]]: ...
    def set_lifecycle(self, rules: Union[str, List[Dict[str, Any]]]) -> None: ...
    def delete_lifecycle(self) -> None: ...
    def policy(self) -> Optional[str]: ...
    def set_policy(self, policy: Union[str, Dict[str, Any]]) -> None: ...
    def delete_policy(self) -> None: ...
    def set_acl(self, canned: str) -> None: ...
    def uploads(self, prefix: str = "") -> List[Dict[str, Any]]: ...
    def abort_uploads(
        self, older_than: Union[float, datetime.timedelta], *, prefix: str = "", dry_run: bool = False
    ) -> List[Dict[str, Any]]: ...
    def plan(self, preset: str) -> Dict[str, Any]: ...
    def setup(self, preset: str, *, dry_run: bool = False, skip_unsupported: bool = False) -> Dict[str, Any]: ...

class AsyncStore:
    """An asyncio handle on one store: the same calls as ``Store``, awaited."""

    def __init__(self, url: Union[str, Store, "AsyncStore"], /, **options: Any) -> None: ...
    @classmethod
    def open(cls, url: str, /, **options: Any) -> Awaitable["AsyncStore"]: ...
    def put(
        self,
        key: str,
        data: Data,
        *,
        content_type: Optional[str] = None,
        metadata: Optional[Dict[str, str]] = None,
        mode: PutMode = "overwrite",
        if_match: Optional[str] = None,
    ) -> Awaitable[PutResult]: ...
    def get(self, key: str, *, range: Optional[Range] = None) -> Awaitable[bytes]: ...
    def head(self, key: str) -> Awaitable[ObjectMeta]: ...
    def exists(self, key: str) -> Awaitable[bool]: ...
    def delete(self, key: str) -> Awaitable[None]: ...
    def delete_many(self, keys: Iterable[str]) -> Awaitable[List[Tuple[str, CairnError]]]: ...
    @overload
    def list(
        self, prefix: str = "", *, recursive: Literal[True] = True, start_after: Optional[str] = None
    ) -> AsyncIterator[ObjectMeta]: ...
    @overload
    def list(
        self, prefix: str = "", *, recursive: Literal[False], start_after: Optional[str] = None
    ) -> AsyncIterator[Union[ObjectMeta, str]]: ...
    def list_prefixes(self, prefix: str = "") -> Awaitable[List[str]]: ...
    def copy(self, src: str, dst: str, *, overwrite: bool = True) -> Awaitable[None]: ...
    def upload_file(
        self,
        path: Union[str, "os.PathLike[str]"],
        key: str,
        *,
        content_type: Optional[str] = None,
        metadata: Optional[Dict[str, str]] = None,
        part_size: Optional[int] = None,
        concurrency: Optional[int] = None,
    ) -> Awaitable[PutResult]: ...
    def download_file(
        self,
        key: str,
        path: Union[str, "os.PathLike[str]"],
        *,
        part_size: Optional[int] = None,
        concurrency: Optional[int] = None,
        fsync: bool = True,
    ) -> Awaitable[ObjectMeta]:
        """See ``Store.download_file``: ``sha256`` of the metadata is None when the object had
        no recorded SHA-256, so its bytes were not checked."""
    def rename(self, src: str, dst: str) -> Awaitable[None]: ...
    def health_check(self) -> Awaitable[None]: ...
    @property
    def capabilities(self) -> Dict[str, Any]: ...
    def tier_stats(self) -> TierStats:
        """The hot tier's sizes and counters (not awaitable: no I/O)."""
    def flush(self) -> Awaitable[None]: ...
    def evict(self, prefix: str = "") -> Awaitable[int]: ...
    def tier_verify(self) -> Awaitable[List[Tuple[str, str]]]: ...

class Entry:
    """One archived document."""

    @property
    def key(self) -> str:
        """Where it is stored; pass it to ``load``, ``restore``, ``verify``, ``delete``."""
    @property
    def name(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def timestamp(self) -> datetime.datetime:
        """Save time, timezone-aware UTC."""
    @property
    def size(self) -> int: ...
    @property
    def metadata(self) -> Dict[str, str]:
        """User metadata plus ``archive-*`` names; filled by ``save``, ``metadata(key)`` and
        metadata-filtered lists, empty in plain lists."""
    def to_dict(self) -> Dict[str, Any]: ...

class Archive:
    """Named, timestamped documents over a store, keyed by a template (default
    ``{prefix}/{name}/{yyyy}/{mm}/{timestamp}-{kind}.{ext}``). Blocking; releases the GIL."""

    def __init__(
        self,
        store: Union[str, Store, AsyncStore],
        prefix: str = "",
        template: Optional[str] = None,
    ) -> None: ...
    def save(
        self,
        name: str,
        kind: str,
        data: Union[Data, BinaryIO],
        metadata: Optional[Dict[str, str]] = None,
        content_type: Optional[str] = None,
    ) -> Entry:
        """Saves bytes or a binary file (streamed); never overwrites an earlier save."""
    def list(
        self,
        name: Optional[str] = None,
        kind: Optional[str] = None,
        since: Optional[datetime.datetime] = None,
        until: Optional[datetime.datetime] = None,
        metadata: Optional[Dict[str, str]] = None,
    ) -> List[Entry]:
        """Matching entries, newest first; ``since`` inclusive, ``until`` exclusive."""
    def latest(self, name: str, kind: Optional[str] = None) -> Optional[Entry]: ...
    def load(self, key: str) -> bytes: ...
    def restore(self, key: str, path: Union[str, "os.PathLike[str]"]) -> int:
        """Writes the entry to a local file atomically; returns the bytes written."""
    def exists(self, key: str) -> bool: ...
    def delete(self, key: str) -> None: ...
    def metadata(self, key: str) -> Entry: ...
    def verify(self, key: str) -> Literal["ok", "corrupt", "unverifiable"]: ...
    def prune(
        self,
        name: Optional[str] = None,
        kind: Optional[str] = None,
        keep_last: Optional[int] = None,
        older_than: Union[float, datetime.timedelta, None] = None,
        dry_run: bool = False,
    ) -> List[Entry]:
        """Deletes entries beyond the newest ``keep_last`` and/or older than ``older_than``
        (both given: only entries matching both), per name (and kind, if given)."""

class AsyncArchive:
    """``Archive`` for asyncio: the same methods, each returning an awaitable."""

    def __init__(
        self,
        store: Union[str, Store, AsyncStore],
        prefix: str = "",
        template: Optional[str] = None,
    ) -> None: ...
    def save(
        self,
        name: str,
        kind: str,
        data: Union[Data, BinaryIO],
        metadata: Optional[Dict[str, str]] = None,
        content_type: Optional[str] = None,
    ) -> Awaitable[Entry]: ...
    def list(
        self,
        name: Optional[str] = None,
        kind: Optional[str] = None,
        since: Optional[datetime.datetime] = None,
        until: Optional[datetime.datetime] = None,
        metadata: Optional[Dict[str, str]] = None,
    ) -> Awaitable[List[Entry]]: ...
    def latest(self, name: str, kind: Optional[str] = None) -> Awaitable[Optional[Entry]]: ...
    def load(self, key: str) -> Awaitable[bytes]: ...
    def restore(self, key: str, path: Union[str, "os.PathLike[str]"]) -> Awaitable[int]: ...
    def exists(self, key: str) -> Awaitable[bool]: ...
    def delete(self, key: str) -> Awaitable[None]: ...
    def metadata(self, key: str) -> Awaitable[Entry]: ...
    def verify(self, key: str) -> Awaitable[Literal["ok", "corrupt", "unverifiable"]]: ...
    def prune(
        self,
        name: Optional[str] = None,
        kind: Optional[str] = None,
        keep_last: Optional[int] = None,
        older_than: Union[float, datetime.timedelta, None] = None,
        dry_run: bool = False,
    ) -> Awaitable[List[Entry]]: ...

class SyncFailure(TypedDict):
    key: str
    action: Literal["transfer", "delete", "skip"]
    kind: str
    message: str

class SyncSummary(TypedDict):
    dry_run: bool
    transferred: int
    transferred_bytes: int
    skipped: int
    deleted: int
    failed: int
    unlisted: int
    failures: List[SyncFailure]
    unverified: int
    """Of the transferred, objects with no recorded SHA-256 (written by another tool), whose
    bytes were therefore not checked; their ``item_done`` events have outcome ``"unverified"``."""
    unverified_keys: List[str]
    elapsed_secs: float

SyncEvent = Dict[str, Any]
"""``{"event": "start" | "discovered" | "item_start" | "progress" | "item_done" | "finish", ...}``"""

def bench_history(
    source: Union[str, "os.PathLike[str]", Store, AsyncStore],
    *,
    archive: Union[str, Store, AsyncStore, Archive, None] = None,
    regress_pct: float = 15.0,
    window: int = 5,
) -> Tuple[str, List[Tuple[str, str]]]:
    """Native half of ``cairn.bench_history``: rows as JSON, and (name, reason) per skipped file."""
    ...

def sync(
    src: Union[str, "os.PathLike[str]", Store, AsyncStore],
    dst: Union[str, "os.PathLike[str]", Store, AsyncStore],
    *,
    delete: bool = False,
    dry_run: bool = False,
    checksum: bool = False,
    include: Optional[List[str]] = None,
    exclude: Optional[List[str]] = None,
    acl: Optional[str] = None,
    storage_class: Optional[str] = None,
    concurrency: Optional[int] = None,
    progress: Optional[Callable[[SyncEvent], Any]] = None,
) -> SyncSummary:
    """Makes ``dst`` match ``src``; per-item failures are in the summary, bad options raise
    ``InvalidInput``. Objects with no recorded SHA-256 (written by another tool) are copied
    unchecked and counted in ``unverified`` (named in ``unverified_keys``). ``progress`` gets
    event dicts; an exception it raises is re-raised when sync returns."""
