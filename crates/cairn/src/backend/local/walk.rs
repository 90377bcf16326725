//! Listing: a directory walk in S3 key order.

use super::beneath::{self, Entry, Kind};
use super::{LocalStore, RESERVED_DIR};
use crate::error::{Error, Result};
use crate::key::Key;
use crate::store::*;
use std::os::fd::OwnedFd;

fn unlisted(name: String, reason: &str) -> ListEntry {
    ListEntry::Unlisted {
        name,
        reason: reason.to_string(),
    }
}

/// Walks `dir` (a directory under root, for key prefix `dir_key`) in S3 key order, sending
/// entries. Directories are opened from their parent without following links (`beneath`), so
/// one swapped for a link mid-walk is reported, never listed through. Whatever cannot be an
/// object (a link, a socket, a name that is not a key) is a [`ListEntry::Unlisted`] entry,
/// never left out.
pub(super) fn walk(
    store: &LocalStore,
    dir: &OwnedFd,
    dir_key: &str,
    opts: &ListOptions,
    tx: &tokio::sync::mpsc::Sender<Result<ListEntry>>,
) -> bool {
    let mut entries = match beneath::read_dir(dir) {
        Ok(read) => read,
        Err(e) => {
            return tx
                .blocking_send(Err(Error::from(e).with_operation("list")))
                .is_ok()
        }
    };
    if dir_key.is_empty() {
        entries.retain(|e| e.name.strip_suffix('/') != Some(RESERVED_DIR));
    }
    // Directories' names end in `/`, so this is S3's key order.
    entries.sort_unstable_by(|a, b| a.name.cmp(&b.name));
    for Entry { name, kind } in entries {
        let key = format!("{dir_key}{name}");
        let is_dir = matches!(kind, Kind::Dir);
        // Skip entries that cannot match the prefix, or are wholly before start_after.
        let relevant = if key.len() >= opts.prefix.len() {
            key.starts_with(&opts.prefix)
        } else {
            is_dir && opts.prefix.starts_with(&key)
        };
        if !relevant {
            continue;
        }
        let after = opts.start_after.as_deref();
        let passed = after.is_some_and(|a| a >= key.as_str());
        // A directory that start_after lies inside is still walked.
        let inside = is_dir && after.is_some_and(|a| a.starts_with(&key));
        if passed && !inside {
            continue;
        }
        let out = match kind {
            Kind::Dir if opts.delimiter && key.len() > opts.prefix.len() => {
                if passed {
                    continue;
                }
                Ok(ListEntry::Prefix(key))
            }
            Kind::Dir => match beneath::open_sub(dir, &name[..name.len() - 1]) {
                Ok(sub) => {
                    if !walk(store, &sub, &key, opts, tx) {
                        return false;
                    }
                    continue;
                }
                // Gone since the read.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                // Swapped for a link since the read: reported like any link (by its name).
                Err(e) if beneath::is_link(&e) => {
                    let name = key[..key.len() - 1].to_string();
                    Ok(unlisted(name, beneath::LINK_ENTRY))
                }
                Err(e) => Err(Error::from(e).with_operation("list")),
            },
            Kind::NotObject(why) => Ok(unlisted(key, why)),
            Kind::File => match crate::key::why_invalid(&key) {
                Some(why) => Ok(unlisted(key, &why)),
                None => match beneath::meta_at(dir, &name) {
                    Ok(m) if m.is_file() => {
                        let k = Key::unchecked(key);
                        Ok(ListEntry::Object(store.object_meta(&k, &m, false)))
                    }
                    // Swapped for a link since the read: reported like any link.
                    Ok(m) if m.is_symlink() => Ok(unlisted(key, beneath::LINK_ENTRY)),
                    Err(e) if beneath::is_link(&e) => Ok(unlisted(key, beneath::LINK_ENTRY)),
                    // Gone, or replaced by a directory, since the read.
                    Ok(_) => continue,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => Err(Error::from(e).with_operation("list")),
                },
            },
        };
        if tx.blocking_send(out).is_err() {
            return false;
        }
    }
    true
}
