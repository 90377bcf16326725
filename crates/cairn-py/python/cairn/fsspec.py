"""An fsspec filesystem over any cairn store: protocol ``cairn``.

    import fsspec
    fs = fsspec.filesystem("cairn", url="s3://bucket/prefix", region="eu-west-1")
    fs.pipe_file("data/a.csv", b"x,y\\n1,2\\n")
    pandas.read_csv("cairn://data/a.csv", storage_options={"url": "s3://bucket/prefix"})

Paths are keys relative to ``url`` (``cairn://`` and leading/trailing ``/`` are stripped).
Every other keyword argument is a store option, exactly as in ``cairn.Store.open``.
Directories are implied by keys: ``mkdir`` does nothing and a directory exists while some
key is below it. Transactions (``autocommit=False``) are not supported; a written file
commits on ``close()``.
"""

from typing import Any, Dict, List, Optional, Union

from fsspec import AbstractFileSystem, register_implementation
from fsspec.utils import stringify_path

from . import Store
from ._errors import InvalidInput, NotFound, Unsupported
from ._io import open_object

__all__ = ["CairnFileSystem"]


def _info(meta: Any) -> Dict[str, Any]:
    return {
        "name": meta.key,
        "size": meta.size,
        "type": "file",
        "etag": meta.etag,
        "last_modified": meta.last_modified,
        "content_type": meta.content_type,
    }


def _dir(name: str) -> Dict[str, Any]:
    return {"name": name, "size": 0, "type": "directory"}


