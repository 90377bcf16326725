//! Listing: S3's own paginated ListObjectsV2 (raw-string prefix, `/` delimiter, start-after),
//! one page in memory at a time.
//!
//! object_store parses every key of a page into a `Path`, and one key it cannot express
//! (`a//b`, `x/./y`) fails the whole page. The lister then halves the page size until the
//! failing page holds only that key, yields it as [`ListEntry::Unlisted`], and carries on.
//! Keys object_store takes but cairn's [`Key`] refuses (`back\slash`) are unlisted entries
//! too: nothing is dropped without the caller seeing it. Directory markers (`dir/`) reach us
//! with their slash stripped; they are recognised when they are the listed prefix itself,
//! when they break the ascending order, or (after a head that finds no object under the
//! stripped name) when their children follow them. An empty marker is a directory and is
//! left out; one that holds bytes is unlisted.

use super::error::Scope;
use super::Ctx;
use crate::error::{Error, Result};
use crate::key::Key;
use crate::store::{ListEntry, ListOptions, ObjectMeta};
use futures::stream::{self, BoxStream, StreamExt, TryStreamExt};
use object_store::aws::AmazonS3;
use object_store::list::{PaginatedListOptions, PaginatedListStore};
use object_store::{ListResult, ObjectStoreExt};
use std::sync::Arc;

/// S3's default and largest page.
const PAGE: usize = 1000;

struct Lister {
    s3: Arc<AmazonS3>,
    ctx: Ctx,
    prefix: String,
    delimiter: bool,
    token: Option<String>,
    offset: Option<String>,
    /// Smaller than a full page while hunting for a key object_store cannot parse.
    page_size: Option<usize>,
    done: bool,
    /// The last name yielded, to drop stripped markers that come out of order.
    last: Option<String>,
}

/// The raw key in object_store's parse error, if it says which key failed.
fn bad_key(e: &object_store::path::Error) -> Option<String> {
    use object_store::path::Error as P;
    match e {
        P::EmptySegment { path } | P::BadSegment { path, .. } | P::NonUnicode { path, .. } => {
            Some(path.clone())
        }
        _ => None,
    }
}

impl Lister {
    fn err(&self, e: object_store::Error) -> Error {
        self.ctx.err(e, "list", Some(&self.prefix), Scope::Bucket)
    }

    /// The next page of entries, `Ok(None)` at the end. Pages may come back empty.
    async fn next_page(&mut self) -> Result<Option<Vec<ListEntry>>> {
        loop {
            if self.done {
                return Ok(None);
            }
            let opts = PaginatedListOptions {
                offset: if self.token.is_none() {
                    self.offset.clone()
                } else {
                    None
                },
                delimiter: self.delimiter.then_some("/".into()),
                max_keys: self.page_size,
                page_token: self.token.clone(),
                ..Default::default()
            };
            let prefix = (!self.prefix.is_empty()).then_some(self.prefix.as_str());
            match self.s3.list_paginated(prefix, opts).await {
                Ok(page) => {
                    self.token = page.page_token;
                    self.done = self.token.is_none();
                    return self.convert(page.result).await.map(Some);
                }
                Err(object_store::Error::InvalidPath { source }) => {
                    let size = self.page_size.unwrap_or(PAGE);
                    if size > 1 {
                        self.page_size = Some(size / 2);
                        continue;
                    }
                    let Some(raw) = bad_key(&source) else {
                        return Err(self.err(object_store::Error::InvalidPath { source }));
                    };
                    // Resume after it; a bad common prefix stands for everything under it.
                    let prefix = self.delimiter && raw.ends_with('/');
                    self.offset = Some(if prefix {
                        format!("{raw}\u{10FFFF}")
                    } else {
                        raw.clone()
                    });
                    self.token = None;
                    self.page_size = None;
                    let mut reason = why_not_a_key(&raw, &source.to_string());
                    if prefix {
                        reason.push_str("; nothing under this prefix is listed");
                    }
                    self.last = Some(raw.clone());
                    return Ok(Some(vec![ListEntry::Unlisted { name: raw, reason }]));
                }
                Err(e) => return Err(self.err(e)),
            }
        }
    }

    /// Whether the listed `name` is really the marker `name/`: no object answers to the
    /// stripped name. Asked only when children follow, which real data rarely shows.
    async fn is_marker(&self, name: &str) -> Result<bool> {
        let path = object_store::path::Path::parse(name)
            .map_err(|e| self.err(object_store::Error::InvalidPath { source: e }))?;
        match self.s3.head(&path).await {
            Ok(_) => Ok(false),
            Err(object_store::Error::NotFound { .. }) => Ok(true),
            Err(e) => Err(self.err(e)),
        }
    }

