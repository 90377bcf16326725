//! Listing: a directory walk in S3 key order.

use super::super::memory::fold_listing;
use super::{LocalStore, RESERVED_DIR};
use crate::error::{Error, Result};
use crate::key::Key;
use crate::store::*;
use std::fs;
use std::path::Path;

/// Walks `dir` (a path under root for key prefix `dir_key`) in S3 key order, sending entries.
pub(super) fn walk(
    store: &LocalStore,
    dir: &Path,
    dir_key: &str,
    opts: &ListOptions,
    tx: &tokio::sync::mpsc::Sender<Result<ListEntry>>,
) -> bool {
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return true,
        Err(e) => {
            return tx
                .blocking_send(Err(Error::from(e).with_operation("list")))
                .is_ok()
        }
    };
    // Sort with directories as `name/` so the walk yields keys in byte order, as S3 does.
    let mut entries: Vec<(String, bool)> = rd
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let ft = e.file_type().ok()?;
            if ft.is_symlink() || (dir_key.is_empty() && name == RESERVED_DIR) {
                return None;
            }
            Some(if ft.is_dir() {
                (format!("{name}/"), true)
            } else {
                (name, false)
            })
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
            if !walk(store, &dir.join(&name[..name.len() - 1]), &key, opts, tx) {
                return false;
            }
            continue;
        }
        let Ok(k) = Key::new(key) else { continue };
        let Ok(m) = fs::metadata(dir.join(&name)) else {
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
