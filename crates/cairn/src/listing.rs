//! Listings of a whole tree, several prefixes at once.
//!
//! A plain recursive listing is one page after another: on S3, 1,000 keys per round trip, and
//! on a server that reads each object's metadata to list it, hundreds of milliseconds per page.
//! A tree transfer or a sync would wait on that serial walk. [`list_sorted`] lists the
//! top-level prefixes in parallel and still yields one stream in key order, as sync's merge
//! walk needs.

use crate::error::Result;
use crate::store::{ListEntry, ListOptions, ObjectMeta, Store, StoreExt};
use futures::stream::{self, BoxStream, StreamExt};

/// Top-level prefixes whose first page is fetched ahead, in parallel, from a remote store.
const LIST_AHEAD: usize = 16;
/// The same for a store on this machine. Its listings wait on no server, and each walks on a
/// blocking thread of its own: more would not list faster, and every such thread keeps a
/// cache of freed memory (glibc's tcache) that a long sync fills, so a sync's peak RSS grew
/// with the tree (docs/benchmarks.md, "A million objects").
const LOCAL_AHEAD: usize = 4;
/// Entries buffered per prefetched prefix (one S3 page).
const LIST_PAGE: usize = 1000;

/// Every object under `prefix`, recursively and in byte order, listing several top-level
/// prefixes at once: a one-level listing gives objects and prefixes in order, and all keys
/// below `p/` sort between `p/` and the next entry, so concatenating each prefix's recursive
/// listing in order keeps the whole stream sorted. Up to [`LIST_AHEAD`] prefixes
/// ([`LOCAL_AHEAD`] on this machine) fetch their first page concurrently (bounded memory); a
/// longer prefix continues page by page.
pub fn list_sorted<'a>(store: &'a dyn Store, prefix: &str) -> BoxStream<'a, Result<ObjectMeta>> {
    let ahead = if store.capabilities().local {
        LOCAL_AHEAD
    } else {
        LIST_AHEAD
    };
    store
        .list(ListOptions::shallow(prefix))
        .map(move |entry| async move {
            match entry {
                Err(e) => stream::iter(vec![Err(e)]).boxed(),
                Ok(ListEntry::Object(m)) => stream::iter(vec![Ok(m)]).boxed(),
                Ok(ListEntry::Unlisted { name, reason }) => {
                    stream::iter(vec![Err(crate::Error::unlisted(&name, &reason))]).boxed()
                }
                Ok(ListEntry::Prefix(p)) => {
                    // Fused: some listings must not be polled again after they end.
                    let mut rest = store.list_objects(&p).fuse();
                    let mut head = Vec::new();
                    while head.len() < LIST_PAGE {
                        match rest.next().await {
                            Some(item) => {
                                let stop = item.is_err();
                                head.push(item);
                                if stop {
                                    break;
                                }
                            }
                            None => break,
                        }
                    }
                    stream::iter(head).chain(rest).boxed()
                }
            }
        })
        .buffered(ahead)
        .flatten()
        .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::Key;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn list_sorted_matches_the_plain_listing() {
        use crate::backend::memory::MemoryStore;
        use futures::TryStreamExt;
        let store = MemoryStore::new();
        let mut keys = vec![
            "a", "a-b", "a.txt", "a/x", "a/y/z", "a0", "b/1", "b/2/3", "ü/x", "z",
        ];
        // A prefix longer than one prefetched page, and many small prefixes.
        let long: Vec<String> = (0..(LIST_PAGE + 5)).map(|i| format!("c/{i:05}")).collect();
        let many: Vec<String> = (0..40).map(|i| format!("d{i:02}/f")).collect();
        keys.extend(long.iter().map(String::as_str));
        keys.extend(many.iter().map(String::as_str));
        for key in &keys {
            store
                .put(&Key::new(*key).unwrap(), bytes::Bytes::new())
                .await
                .unwrap();
        }
        let plain: Vec<String> = store
            .list_objects("")
            .map_ok(|m| m.key.into_string())
            .try_collect()
            .await
            .unwrap();
        let fanned: Vec<String> = list_sorted(&store, "")
            .map_ok(|m| m.key.into_string())
            .try_collect()
            .await
            .unwrap();
        assert_eq!(fanned.len(), keys.len());
        assert!(
            fanned == plain,
            "fan-out listing differs from the plain one"
        );
    }
}
