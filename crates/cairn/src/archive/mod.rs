//! An archive of named documents over any store: snapshots, reports, analysis results.
//!
//! Each save writes one object under a key template, by default
//! `{prefix}/{name}/{yyyy}/{mm}/{timestamp}-{kind}.{ext}`, with its name, kind and time in the
//! object's metadata too. Timestamps are UTC and sort lexically, so listings need no index.
//! Use case 000's `benchmarks/{repo-id}/{timestamp}-{run-type}.json` is the template
//! `benchmarks/{name}/{timestamp}-{kind}.{ext}`.

mod template;

pub use template::Template;

use crate::error::{Error, ErrorKind, Result};
use crate::key::Key;
use crate::store::{DynStore, Metadata, ObjectMeta, PutMode, PutOptions, StoreExt};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::future;
use futures::stream::{self, StreamExt, TryStreamExt};
use std::time::Duration;

/// Metadata names the archive writes beside the user's own.
pub const META_NAME: &str = "archive-name";
/// The kind of document (`snapshot`, `report`, ...).
pub const META_KIND: &str = "archive-kind";
/// The save time, RFC 3339.
pub const META_TIME: &str = "archive-time";

/// The default key template.
pub const DEFAULT_TEMPLATE: &str = "{prefix}/{name}/{yyyy}/{mm}/{timestamp}-{kind}.{ext}";

/// One archived document.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Entry {
    /// Where it is stored.
    #[serde(serialize_with = "ser_key")]
    pub key: Key,
    /// The archive name (e.g. an agent id or a repository id).
    pub name: String,
    /// The kind of document.
    pub kind: String,
    /// When it was saved.
    pub timestamp: DateTime<Utc>,
    /// Size in bytes as listed.
    pub size: u64,
    /// User metadata (filled by [`Archive::metadata`] and metadata-filtered lists).
    pub metadata: Metadata,
}

fn ser_key<S: serde::Serializer>(k: &Key, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(k.as_str())
}

/// Which entries a list returns.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Only this name (None: every name).
    pub name: Option<String>,
    /// Only this kind.
    pub kind: Option<String>,
    /// Only entries saved at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Only entries saved before this time.
    pub until: Option<DateTime<Utc>>,
    /// Only entries whose metadata has all of these pairs (costs one head per entry).
    pub metadata: Metadata,
}

/// What [`Archive::prune`] removes.
#[derive(Debug, Clone, Default)]
pub struct Prune {
    /// Keep the newest N per name (and kind, if the filter names one).
    pub keep_last: Option<usize>,
    /// Drop entries older than this.
    pub older_than: Option<Duration>,
    /// Report what would be deleted without deleting.
    pub dry_run: bool,
}

/// A verify outcome for one entry.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verified {
    /// A recorded SHA-256 matched.
    Ok,
    /// The bytes did not match their checksum or failed authentication.
    Corrupt,
    /// No checksum was recorded (saved without the checksum layer).
    Unverifiable,
}

/// An archive over a store.
#[derive(Debug, Clone)]
pub struct Archive {
    store: DynStore,
    prefix: String,
    template: Template,
}

impl Archive {
    /// An archive at the store's root with the default template.
    pub fn new(store: DynStore) -> Self {
        Archive {
            store,
            prefix: String::new(),
            template: Template::parse(DEFAULT_TEMPLATE).expect("default template is valid"),
        }
    }

    /// Places every key under `prefix` (the template's `{prefix}`).
    pub fn with_prefix(mut self, prefix: &str) -> Result<Self> {
        let p = prefix.trim_matches('/');
        if !p.is_empty() {
            Key::new(p)?;
        }
        self.prefix = p.to_string();
        Ok(self)
    }

    /// Uses another key template (see [`Template`]).
    pub fn with_template(mut self, template: &str) -> Result<Self> {
        self.template = Template::parse(template)?;
        Ok(self)
    }

    /// The underlying store.
    pub fn store(&self) -> &DynStore {
        &self.store
    }

