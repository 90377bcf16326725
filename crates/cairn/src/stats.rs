//! Storage statistics (`cairn stats`, `store.stats()`): object count and stored bytes, in
//! total, by storage class, and by the first levels of the key. One pass over a streamed
//! listing; memory grows with the number of groups, never with the number of objects.

use crate::error::Result;
use crate::store::{ListEntry, ListOptions, Store};
use futures::TryStreamExt;
use serde::Serialize;
use std::collections::BTreeMap;

/// A count of objects and their stored bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    /// Objects.
    pub objects: u64,
    /// Bytes as stored (after compression and encryption): what the provider bills.
    pub bytes: u64,
}

impl Totals {
    fn add(&mut self, size: u64) {
        self.objects += 1;
        self.bytes += size;
    }
}

/// What [`stats`] reports.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct StorageStats {
    /// Everything under the prefix.
    pub total: Totals,
    /// By storage class (`STANDARD`, `STANDARD_IA`, `GLACIER`, ...). Empty for stores without
    /// storage classes (local disk, memory).
    pub by_class: BTreeMap<String, Totals>,
    /// By the first `depth` levels of the key below the prefix (`2025/`, `2025/03/`); objects
    /// with fewer levels count under their own key's directory, or `""` at the top.
    pub by_prefix: BTreeMap<String, Totals>,
    /// Entries the listing could not express as keys (each one also an error to the caller
    /// that lists; counted here so totals never hide them).
    pub unlisted: u64,
}

impl StorageStats {
    /// Counts one object at `rel` (its key below the prefix).
    pub fn add(&mut self, rel: &str, size: u64, class: Option<&str>, depth: usize) {
        self.total.add(size);
        if let Some(c) = class {
            self.by_class.entry(c.to_string()).or_default().add(size);
        }
        if depth > 0 {
            self.by_prefix
                .entry(group(rel, depth).to_string())
                .or_default()
                .add(size);
        }
    }
}

/// The first `depth` directory levels of `rel`, with their trailing `/`.
fn group(rel: &str, depth: usize) -> &str {
    let mut end = 0;
    for (n, (i, _)) in rel.match_indices('/').enumerate() {
        if n == depth {
            break;
        }
        end = i + 1;
    }
    &rel[..end]
}

/// Stats for any store, over its listing (stored sizes; no storage classes). Each object
/// counted is reported through `on_discovered(1, size)`.
pub async fn over_listing<S: Store + ?Sized>(
    store: &S,
    prefix: &str,
    depth: usize,
    reporter: &dyn crate::ops::Reporter,
) -> Result<StorageStats> {
    let mut stats = StorageStats::default();
    let mut list = store.list(ListOptions::recursive(prefix));
    while let Some(entry) = list.try_next().await? {
        match entry {
            ListEntry::Object(m) => {
                let rel = m
                    .key
                    .as_str()
                    .strip_prefix(prefix)
                    .unwrap_or(m.key.as_str());
                stats.add(rel, m.stored_size, None, depth);
                reporter.on_discovered(1, m.stored_size);
            }
            ListEntry::Prefix(_) => {}
            ListEntry::Unlisted { .. } => stats.unlisted += 1,
        }
    }
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_by_the_first_levels() {
        assert_eq!(group("2025/03/x.json", 1), "2025/");
        assert_eq!(group("2025/03/x.json", 2), "2025/03/");
        assert_eq!(group("2025/03/x.json", 3), "2025/03/");
        assert_eq!(group("top.json", 2), "");
        let mut s = StorageStats::default();
        s.add("2025/03/a", 10, Some("STANDARD"), 2);
        s.add("2025/03/b", 5, Some("GLACIER"), 2);
        s.add("2025/04/c", 1, Some("STANDARD"), 2);
        assert_eq!(
            s.total,
            Totals {
                objects: 3,
                bytes: 16
            }
        );
        assert_eq!(
            s.by_class["STANDARD"],
            Totals {
                objects: 2,
                bytes: 11
            }
        );
        assert_eq!(
            s.by_prefix["2025/03/"],
            Totals {
                objects: 2,
                bytes: 15
            }
        );
        assert_eq!(s.by_prefix.len(), 2);
    }
}
