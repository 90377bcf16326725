//! One error type with a kind, in the shape OpenDAL uses.
//!
//! Every message names the operation, the store, the key and a hint, and never a secret:
//! backends build errors only from redacted store names (see [`crate::config::Secret`]).

use std::fmt;

/// What went wrong, independent of the backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The object does not exist.
    NotFound,
    /// A create-only write found an existing object.
    AlreadyExists,
    /// An if-match / if-none-match condition did not hold.
    PreconditionFailed,
    /// The credentials are valid but lack permission.
    PermissionDenied,
    /// The credentials are missing, unknown or the signature is wrong.
    Unauthenticated,
    /// The bucket does not exist.
    BucketNotFound,
    /// A key, URL, config value or argument is malformed.
    InvalidInput,
    /// The server asked us to slow down (429, SlowDown).
    RateLimited,
    /// The service cannot answer now: a 503 without SlowDown (e.g. a cluster without
    /// quorum), or a gateway's 502/504. Temporary.
    Unavailable,
    /// The endpoint could not be reached, or the connection broke.
    Network,
    /// The request took longer than its timeout.
    Timeout,
    /// Stored bytes do not match their recorded checksum, or failed authentication.
    Integrity,
    /// The store cannot do this (see [`crate::Capabilities`]).
    Unsupported,
    /// Anything else, including server errors (5xx).
    Unexpected,
    /// The store holds an object under a name cairn cannot express as a [`crate::Key`]
    /// (`a//b`, a `.` or `..` segment, a `\`): listed as [`crate::ListEntry::Unlisted`],
    /// but it cannot be read, copied or deleted through cairn.
    Unrepresentable,
}

/// What to do about an entry cairn cannot read, copy or delete.
pub const UNREPRESENTABLE_HINT: &str = "rename or remove it with another tool (for S3, e.g. \
     `aws s3 mv`), pass over it with sync's `--exclude`, or leave it be";

impl ErrorKind {
    /// A short lowercase name, stable for `--json` and Python.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::NotFound => "not_found",
            ErrorKind::AlreadyExists => "already_exists",
            ErrorKind::PreconditionFailed => "precondition_failed",
            ErrorKind::PermissionDenied => "permission_denied",
            ErrorKind::Unauthenticated => "unauthenticated",
            ErrorKind::BucketNotFound => "bucket_not_found",
            ErrorKind::InvalidInput => "invalid_input",
            ErrorKind::RateLimited => "rate_limited",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Network => "network",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Integrity => "integrity",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::Unexpected => "unexpected",
            ErrorKind::Unrepresentable => "unrepresentable",
        }
    }

    fn describe(self) -> &'static str {
        match self {
            ErrorKind::NotFound => "not found",
            ErrorKind::AlreadyExists => "already exists",
            ErrorKind::PreconditionFailed => "precondition failed",
            ErrorKind::PermissionDenied => "permission denied",
            ErrorKind::Unauthenticated => "authentication failed",
            ErrorKind::BucketNotFound => "bucket not found",
            ErrorKind::InvalidInput => "invalid input",
            ErrorKind::RateLimited => "rate limited",
            ErrorKind::Unavailable => "service unavailable",
            ErrorKind::Network => "network error",
            ErrorKind::Timeout => "timed out",
            ErrorKind::Integrity => "integrity check failed",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::Unexpected => "unexpected error",
            ErrorKind::Unrepresentable => "not a name cairn can represent",
        }
    }

    /// The hint shown when the error site gave none.
    fn default_hint(self) -> Option<&'static str> {
        Some(match self {
            ErrorKind::Unauthenticated => {
                "check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, AWS_PROFILE or the region"
            }
            ErrorKind::PermissionDenied => "the credentials lack permission for this bucket or key",
            ErrorKind::BucketNotFound => "create it with `cairn mb` or check the bucket name",
            ErrorKind::Network => "check the endpoint URL and that the server is running",
            ErrorKind::Timeout => "the server is slow or unreachable; raise `timeout` if needed",
            ErrorKind::Integrity => "the stored object is corrupt or was written without cairn",
            ErrorKind::RateLimited => "lower the concurrency or retry later",
            ErrorKind::Unavailable => {
                "the service is unavailable (e.g. a cluster without quorum); retry later or \
                 check the cluster's health"
            }
            ErrorKind::Unrepresentable => UNREPRESENTABLE_HINT,
            _ => return None,
        })
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.describe())
    }
}

