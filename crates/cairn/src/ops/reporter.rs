//! Progress and results of bulk operations, reported through a trait (uv's `DownloadReporter`
//! shape): the library never prints; the CLI draws bars, Python forwards to callbacks.

use crate::error::{Error, ErrorKind};
use crate::key::Key;
use serde::{Serialize, Serializer};
use std::sync::Mutex;

/// What an operation does with one item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Copy the object to the destination (upload, download or store to store).
    Transfer,
    /// Delete the object from the destination.
    Delete,
    /// Leave it alone.
    Skip,
}

/// One item of a bulk operation, as reported when it starts and ends.
#[derive(Debug, Clone, Copy)]
pub struct Item<'a> {
    /// The key, relative to the operation's root (the same on both sides of a sync).
    pub key: &'a Key,
    /// What is done with it.
    pub action: Action,
    /// Its size in bytes, if known.
    pub size: Option<u64>,
}

/// How one item ended.
#[derive(Debug, Clone, Copy)]
pub enum Outcome<'a> {
    /// Copied this many bytes, checked against the SHA-256 recorded for them (or with no
    /// check asked for: [`TransferOptions::verify`](crate::transfer::TransferOptions::verify)
    /// off, or a source that is the user's own files).
    Transferred {
        /// Bytes copied.
        bytes: u64,
    },
    /// Copied this many bytes, but the source object has no recorded SHA-256 (written by
    /// another tool: aws cli, boto3, s5cmd, or with the checksum layer off), so its bytes were
    /// not checked. Counted as transferred, and as unverified: nothing silent, the CLI names
    /// it and exits 2. See [`TransferOptions::unverified`](crate::transfer::TransferOptions::unverified).
    Unverified {
        /// Bytes copied.
        bytes: u64,
    },
    /// Deleted from the destination.
    Deleted,
    /// Left alone, and why (e.g. "unchanged: same size, destination not older").
    Skipped {
        /// Why nothing was done.
        reason: &'a str,
    },
    /// Dry run: the action would have been taken.
    Planned,
    /// Failed; the rest of the operation goes on.
    Failed(&'a Error),
}

/// What is known about the whole operation when it starts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    /// Number of objects, if known upfront.
    pub objects: Option<u64>,
    /// Number of bytes, if known upfront.
    pub bytes: Option<u64>,
}

/// Receives progress from transfers, sync and bench. Every method has an empty default.
///
/// Methods are called from the operation's task, possibly from several items concurrently;
/// they should be quick (update a bar, push to a queue).
pub trait Reporter: Send + Sync {
    /// The operation started. Streaming operations (sync, tree copies) pass unknown totals
    /// and announce items through [`Reporter::on_discovered`] as listings arrive.
    fn on_start(&self, _totals: Totals) {}
    /// More work was found: `objects` items of `bytes` bytes to transfer.
    fn on_discovered(&self, _objects: u64, _bytes: u64) {}
    /// An item started.
    fn on_item_start(&self, _item: &Item<'_>) {}
    /// `bytes` more bytes of `key` were transferred (a delta, not a total).
    fn on_progress(&self, _key: &Key, _bytes: u64) {}
    /// An item ended.
    fn on_item_done(&self, _item: &Item<'_>, _outcome: &Outcome<'_>) {}
    /// The operation ended.
    fn on_finish(&self, _summary: &Summary) {}
}

/// A reporter that ignores everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoReporter;

impl Reporter for NoReporter {}

/// At most this many failures (and as many unverified keys) are kept in a [`Summary`];
/// `failed` and `unverified` still count all.
pub const MAX_FAILURES_LISTED: usize = 10_000;

/// One failed item.
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    /// The item's key ("" for a listing that failed).
    pub key: String,
    /// What was being done.
    pub action: Action,
    /// What went wrong.
    #[serde(serialize_with = "kind_str")]
    pub kind: ErrorKind,
    /// The full error message, with its hint.
    pub message: String,
}