    /// Saves a document. `ext` defaults from the content type (`json`, `txt`, `gz`, else `bin`).
    pub async fn save(
        &self,
        name: &str,
        kind: &str,
        data: Bytes,
        metadata: Metadata,
        content_type: Option<&str>,
    ) -> Result<Entry> {
        let size = data.len() as u64;
        // Keys are create-only and carry the time to the millisecond: a second save of the
        // same name within one millisecond finds the key taken, and takes the next one.
        let mut attempt = 0;
        let (key, opts, timestamp) = loop {
            let (key, opts, timestamp) =
                self.prepare(name, kind, metadata.clone(), content_type)?;
            match self.store.put_opts(&key, data.clone(), opts.clone()).await {
                Ok(_) => break (key, opts, timestamp),
                Err(e) if e.kind() == ErrorKind::AlreadyExists && attempt < 3 => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                Err(e) => return Err(e),
            }
        };
        Ok(Entry {
            key,
            name: name.into(),
            kind: kind.into(),
            timestamp,
            size,
            metadata: opts.metadata,
        })
    }

    /// Saves a document from a stream of chunks, in bounded memory.
    pub async fn save_stream<S>(
        &self,
        name: &str,
        kind: &str,
        data: S,
        metadata: Metadata,
        content_type: Option<&str>,
    ) -> Result<Entry>
    where
        S: futures::Stream<Item = Result<Bytes>> + Unpin + Send,
    {
        let (key, opts, timestamp) = self.prepare(name, kind, metadata, content_type)?;
        let md = opts.metadata.clone();
        // Counted on the way through: no HEAD afterwards just to learn the size.
        let size = std::sync::atomic::AtomicU64::new(0);
        let data = futures::TryStreamExt::inspect_ok(data, |c| {
            size.fetch_add(c.len() as u64, std::sync::atomic::Ordering::Relaxed);
        });
        crate::transfer::put_stream(&*self.store, &key, data, opts, Default::default()).await?;
        let size = size.into_inner();
        Ok(Entry {
            key,
            name: name.into(),
            kind: kind.into(),
            timestamp,
            size,
            metadata: md,
        })
    }

    fn prepare(
        &self,
        name: &str,
        kind: &str,
        mut metadata: Metadata,
        content_type: Option<&str>,
    ) -> Result<(Key, PutOptions, DateTime<Utc>)> {
        check_part("name", name, true)?;
        check_part("kind", kind, false)?;
        // Milliseconds, as in the key: the returned entry then equals the one listed later.
        let now = chrono::SubsecRound::trunc_subsecs(Utc::now(), 3);
        let ext = ext_for(content_type);
        let key = self.template.render(&self.prefix, name, kind, ext, now)?;
        metadata.insert(META_NAME.into(), name.into());
        metadata.insert(META_KIND.into(), kind.into());
        metadata.insert(
            META_TIME.into(),
            now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        );
        let opts = PutOptions {
            // A save never replaces an earlier one, even if two land in the same millisecond.
            mode: PutMode::Create,
            content_type: content_type.map(str::to_string),
            metadata,
            ..Default::default()
        };
        Ok((key, opts, now))
    }