type Source = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The error type of every cairn operation. Boxed, so a `Result` stays one pointer wide on
/// the hot paths that return it.
pub struct Error(Box<Inner>);

struct Inner {
    kind: ErrorKind,
    temporary: bool,
    persistent: bool,
    operation: &'static str,
    store: String,
    key: Option<String>,
    message: String,
    hint: Option<String>,
    source: Option<Source>,
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A new error of `kind` with a message; temporary iff the kind usually is.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error(Box::new(Inner {
            kind,
            temporary: matches!(
                kind,
                ErrorKind::RateLimited
                    | ErrorKind::Unavailable
                    | ErrorKind::Network
                    | ErrorKind::Timeout
            ),
            persistent: false,
            operation: "",
            store: String::new(),
            key: None,
            message: message.into(),
            hint: None,
            source: None,
        }))
    }

    /// Shorthand for an [`ErrorKind::InvalidInput`] error.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidInput, message)
    }

    /// The error a [`crate::ListEntry::Unlisted`] entry becomes where a caller wants objects
    /// only (e.g. [`crate::StoreExt::list_objects`]): kind [`ErrorKind::Unrepresentable`],
    /// keyed by the raw name.
    pub fn unlisted(name: &str, reason: &str) -> Self {
        Self::new(ErrorKind::Unrepresentable, reason)
            .with_operation("list")
            .with_key(name)
    }

    /// Shorthand for an [`ErrorKind::Unsupported`] error.
    pub fn unsupported(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unsupported, message)
    }

    /// Sets the operation (`put`, `get`, `list`, ...) if none is set yet.
    pub fn with_operation(mut self, operation: &'static str) -> Self {
        if self.0.operation.is_empty() {
            self.0.operation = operation;
        }
        self
    }

    /// Sets the store's display name (never holds secrets) if none is set yet.
    pub fn with_store(mut self, store: impl fmt::Display) -> Self {
        if self.0.store.is_empty() {
            self.0.store = store.to_string();
        }
        self
    }

    /// Sets the key if none is set yet.
    pub fn with_key(mut self, key: impl Into<String>) -> Self {
        // An empty key (a listing of the store's root) names nothing: a caller may name it.
        if self.0.key.as_deref().is_none_or(str::is_empty) {
            self.0.key = Some(key.into());
        }
        self
    }

    /// Replaces the store's display name (a wrapper presenting its own view of the keys).
    pub fn set_store(mut self, store: impl fmt::Display) -> Self {
        self.0.store = store.to_string();
        self
    }

    /// Rewrites the key, e.g. to strip a store's internal prefix.
    pub fn map_key(mut self, f: impl FnOnce(String) -> String) -> Self {
        self.0.key = self.0.key.map(f);
        self
    }

    /// Sets what the user can do about it.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.0.hint = Some(hint.into());
        self
    }

    /// Attaches the underlying cause.
    pub fn with_source(mut self, source: impl Into<Source>) -> Self {
        self.0.source = Some(source.into());
        self
    }

    /// Overrides whether retrying may help.
    pub fn set_temporary(mut self, temporary: bool) -> Self {
        self.0.temporary = temporary;
        self.0.persistent &= !temporary;
        self
    }

    /// Marks a temporary error whose retry budget is spent (OpenDAL's Temporary ->
    /// Persistent): it is no longer temporary, so no outer loop retries it again.
    pub fn set_persistent(mut self) -> Self {
        if self.0.temporary || self.0.persistent {
            self.0.temporary = false;
            self.0.persistent = true;
        }
        self
    }

    /// What went wrong.
    pub fn kind(&self) -> ErrorKind {
        self.0.kind
    }

    /// Whether retrying the same request may succeed.
    pub fn is_temporary(&self) -> bool {
        self.0.temporary
    }

    /// Whether this was a temporary fault that was already retried until the retry budget
    /// ran out (never also [`Error::is_temporary`]).
    pub fn is_persistent(&self) -> bool {
        self.0.persistent
    }

    /// The operation that failed (`put`, `get`, ...), or "" if unknown.
    pub fn operation(&self) -> &'static str {
        self.0.operation
    }

    /// The key involved, if any.
    pub fn key(&self) -> Option<&str> {
        self.0.key.as_deref()
    }

    /// The store's display name, if set.
    pub fn store(&self) -> &str {
        &self.0.store
    }

    /// The message without context.
    pub fn message(&self) -> &str {
        &self.0.message
    }

    /// The hint, explicit or the kind's default.
    pub fn hint(&self) -> Option<&str> {
        self.0.hint.as_deref().or(self.0.kind.default_hint())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.0.operation.is_empty() {
            write!(f, "{} ", self.0.operation)?;
        }
        match (&self.0.store.is_empty(), &self.0.key) {
            (false, Some(k)) if self.0.store.ends_with('/') => {
                write!(f, "{}{}: ", self.0.store, k)?
            }
            (false, Some(k)) => write!(f, "{}/{}: ", self.0.store, k)?,
            (false, None) => write!(f, "{}: ", self.0.store)?,
            (true, Some(k)) => write!(f, "{k}: ")?,
            (true, None) => {}
        }
        write!(f, "{}", self.0.kind)?;
        if !self.0.message.is_empty() {
            write!(f, ": {}", self.0.message)?;
        }
        if self.0.persistent {
            f.write_str(" (retries exhausted)")?;
        }
        if let Some(h) = self.hint() {
            write!(f, " (hint: {h})")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Debug mirrors Display plus the cause chain: nothing here can hold a secret.
        write!(f, "{self}")?;
        let mut src = std::error::Error::source(self);
        while let Some(s) = src {
            write!(f, "\n  caused by: {s}")?;
            src = s.source();
        }
        Ok(())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source.as_ref().map(|s| s.as_ref() as _)
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        use std::io::ErrorKind as Io;
        let kind = match e.kind() {
            Io::NotFound => ErrorKind::NotFound,
            Io::AlreadyExists => ErrorKind::AlreadyExists,
            Io::PermissionDenied => ErrorKind::PermissionDenied,
            Io::InvalidInput | Io::InvalidData => ErrorKind::InvalidInput,
            Io::TimedOut => ErrorKind::Timeout,
            Io::ConnectionRefused
            | Io::ConnectionReset
            | Io::ConnectionAborted
            | Io::BrokenPipe
            | Io::UnexpectedEof => ErrorKind::Network,
            _ => ErrorKind::Unexpected,
        };
        Error::new(kind, "").with_source(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spent_retry_budget_makes_a_temporary_error_persistent() {
        let e = Error::new(ErrorKind::RateLimited, "HTTP 503");
        assert!(e.is_temporary() && !e.is_persistent());
        let e = e.set_persistent();
        assert!(!e.is_temporary() && e.is_persistent());
        assert!(e.to_string().contains("retries exhausted"), "{e}");
        // A permanent error stays permanent: there was nothing to retry.
        let e = Error::new(ErrorKind::NotFound, "").set_persistent();
        assert!(!e.is_temporary() && !e.is_persistent());
    }

    #[test]
    fn unavailability_is_temporary_and_hints_at_the_cluster_not_the_concurrency() {
        let e = Error::new(ErrorKind::Unavailable, "ServiceUnavailable");
        assert!(e.is_temporary());
        assert_eq!(e.kind().as_str(), "unavailable");
        let hint = e.hint().unwrap();
        assert!(hint.contains("quorum") && hint.contains("health"), "{hint}");
        assert!(!hint.contains("concurrency"), "{hint}");
        assert!(e.to_string().starts_with("service unavailable"), "{e}");
    }
}