    /// A directory marker `name/`: an empty one is a directory, left out; one holding
    /// bytes is data cairn cannot name.
    fn marker(&self, name: &str, size: u64) -> Option<ListEntry> {
        if size == 0 {
            tracing::debug!(store = %self.ctx.name, key = %name, "leaving out an S3 directory marker");
            return None;
        }
        Some(ListEntry::Unlisted {
            name: format!("{name}/"),
            reason: format!("a directory marker holding {size} bytes (a key cannot end in `/`)"),
        })
    }

    async fn convert(&mut self, page: ListResult) -> Result<Vec<ListEntry>> {
        let mut objects = Vec::with_capacity(page.objects.len());
        for (i, m) in page.objects.iter().enumerate() {
            let name = m.location.as_ref();
            let out_of_order = self.last.as_deref().is_some_and(|l| name <= l);
            if !name.starts_with(&self.prefix) || out_of_order {
                // Only the listed prefix itself is kept (`ls dir/` on the marker `dir/`).
                if name.starts_with(&self.prefix) || format!("{name}/") == self.prefix {
                    objects.extend(self.marker(name, m.size));
                }
                continue;
            }
            let children_follow = page.objects.get(i + 1).is_some_and(|n| {
                n.location
                    .as_ref()
                    .strip_prefix(name)
                    .is_some_and(|r| r.starts_with('/'))
            });
            if children_follow && self.is_marker(name).await? {
                objects.extend(self.marker(name, m.size));
                continue;
            }
            let key = match crate::key::why_invalid(name) {
                None => Key::unchecked(name),
                Some(reason) => {
                    self.last = Some(name.to_string());
                    objects.push(ListEntry::Unlisted {
                        name: name.to_string(),
                        reason,
                    });
                    continue;
                }
            };
            self.last = Some(name.to_string());
            let mut meta = ObjectMeta::new(key, m.size, m.last_modified);
            meta.etag = m.e_tag.clone();
            meta.version = m.version.clone();
            objects.push(ListEntry::Object(meta));
        }
        let mut prefixes = Vec::with_capacity(page.common_prefixes.len());
        for p in &page.common_prefixes {
            let p = p.as_ref();
            if !p.starts_with(&self.prefix) {
                continue;
            }
            match crate::key::why_invalid(p) {
                None => prefixes.push(ListEntry::Prefix(format!("{p}/"))),
                Some(why) => prefixes.push(ListEntry::Unlisted {
                    name: format!("{p}/"),
                    reason: format!("{why}; nothing under this prefix is listed"),
                }),
            }
        }
        if prefixes.is_empty() {
            return Ok(objects);
        }
        // S3 returns a page's keys and common prefixes apart; merge them back into order.
        let mut all: Vec<ListEntry> = objects.into_iter().chain(prefixes).collect();
        all.sort_by(|a, b| a.name().cmp(b.name()));
        if let Some(l) = all.last() {
            self.last = Some(l.name().to_string());
        }
        Ok(all)
    }
}

/// Why `raw` is no key: cairn's own reason where it has one, else object_store's.
fn why_not_a_key(raw: &str, fallback: &str) -> String {
    crate::key::why_invalid(raw).unwrap_or_else(|| fallback.to_string())
}

/// Lists `opts` as a stream of entries in ascending key order.
pub(crate) fn list(
    s3: Arc<AmazonS3>,
    ctx: Ctx,
    opts: ListOptions,
) -> BoxStream<'static, Result<ListEntry>> {
    if let Err(e) = crate::key::validate_prefix(&opts.prefix) {
        let e = e.with_operation("list").with_store(&*ctx.name);
        return stream::once(async { Err(e) }).boxed();
    }
    let lister = Lister {
        s3,
        ctx,
        prefix: opts.prefix,
        delimiter: opts.delimiter,
        token: None,
        offset: opts.start_after,
        page_size: None,
        done: false,
        last: None,
    };
    stream::try_unfold(lister, |mut l| async move {
        while let Some(page) = l.next_page().await? {
            if !page.is_empty() {
                return Ok::<_, Error>(Some((page, l)));
            }
        }
        Ok(None)
    })
    .map_ok(|page| stream::iter(page.into_iter().map(Ok)))
    .try_flatten()
    .boxed()
}

/// One cheap bucket-level request for `health_check`: a listing of at most one key.
pub(crate) async fn probe(s3: &AmazonS3, ctx: &Ctx) -> Result<()> {
    let opts = PaginatedListOptions {
        max_keys: Some(1),
        ..Default::default()
    };
    match s3.list_paginated(None, opts).await {
        Ok(_) | Err(object_store::Error::InvalidPath { .. }) => Ok(()),
        Err(e) => Err(ctx.err(e, "health_check", None, Scope::Bucket)),
    }
}