    /// Entries matching `filter`, newest first.
    pub async fn list(&self, filter: &Filter) -> Result<Vec<Entry>> {
        let scan = self
            .template
            .scan_prefix(&self.prefix, filter.name.as_deref());
        // Each entry with whether its listed size is the logical one.
        let found: Vec<(Entry, bool)> = self
            .store
            .list_objects(&scan)
            // `ready`, not `async` blocks: those make the future's `Send` unprovable to callers
            // that spawn it (rustc's higher-ranked lifetime limitation).
            .try_filter_map(|m| future::ready(Ok(self.entry_of(&m).map(|e| (e, m.size_known)))))
            .try_filter(|(e, _)| {
                let keep = filter.name.as_ref().is_none_or(|n| *n == e.name)
                    && filter.kind.as_ref().is_none_or(|k| *k == e.kind)
                    && filter.since.is_none_or(|t| e.timestamp >= t)
                    && filter.until.is_none_or(|t| e.timestamp < t);
                future::ready(keep)
            })
            .try_collect()
            .await?;
        // Through compression or encryption a listing has stored sizes: one head per such
        // entry gives the logical size (and the metadata a metadata filter needs).
        let want_meta = !filter.metadata.is_empty();
        let mut entries: Vec<Entry> = stream::iter(found)
            .map(|(mut e, known)| async move {
                if !known || want_meta {
                    let h = self.store.head(&e.key).await?;
                    e.size = h.size;
                    e.metadata = h.metadata;
                }
                Ok::<_, Error>(e)
            })
            .buffered(16)
            .try_collect()
            .await?;
        if want_meta {
            entries = stream::iter(entries.into_iter().map(Ok::<_, Error>))
                .try_filter(|e| {
                    let keep = filter
                        .metadata
                        .iter()
                        .all(|(k, v)| e.metadata.get(k) == Some(v));
                    async move { keep }
                })
                .try_collect()
                .await?;
        }
        entries.sort_by(|a, b| {
            b.timestamp
                .cmp(&a.timestamp)
                .then_with(|| b.key.cmp(&a.key))
        });
        Ok(entries)
    }

    fn entry_of(&self, m: &ObjectMeta) -> Option<Entry> {
        let p = self.template.parse_key(&self.prefix, m.key.as_str())?;
        Some(Entry {
            key: m.key.clone(),
            name: p.name,
            kind: p.kind,
            timestamp: p.timestamp,
            size: m.size,
            metadata: Metadata::new(),
        })
    }

    /// The newest entry for `name` (and `kind`, if given).
    pub async fn latest(&self, name: &str, kind: Option<&str>) -> Result<Option<Entry>> {
        let filter = Filter {
            name: Some(name.into()),
            kind: kind.map(str::to_string),
            ..Default::default()
        };
        Ok(self.list(&filter).await?.into_iter().next())
    }

    /// Reads an entry's bytes (verified by the checksum layer when the store has it).
    pub async fn load(&self, key: &Key) -> Result<Bytes> {
        self.store.get(key).await
    }

    /// Streams an entry into a local file atomically (temp file + rename).
    pub async fn restore(&self, key: &Key, path: &std::path::Path) -> Result<u64> {
        use tokio::io::AsyncWriteExt;
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(".".as_ref());
        tokio::fs::create_dir_all(dir).await?;
        let tmp = dir.join(format!(".{:016x}.cairn-restore", rand::random::<u64>()));
        let result = async {
            let mut body = self.store.get_stream(key).await?;
            let mut f = tokio::fs::File::create(&tmp).await?;
            let mut n = 0u64;
            while let Some(chunk) = body.next().await {
                let chunk = chunk?;
                n += chunk.len() as u64;
                f.write_all(&chunk).await?;
            }
            f.sync_all().await?;
            tokio::fs::rename(&tmp, path).await?;
            Ok::<_, Error>(n)
        }
        .await;
        if result.is_err() {
            let _ = tokio::fs::remove_file(&tmp).await;
        }
        result.map_err(|e| e.with_operation("restore").with_key(key.as_str()))
    }

    /// Whether an entry exists.
    pub async fn exists(&self, key: &Key) -> Result<bool> {
        self.store.exists(key).await
    }

    /// Deletes an entry.
    pub async fn delete(&self, key: &Key) -> Result<()> {
        self.store.delete(key).await
    }

    /// An entry with its full metadata.
    pub async fn metadata(&self, key: &Key) -> Result<Entry> {
        let m = self.store.head(key).await?;
        let mut e = self.entry_of(&m).ok_or_else(|| {
            Error::invalid(format!("{key} does not match the archive's key template"))
                .with_operation("archive metadata")
        })?;
        e.size = m.size;
        e.metadata = m.metadata;
        Ok(e)
    }

