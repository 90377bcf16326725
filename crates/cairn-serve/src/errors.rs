//! The one place cairn's error kinds become S3 error codes.

use cairn::{Error, ErrorKind};
use s3s::{S3Error, S3ErrorCode};

/// The S3 error for a cairn error. The message is cairn's, which names the store (never a
/// secret) and the key.
pub fn to_s3(e: Error) -> S3Error {
    let code = match e.kind() {
        ErrorKind::NotFound => S3ErrorCode::NoSuchKey,
        // S3 answers a failed If-None-Match or If-Match on a write with 412 alike.
        ErrorKind::AlreadyExists | ErrorKind::PreconditionFailed => S3ErrorCode::PreconditionFailed,
        ErrorKind::PermissionDenied | ErrorKind::Unauthenticated => S3ErrorCode::AccessDenied,
        ErrorKind::BucketNotFound => S3ErrorCode::NoSuchBucket,
        ErrorKind::InvalidInput | ErrorKind::Unrepresentable => S3ErrorCode::InvalidArgument,
        ErrorKind::RateLimited => S3ErrorCode::SlowDown,
        // The backing store is unreachable: clients retry a 503.
        ErrorKind::Network | ErrorKind::Timeout | ErrorKind::Unavailable => {
            S3ErrorCode::ServiceUnavailable
        }
        ErrorKind::Unsupported => S3ErrorCode::NotImplemented,
        _ => S3ErrorCode::InternalError,
    };
    with_message(code, e.to_string())
}

/// An S3 error with a message.
pub fn with_message(code: S3ErrorCode, msg: impl Into<String>) -> S3Error {
    S3Error::with_message(code, msg.into())
}

/// A key S3 accepts but cairn refuses (`..`, `//`, a trailing `/`): nothing is written.
pub fn bad_key(e: Error) -> S3Error {
    let code = if e.to_string().contains("bytes; the limit") {
        S3ErrorCode::KeyTooLongError
    } else {
        S3ErrorCode::InvalidArgument
    };
    with_message(code, e.to_string())
}

/// Shorthand for an internal error from anything displayable (I/O on the state dir).
pub fn internal(what: &str, e: impl std::fmt::Display) -> S3Error {
    with_message(S3ErrorCode::InternalError, format!("{what}: {e}"))
}
