//! Listing: a directory walk in S3 key order.

use super::super::memory::fold_listing;
use super::beneath::{self, Entry};
use super::{LocalStore, RESERVED_DIR};
use crate::error::{Error, Result};
use crate::key::Key;
use crate::store::*;
use std::os::fd::OwnedFd;

/// Walks `dir` (a directory under root, for key prefix `dir_key`) in S3 key order, sending
/// entries. Directories are opened from their parent without following links (`beneath`), so
/// one swapped for a link mid-walk is skipped, never listed through.
pub(super) fn walk(
    store: &LocalStore,
    dir: &OwnedFd,
    dir_key: &str,
    opts: &ListOptions,
    tx: &tokio::sync::mpsc::Sender<Result<ListEntry>>,
) -> bool {
    let read = match beneath::read_dir(dir) {
        Ok(read) => read,
        Err(e) => {
            return tx
                .blocking_send(Err(Error::from(e).with_operation("list")))
                .is_ok()
        }
    };
    // Sort with directories as `name/` so the walk yields keys in byte order, as S3 does.
    let mut entries: Vec<(String, bool)> = read
        .into_iter()
        .filter_map(|e| match e {
            Entry::Dir(name) if dir_key.is_empty() && name == RESERVED_DIR => None,
            Entry::Dir(name) => Some((format!("{name}/"), true)),
            Entry::File(name) => Some((name, false)),
            Entry::Other => None,
        })
        .collect();
    entries.sort();
    for (name, is_dir) in entries {
        let key = format!("{dir_key}{name}");
        // Skip entries that cannot match the prefix, or are wholly before start_after.
        let relevant = if key.len() >= opts.prefix.len() {
            key.starts_with(&opts.prefix)
        } else {
            is_dir && opts.prefix.starts_with(&key)
        };
        if !relevant {
            continue;
        }
        if is_dir {
            if let Some(after) = &opts.start_after {
                if after.as_str() >= key.as_str() && !after.starts_with(&key) {
                    continue;
                }
            }
            if opts.delimiter && key.len() > opts.prefix.len() {
                let p = key.clone();
                if opts
                    .start_after
                    .as_ref()
                    .is_some_and(|a| a.as_str() >= p.as_str())
                {
                    continue;
                }
                if tx.blocking_send(Ok(ListEntry::Prefix(p))).is_err() {
                    return false;
                }
                continue;
            }
            let sub = match beneath::open_sub(dir, &name[..name.len() - 1]) {
                Ok(sub) => sub,
                // Gone since the read, or swapped for a link: not listed.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound || beneath::is_link(&e) => {
                    continue
                }
                Err(e) => {
                    if tx
                        .blocking_send(Err(Error::from(e).with_operation("list")))
                        .is_err()
                    {
                        return false;
                    }
                    continue;
                }
            };
            if !walk(store, &sub, &key, opts, tx) {
                return false;
            }
            continue;
        }
        let Ok(k) = Key::new(key) else { continue };
        // A file swapped for a link since the read is skipped like any link.
        let Some(m) = beneath::meta_at(dir, &name).ok().filter(|m| m.is_file()) else {
            continue;
        };
        let entries = fold_listing([store.object_meta(&k, &m, false)], opts);
        for e in entries {
            if tx.blocking_send(Ok(e)).is_err() {
                return false;
            }
        }
    }
    true
}