fn kind_str<S: Serializer>(k: &ErrorKind, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(k.as_str())
}

/// The result of a bulk operation: counts, bytes and the failures with their reasons.
///
/// Counts are bounded memory: individual transferred/skipped items go to the [`Reporter`],
/// not here. In a dry run the counts are what would have been done.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    /// Nothing was changed; counts are planned actions.
    pub dry_run: bool,
    /// Objects copied.
    pub transferred: u64,
    /// Bytes copied.
    pub transferred_bytes: u64,
    /// Objects left alone because the destination was up to date.
    pub skipped: u64,
    /// Objects deleted from the destination.
    pub deleted: u64,
    /// Items that failed (all of them, even past [`MAX_FAILURES_LISTED`]).
    pub failed: u64,
    /// Of the failed, objects the listing found under names cairn cannot represent
    /// ([`ErrorKind::Unrepresentable`], from [`crate::ListEntry::Unlisted`]): never touched,
    /// each named in `failures`.
    pub unlisted: u64,
    /// The failures, with reasons, up to [`MAX_FAILURES_LISTED`].
    pub failures: Vec<Failure>,
    /// Of the transferred, objects with no recorded SHA-256 whose bytes were therefore not
    /// checked ([`Outcome::Unverified`]: written by another tool).
    pub unverified: u64,
    /// Their keys, up to [`MAX_FAILURES_LISTED`].
    pub unverified_keys: Vec<String>,
    /// Wall time in seconds.
    pub elapsed_secs: f64,
}

impl Summary {
    /// Whether every item succeeded and every transferred object was checked (the CLI exits
    /// 2 otherwise): a failure or an [`Outcome::Unverified`] item makes it false.
    pub fn is_success(&self) -> bool {
        self.failed == 0 && self.unverified == 0
    }

    /// Counts one finished item.
    pub fn record(&mut self, item: &Item<'_>, outcome: &Outcome<'_>) {
        match outcome {
            Outcome::Transferred { bytes } => {
                self.transferred += 1;
                self.transferred_bytes += bytes;
            }
            Outcome::Unverified { bytes } => {
                self.transferred += 1;
                self.transferred_bytes += bytes;
                self.unverified += 1;
                if self.unverified_keys.len() < MAX_FAILURES_LISTED {
                    self.unverified_keys.push(item.key.to_string());
                }
            }
            Outcome::Deleted => self.deleted += 1,
            Outcome::Skipped { .. } => self.skipped += 1,
            Outcome::Planned => match item.action {
                Action::Transfer => {
                    self.transferred += 1;
                    self.transferred_bytes += item.size.unwrap_or(0);
                }
                Action::Delete => self.deleted += 1,
                Action::Skip => self.skipped += 1,
            },
            Outcome::Failed(e) => self.record_failure(item.key.as_str(), item.action, e),
        }
    }

    /// Counts a failure that has no item (a listing that broke off, or an unlisted object:
    /// then `key` may be "" and the error's own key names it).
    pub fn record_failure(&mut self, key: &str, action: Action, e: &Error) {
        self.failed += 1;
        if e.kind() == ErrorKind::Unrepresentable {
            self.unlisted += 1;
        }
        let key = match (key, e.key()) {
            ("", Some(k)) => k,
            _ => key,
        };
        if self.failures.len() < MAX_FAILURES_LISTED {
            self.failures.push(Failure {
                key: key.to_string(),
                action,
                kind: e.kind(),
                message: e.to_string(),
            });
        }
    }
}

/// One reported event, as kept by [`Recorder`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// `on_start`.
    Start(Totals),
    /// `on_discovered(objects, bytes)`.
    Discovered(u64, u64),
    /// `on_item_start(key, action)`.
    ItemStart(String, Action),
    /// `on_progress(key, bytes)`.
    Progress(String, u64),
    /// `on_item_done(key, action, outcome)`; the outcome as text, e.g. `transferred 10`,
    /// `unverified 10`, `skipped: <reason>`, `failed not_found`.
    ItemDone(String, Action, String),
    /// `on_finish`.
    Finish,
}

