"""File-like objects over objects: what ``store.open(key, mode)`` returns.

Reading streams the object through one GET (a seek outside the buffer starts a ranged GET
pinned to the same ETag). Writing streams through cairn's transfer writer in bounded memory;
``close()`` commits the object, ``abort()`` (or an exception inside ``with``) discards it, and
an unclosed writer that is garbage collected is discarded too: an object appears only when the
program says it is complete.
"""

import io
import warnings
from typing import Any, Dict, Optional

from ._errors import InvalidInput

__all__ = ["ObjectReader", "ObjectWriter", "TextObjectWriter", "open_object"]

# Large enough that a sequential read makes few calls into Rust.
READ_BUFFER = 1024 * 1024


class ObjectReader(io.RawIOBase):
    """A raw, seekable reader over one object. ``store.open(key, "rb")`` wraps it in an
    ``io.BufferedReader``; use ``.raw`` on that to reach this object."""

    def __init__(self, handle: Any, name: str) -> None:
        super().__init__()
        self._h = handle
        self.name = name

    @property
    def size(self) -> int:
        """The object's size in bytes."""
        return self._h.size

    @property
    def etag(self) -> Optional[str]:
        """The ETag of the version being read."""
        return self._h.etag

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        view = memoryview(b).cast("B")
        data = self._h.read(len(view))
        n = len(data)
        view[:n] = data
        return n

    def read(self, size: Optional[int] = -1) -> bytes:
        self._checkClosed()
        return self._h.read(-1 if size is None else size)

    def readall(self) -> bytes:
        self._checkClosed()
        return self._h.read(-1)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self._checkClosed()
        return self._h.seek(offset, whence)

    def tell(self) -> int:
        self._checkClosed()
        return self._h.tell()

    def close(self) -> None:
        if not self.closed:
            self._h.close()
        super().close()

    def __repr__(self) -> str:
        return f"<cairn.ObjectReader name={self.name!r} size={self.size}>"


class ObjectWriter(io.BufferedIOBase):
    """A streaming writer for one object. ``close()`` commits it and sets ``result`` (a
    ``PutResult``); ``abort()`` discards it. As a context manager, an exception inside the
    ``with`` block aborts instead of committing."""

    result: Any = None

    def __init__(self, handle: Any, name: str) -> None:
        super().__init__()
        self._h = handle
        self.name = name

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        if self.closed:
            raise ValueError("write to closed file")
        return self._h.write(b)

    def tell(self) -> int:
        """Bytes written so far."""
        return self._h.written

    def flush(self) -> None:
        # Nothing becomes visible before close(); data already streams to the store.
        if self.closed:
            raise ValueError("flush of closed file")

    def close(self) -> None:
        """Uploads the rest and commits the object (once; later calls do nothing)."""
        if self.closed:
            return
        try:
            self.result = self._h.close()
        finally:
            super().close()

    def abort(self) -> None:
        """Discards everything written; the object stays as it was."""
        if self.closed:
            return
        try:
            self._h.abort()
        finally:
            super().close()

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is not None:
            self.abort()
        else:
            self.close()

    def __del__(self) -> None:
        # io.IOBase would close() (commit) here; an unclosed writer is discarded instead:
        # dropping the native handle aborts the upload in the background.
        if not getattr(self, "closed", True):
            warnings.warn(
                f"cairn writer for {self.name!r} was never closed; the object was not written",
                ResourceWarning,
                stacklevel=2,
            )

    def __repr__(self) -> str:
        return f"<cairn.ObjectWriter name={self.name!r}>"


class TextObjectWriter(io.TextIOWrapper):
    """Text mode over an :class:`ObjectWriter`, with the same commit/abort rules."""

    def __init__(self, writer: ObjectWriter, **kwargs: Any) -> None:
        super().__init__(writer, **kwargs)
        self._writer = writer

    def abort(self) -> None:
        """Discards everything written."""
        self._writer.abort()

    @property
    def result(self) -> Any:
        """The ``PutResult`` once closed."""
        return self._writer.result

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is not None:
            self._writer.abort()
        else:
            self.close()

    def __del__(self) -> None:
        # Do not commit on garbage collection; ObjectWriter.__del__ warns and discards.
        pass


def _mode_error(key: str, msg: str) -> InvalidInput:
    e = InvalidInput(msg)
    e.key, e.operation = key, "open"
    return e


def open_object(
    store: Any,
    key: str,
    mode: str = "rb",
    *,
    buffering: int = -1,
    encoding: Optional[str] = None,
    errors: Optional[str] = None,
    newline: Optional[str] = None,
    content_type: Optional[str] = None,
    metadata: Optional[Dict[str, str]] = None,
    if_match: Optional[str] = None,
    part_size: Optional[int] = None,
    concurrency: Optional[int] = None,
) -> Any:
    """Opens the object at ``key`` as a file.

    Modes: ``"rb"`` (an ``io.BufferedReader``), ``"r"`` (text, UTF-8 unless ``encoding``),
    ``"wb"`` / ``"w"`` (streaming writers, committed on close), ``"xb"`` / ``"x"`` (like
    ``"w"`` but fail with ``AlreadyExists`` if the key exists, where the store enforces it).
    Appending and ``+`` modes are not supported by object stores.

    Reading raises ``NotFound`` at open time. ``content_type``, ``metadata`` and ``if_match``
    apply to writes; ``part_size`` and ``concurrency`` tune the multipart upload (memory is
    bounded by about ``part_size * (concurrency + 1)``).
    """
    chars = set(mode)
    if len(chars) != len(mode) or not chars <= set("rwxbt+a"):
        raise _mode_error(key, f"invalid mode {mode!r}; use 'rb', 'r', 'wb', 'w', 'xb' or 'x'")
    if chars & set("+a"):
        raise _mode_error(
            key,
            f"mode {mode!r} is not supported: objects are read or written whole, not "
            "appended or updated in place; read the object, then write a new one",
        )
    kinds = chars & set("rwx")
    if len(kinds) != 1 or {"b", "t"} <= chars:
        raise _mode_error(key, f"invalid mode {mode!r}; use 'rb', 'r', 'wb', 'w', 'xb' or 'x'")
    binary = "b" in chars
    if binary and (encoding is not None or errors is not None or newline is not None):
        raise _mode_error(key, "encoding, errors and newline apply to text modes only")
    if "r" in kinds:
        if content_type is not None or metadata is not None or if_match is not None:
            raise _mode_error(key, "content_type, metadata and if_match apply to writes only")
        raw = ObjectReader(store._reader(key), key)
        if buffering == 0:
            if not binary:
                raise _mode_error(key, "unbuffered text reading is not possible")
            return raw
        size = buffering if buffering > 1 else READ_BUFFER
        reader = io.BufferedReader(raw, buffer_size=size)
        if binary:
            return reader
        return io.TextIOWrapper(reader, encoding=encoding or "utf-8", errors=errors, newline=newline)
    handle = store._writer(
        key,
        content_type=content_type,
        metadata=metadata,
        mode="create" if "x" in kinds else "overwrite",
        if_match=if_match,
        part_size=part_size,
        concurrency=concurrency,
    )
    writer = ObjectWriter(handle, key)
    if binary:
        return writer
    return TextObjectWriter(writer, encoding=encoding or "utf-8", errors=errors, newline=newline)