    /// Reads an entry in full to check it against its recorded SHA-256.
    pub async fn verify(&self, key: &Key) -> Result<Verified> {
        crate::archive::verify_object(&*self.store, key).await
    }

    /// Deletes old entries per `policy`, per name (and kind if the filter names one).
    /// Returns the entries deleted (or that would be, with `dry_run`).
    pub async fn prune(&self, filter: &Filter, policy: &Prune) -> Result<Vec<Entry>> {
        if policy.keep_last.is_none() && policy.older_than.is_none() {
            return Err(Error::invalid("prune needs keep_last or older_than")
                .with_hint("e.g. --keep 10 or --older-than 30d"));
        }
        let cutoff = policy
            .older_than
            .map(|d| Utc::now() - chrono::Duration::from_std(d).unwrap_or(chrono::TimeDelta::MAX));
        let entries = self.list(filter).await?;
        let mut seen: std::collections::HashMap<(String, Option<String>), usize> =
            Default::default();
        let mut doomed = Vec::new();
        for e in entries {
            let group = (e.name.clone(), filter.kind.as_ref().map(|_| e.kind.clone()));
            let rank = seen.entry(group).or_insert(0);
            *rank += 1;
            let beyond_keep = policy.keep_last.is_some_and(|n| *rank > n);
            let too_old = cutoff.is_some_and(|c| e.timestamp < c);
            // With both set, an entry goes only if it is past the keep count AND too old.
            let drop = match (policy.keep_last, cutoff) {
                (Some(_), Some(_)) => beyond_keep && too_old,
                _ => beyond_keep || too_old,
            };
            if drop {
                doomed.push(e);
            }
        }
        if !policy.dry_run {
            let keys = doomed.iter().map(|e| e.key.clone()).collect();
            if let Some((k, e)) = self.store.delete_many(keys).await.into_iter().next() {
                return Err(e.with_operation("prune").with_key(k.as_str()));
            }
        }
        Ok(doomed)
    }
}

/// Reads `key` in full through `store`: `Ok` if a recorded SHA-256 matched, `Corrupt` on an
/// integrity failure, `Unverifiable` if no checksum was recorded.
pub async fn verify_object(store: &dyn crate::Store, key: &Key) -> Result<Verified> {
    let head = store.head(key).await?;
    let recorded = head.stored_sha256().is_some();
    let mut body = match store.get_stream(key).await {
        Ok(b) => b,
        Err(e) if e.kind() == ErrorKind::Integrity => return Ok(Verified::Corrupt),
        Err(e) => return Err(e),
    };
    while let Some(chunk) = body.next().await {
        match chunk {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::Integrity => return Ok(Verified::Corrupt),
            Err(e) => return Err(e),
        }
    }
    Ok(if recorded {
        Verified::Ok
    } else {
        Verified::Unverifiable
    })
}

fn check_part(what: &str, v: &str, slashes: bool) -> Result<()> {
    let bad = v.is_empty()
        || (!slashes && v.contains('/'))
        || v.contains('{')
        || v.contains('}')
        || Key::new(v).is_err();
    if bad {
        return Err(
            Error::invalid(format!("archive {what} {v:?} is not usable in a key")).with_hint(
                if slashes {
                    "use letters, digits, `-`, `_`, `.` and `/` between non-empty segments"
                } else {
                    "use letters, digits, `-`, `_` and `.` (no `/`)"
                },
            ),
        );
    }
    Ok(())
}

fn ext_for(content_type: Option<&str>) -> &'static str {
    let ct = content_type
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim();
    match ct {
        "application/json" => "json",
        "text/plain" => "txt",
        "text/csv" => "csv",
        "text/markdown" => "md",
        "application/gzip" | "application/x-gzip" => "gz",
        "application/zstd" => "zst",
        "application/x-tar" => "tar",
        _ => "bin",
    }
}

#[cfg(test)]
mod tests;