class CairnFileSystem(AbstractFileSystem):
    """fsspec filesystem over the cairn store at ``url`` (see the module docs)."""

    protocol = "cairn"
    root_marker = ""

    def __init__(self, url: Optional[str] = None, *, store: Optional[Store] = None, **options: Any):
        super().__init__(url=url, **options)
        for k in ("use_listings_cache", "listings_expiry_time", "max_paths", "skip_instance_cache"):
            options.pop(k, None)  # fsspec's own settings, not store options
        if store is not None:
            self.store = store
        elif url is None:
            raise InvalidInput(
                "the cairn filesystem needs url=..., e.g. "
                "fsspec.filesystem('cairn', url='s3://bucket/prefix') or "
                "storage_options={'url': 'file:///data'}"
            )
        else:
            self.store = Store.open(url, **options)

    @classmethod
    def from_store(cls, store: Store) -> "CairnFileSystem":
        """A filesystem over an open ``Store`` (not cached by fsspec, not picklable)."""
        return cls(store=store, skip_instance_cache=True)

    @classmethod
    def _strip_protocol(cls, path: Union[str, List[str]]) -> Any:
        if isinstance(path, list):
            return [cls._strip_protocol(p) for p in path]
        p: str = stringify_path(path)
        if p.startswith("cairn://"):
            p = p[len("cairn://") :]
        elif p.startswith("cairn:"):
            p = p[len("cairn:") :]
        return p.strip("/")

    # --- reading the tree -------------------------------------------------------------

    def ls(self, path: str, detail: bool = True, **kwargs: Any) -> List[Any]:
        path = self._strip_protocol(path)
        prefix = f"{path}/" if path else ""
        out = []
        for entry in self.store.list(prefix, recursive=False):
            if isinstance(entry, str):
                out.append(_dir(entry.rstrip("/")))
            else:
                out.append(_info(entry))
        if not out and path:
            try:
                out = [_info(self.store.head(path))]
            except NotFound:
                raise FileNotFoundError(path) from None
        return out if detail else [e["name"] for e in out]

    def info(self, path: str, **kwargs: Any) -> Dict[str, Any]:
        path = self._strip_protocol(path)
        if not path:
            return _dir("")
        try:
            return _info(self.store.head(path))
        except NotFound:
            pass
        for _ in self.store.list(f"{path}/", recursive=False):
            return _dir(path)
        raise FileNotFoundError(path)

    def find(
        self,
        path: str,
        maxdepth: Optional[int] = None,
        withdirs: bool = False,
        detail: bool = False,
        **kwargs: Any,
    ) -> Any:
        if maxdepth is not None or withdirs:
            return super().find(path, maxdepth=maxdepth, withdirs=withdirs, detail=detail, **kwargs)
        # One recursive listing instead of a walk.
        path = self._strip_protocol(path)
        found = {m.key: _info(m) for m in self.store.list(f"{path}/" if path else "")}
        if path and not found:
            try:
                found[path] = _info(self.store.head(path))
            except NotFound:
                pass
        return found if detail else sorted(found)

    def modified(self, path: str) -> Any:
        return self.store.head(self._strip_protocol(path)).last_modified

    def ukey(self, path: str) -> str:
        meta = self.store.head(self._strip_protocol(path))
        return meta.etag or f"{meta.size}-{meta.last_modified.isoformat()}"

    # --- reading and writing files -----------------------------------------------------

    def _open(
        self,
        path: str,
        mode: str = "rb",
        block_size: Optional[int] = None,
        autocommit: bool = True,
        cache_options: Optional[Dict[str, Any]] = None,
        **kwargs: Any,
    ) -> Any:
        path = self._strip_protocol(path)
        if not autocommit:
            raise Unsupported("the cairn filesystem has no transactions; files commit on close()")
        if "r" in mode:
            return open_object(self.store, path, "rb", buffering=block_size or -1)
        write_options = {
            k: kwargs[k]
            for k in ("content_type", "metadata", "if_match", "part_size", "concurrency")
            if k in kwargs
        }
        return open_object(self.store, path, mode.replace("t", ""), **write_options)

    def cat_file(
        self, path: str, start: Optional[int] = None, end: Optional[int] = None, **kwargs: Any
    ) -> bytes:
        path = self._strip_protocol(path)
        if start is None and end is None:
            return self.store.get(path)
        if (end is not None and end < 0) or (start is not None and start < 0 and end is not None):
            size = self.store.head(path).size
            start = None if start is None else (start + size if start < 0 else start)
            end = end + size if end < 0 else end
        start = start or 0
        if end is not None and end <= max(start, 0):
            return b""
        try:
            return self.store.get(path, range=slice(start, end))
        except InvalidInput:
            # A range starting past the end reads nothing, as with local files.
            if start >= self.store.head(path).size:
                return b""
            raise

    def pipe_file(self, path: str, value: bytes, mode: str = "overwrite", **kwargs: Any) -> None:
        if mode not in ("overwrite", "create"):
            raise InvalidInput(f"pipe_file mode must be 'overwrite' or 'create', not {mode!r}")
        self.store.put(
            self._strip_protocol(path),
            value,
            mode="create" if mode == "create" else "overwrite",
            content_type=kwargs.get("content_type"),
            metadata=kwargs.get("metadata"),
        )

    def cp_file(self, path1: str, path2: str, **kwargs: Any) -> None:
        self.store.copy(self._strip_protocol(path1), self._strip_protocol(path2))

    # --- deleting ----------------------------------------------------------------------

    def rm_file(self, path: str) -> None:
        self.store.delete(self._strip_protocol(path))

    def _rm(self, path: str) -> None:
        self.rm_file(path)

    def rm(self, path: Any, recursive: bool = False, maxdepth: Optional[int] = None) -> None:
        paths = self.expand_path(path, recursive=recursive, maxdepth=maxdepth)
        keys = [k for k in self._strip_protocol(list(paths)) if k]
        # Every ancestor of a listed key is a directory, which has no object to delete.
        dirs = {k.rsplit("/", i)[0] for k in keys for i in range(1, k.count("/") + 1)}
        failed = self.store.delete_many([k for k in keys if k not in dirs])
        if failed:
            raise failed[0][1]
        self.invalidate_cache()

    # --- directories are implied -------------------------------------------------------

    def mkdir(self, path: str, create_parents: bool = True, **kwargs: Any) -> None:
        """Does nothing: a directory exists while some key is below it."""

    def makedirs(self, path: str, exist_ok: bool = False) -> None:
        """Does nothing: a directory exists while some key is below it."""

    def rmdir(self, path: str) -> None:
        """Does nothing: a directory disappears with its last key."""


register_implementation("cairn", CairnFileSystem, clobber=True)