/// A reporter that keeps every event, for tests and for callers that want a log.
#[derive(Debug, Default)]
pub struct Recorder {
    events: Mutex<Vec<Event>>,
}

impl Recorder {
    /// An empty recorder.
    pub fn new() -> Self {
        Self::default()
    }
    /// The events so far.
    pub fn events(&self) -> Vec<Event> {
        self.events.lock().unwrap().clone()
    }
    /// The `ItemDone` events as (key, action, outcome) tuples.
    pub fn done(&self) -> Vec<(String, Action, String)> {
        self.events()
            .into_iter()
            .filter_map(|e| match e {
                Event::ItemDone(k, a, o) => Some((k, a, o)),
                _ => None,
            })
            .collect()
    }
    /// Total bytes reported through `on_progress`.
    pub fn progress_bytes(&self) -> u64 {
        self.events()
            .iter()
            .map(|e| if let Event::Progress(_, b) = e { *b } else { 0 })
            .sum()
    }
    fn push(&self, e: Event) {
        self.events.lock().unwrap().push(e);
    }
}

impl Reporter for Recorder {
    fn on_start(&self, totals: Totals) {
        self.push(Event::Start(totals));
    }
    fn on_discovered(&self, objects: u64, bytes: u64) {
        self.push(Event::Discovered(objects, bytes));
    }
    fn on_item_start(&self, item: &Item<'_>) {
        self.push(Event::ItemStart(item.key.to_string(), item.action));
    }
    fn on_progress(&self, key: &Key, bytes: u64) {
        self.push(Event::Progress(key.to_string(), bytes));
    }
    fn on_item_done(&self, item: &Item<'_>, outcome: &Outcome<'_>) {
        let o = match outcome {
            Outcome::Transferred { bytes } => format!("transferred {bytes}"),
            Outcome::Unverified { bytes } => format!("unverified {bytes}"),
            Outcome::Deleted => "deleted".to_string(),
            Outcome::Skipped { reason } => format!("skipped: {reason}"),
            Outcome::Planned => "planned".to_string(),
            Outcome::Failed(e) => format!("failed {}", e.kind().as_str()),
        };
        self.push(Event::ItemDone(item.key.to_string(), item.action, o));
    }
    fn on_finish(&self, _summary: &Summary) {
        self.push(Event::Finish);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unlisted_object_is_a_named_counted_failure() {
        let mut s = Summary::default();
        s.record_failure(
            "",
            Action::Transfer,
            &Error::unlisted("a//b", "empty segment"),
        );
        s.record_failure(
            "",
            Action::Transfer,
            &Error::new(ErrorKind::Network, "reset"),
        );
        assert_eq!((s.failed, s.unlisted), (2, 1));
        assert!(!s.is_success());
        assert_eq!(s.failures[0].key, "a//b", "named by the error's key");
        assert_eq!(s.failures[0].kind, ErrorKind::Unrepresentable);
        assert_eq!(s.failures[1].key, "", "a listing that broke off has none");
    }

    #[test]
    fn an_unverified_object_is_transferred_named_and_not_a_success() {
        let mut s = Summary::default();
        let (a, b) = (Key::new("a").unwrap(), Key::new("b").unwrap());
        let item = |key| Item {
            key,
            action: Action::Transfer,
            size: Some(3),
        };
        s.record(&item(&a), &Outcome::Transferred { bytes: 3 });
        assert!(s.is_success());
        s.record(&item(&b), &Outcome::Unverified { bytes: 4 });
        assert_eq!((s.transferred, s.transferred_bytes), (2, 7));
        assert_eq!((s.unverified, s.failed), (1, 0));
        assert_eq!(s.unverified_keys, vec!["b".to_string()]);
        assert!(!s.is_success(), "unverified is not silent");
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["unverified"], 1);
        assert_eq!(json["unverified_keys"][0], "b");
    }
}
