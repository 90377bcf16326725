//! What the bulk commands share: the CLI's per-item reporter trait and summary (used by `rm`
//! and, through an adapter, by `cp` on cairn's transfer engine), fatal-error triage, and local
//! path helpers. The bytes themselves move in `cairn::transfer`.

use cairn::{Error, ErrorKind};
use std::path::Path;

/// An io error on a local path, with the path as its key.
pub fn fs_err(e: std::io::Error, op: &'static str, path: &Path) -> Error {
    Error::from(e)
        .with_operation(op)
        .with_key(path.display().to_string())
}

/// A content type from a file name, for the common kinds (as the aws cli guesses).
pub fn guess_content_type(path: &Path) -> Option<&'static str> {
    let ext = path.extension()?.to_str()?.to_ascii_lowercase();
    Some(match ext.as_str() {
        "txt" | "log" => "text/plain",
        "md" => "text/markdown",
        "html" | "htm" => "text/html",
        "css" => "text/css",
        "csv" => "text/csv",
        "js" | "mjs" => "text/javascript",
        "json" => "application/json",
        "xml" => "application/xml",
        "pdf" => "application/pdf",
        "zip" => "application/zip",
        "gz" | "tgz" => "application/gzip",
        "zst" => "application/zstd",
        "tar" => "application/x-tar",
        "wasm" => "application/wasm",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "svg" => "image/svg+xml",
        "mp4" => "video/mp4",
        "mp3" => "audio/mpeg",
        _ => return None,
    })
}

/// Hears about a tree copy or delete as it goes.
pub trait Reporter: Sync {
    /// Bytes moved (called often).
    fn bytes(&self, _n: u64) {}
    /// An item finished.
    fn done(&self, _rel: &str, _size: u64) {}
    /// An item failed or was skipped; the operation goes on.
    fn failed(&self, _rel: &str, _error: &Error) {}
    /// An item was copied, but it had no recorded SHA-256, so its bytes were not checked.
    fn unverified(&self, rel: &str, size: u64) {
        self.done(rel, size)
    }
}

/// What a bulk operation did.
#[derive(Debug, Default, Clone, Copy)]
pub struct Summary {
    /// Items done.
    pub done: u64,
    /// Bytes moved.
    pub bytes: u64,
    /// Items failed or skipped.
    pub failed: u64,
    /// Of the failed, objects under names cairn cannot represent (listed, never touched).
    pub unlisted: u64,
    /// Of the done, objects with no recorded SHA-256: copied, but their bytes not checked.
    pub unverified: u64,
}

impl Summary {
    /// Items attempted.
    pub fn total(&self) -> u64 {
        self.done + self.failed
    }
}

/// Whether `e` dooms every other item too, so the operation should stop rather than fail each.
pub fn is_fatal(e: &Error, nothing_done_yet: bool) -> bool {
    match e.kind() {
        ErrorKind::BucketNotFound | ErrorKind::Unauthenticated => true,
        ErrorKind::Network | ErrorKind::Timeout => nothing_done_yet,
        _ => false,
    }
}
