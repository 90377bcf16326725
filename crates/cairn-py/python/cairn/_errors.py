"""cairn's exception classes, one per error kind.

Every error raised by cairn is a :class:`CairnError`. Each kind also subclasses the builtin
exception Python code already catches: ``NotFound`` is a ``FileNotFoundError``, ``InvalidInput``
a ``ValueError``, and so on. The native module creates them (see ``src/errors.rs``) and sets
the attributes below; messages name the operation, store and key, and never a secret.
"""

from typing import Optional

__all__ = [
    "CairnError",
    "NotFound",
    "AlreadyExists",
    "PreconditionFailed",
    "PermissionDenied",
    "Unauthenticated",
    "BucketNotFound",
    "InvalidInput",
    "RateLimited",
    "Unavailable",
    "NetworkError",
    "Timeout",
    "IntegrityError",
    "Unsupported",
    "UnexpectedError",
]


class CairnError(Exception):
    """Base class of every cairn error.

    Attributes:
        kind: the error kind, a stable lowercase name such as ``"not_found"``.
        key: the object key involved, if any.
        operation: the operation that failed (``"get"``, ``"put"``, ...), if known.
        store: the store's display name (credentials are never part of it).
        hint: what you can do about it, if cairn knows.
        temporary: whether retrying the same call may succeed.
    """

    kind: str = "unexpected"
    key: Optional[str] = None
    operation: Optional[str] = None
    store: Optional[str] = None
    hint: Optional[str] = None
    temporary: bool = False


class NotFound(CairnError, FileNotFoundError):
    """The object does not exist."""

    kind = "not_found"


class AlreadyExists(CairnError, FileExistsError):
    """A create-only write (``mode="create"``, ``"xb"``) found an existing object."""

    kind = "already_exists"


class PreconditionFailed(CairnError):
    """An ``if_match`` condition did not hold: the object changed since you read it."""

    kind = "precondition_failed"


class PermissionDenied(CairnError, PermissionError):
    """The credentials are valid but lack permission for this bucket or key."""

    kind = "permission_denied"


class Unauthenticated(CairnError, PermissionError):
    """The credentials are missing, unknown, or the signature is wrong."""

    kind = "unauthenticated"


class BucketNotFound(CairnError, FileNotFoundError):
    """The bucket does not exist."""

    kind = "bucket_not_found"


class InvalidInput(CairnError, ValueError):
    """A key, URL, option or argument is malformed; the message says what to change."""

    kind = "invalid_input"


class RateLimited(CairnError):
    """The server asked to slow down (HTTP 429 / SlowDown)."""

    kind = "rate_limited"
    temporary = True


class Unavailable(CairnError):
    """The service cannot answer now (a 503 without SlowDown, e.g. a cluster without quorum).

    Retry later or check the cluster's health; lowering the concurrency does not help.
    """

    kind = "unavailable"
    temporary = True


class NetworkError(CairnError, ConnectionError):
    """The endpoint could not be reached, or the connection broke."""

    kind = "network"
    temporary = True


class Timeout(CairnError, TimeoutError):
    """The request took longer than its timeout."""

    kind = "timeout"
    temporary = True


class IntegrityError(CairnError):
    """Stored bytes do not match their recorded checksum, or failed authentication."""

    kind = "integrity"


class Unsupported(CairnError, NotImplementedError):
    """The store cannot do this (see ``store.capabilities``)."""

    kind = "unsupported"


class UnexpectedError(CairnError):
    """Anything else, including server errors (HTTP 5xx)."""

    kind = "unexpected"
