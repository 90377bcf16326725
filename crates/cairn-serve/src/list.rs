//! One page of a listing, taken from the store's paginated `list` stream: at most `max_keys`
//! entries (plus one to know whether more follow) are ever held.

use crate::errors::{to_s3, with_message};
use cairn::{ListEntry, ListOptions, ObjectMeta, Store, StoreExt};
use futures::{StreamExt, TryStreamExt};
use s3s::{S3ErrorCode, S3Result};

/// S3's largest page.
pub const MAX_KEYS: i32 = 1000;

/// A page of objects and common prefixes in key order.
#[derive(Debug, Default)]
pub struct Page {
    /// Objects, with their logical sizes.
    pub objects: Vec<ObjectMeta>,
    /// Common prefixes (delimiter listings).
    pub prefixes: Vec<String>,
    /// The last name on the page, when more follow.
    pub next: Option<String>,
}

/// What to list.
#[derive(Debug, Default)]
pub struct Query {
    /// Raw prefix.
    pub prefix: String,
    /// The delimiter, if any (only `/`).
    pub delimiter: Option<String>,
    /// Names after this one only.
    pub after: Option<String>,
    /// Page size.
    pub max_keys: Option<i32>,
}

/// Lists one page.
pub async fn page(store: &dyn Store, q: Query) -> S3Result<Page> {
    let delimiter = match q.delimiter.as_deref() {
        None | Some("") => false,
        Some("/") => true,
        Some(d) => {
            return Err(with_message(
                S3ErrorCode::InvalidArgument,
                format!("delimiter {d:?}: this gateway lists with `/` only"),
            ))
        }
    };
    let max = q.max_keys.unwrap_or(MAX_KEYS).clamp(0, MAX_KEYS) as usize;
    let mut out = Page::default();
    if max == 0 {
        return Ok(out);
    }
    let after = q.after.filter(|a| !a.is_empty());
    let opts = ListOptions {
        prefix: q.prefix,
        delimiter,
        start_after: after.clone(),
    };
    let mut stream = store.list(opts);
    let mut count = 0;
    let mut last = String::new();
    while let Some(entry) = stream.next().await {
        let entry = entry.map_err(to_s3)?;
        // A store may fold keys after `after` into a prefix equal to or before it (the
        // prefix of a continuation token): S3 names each prefix once.
        if after.as_deref().is_some_and(|a| entry.name() <= a) {
            continue;
        }
        if count == max {
            out.next = Some(last);
            break;
        }
        last = entry.name().to_string();
        match entry {
            ListEntry::Object(m) => out.objects.push(m),
            ListEntry::Prefix(p) => out.prefixes.push(p),
            ListEntry::Unlisted { name, reason } => {
                tracing::warn!("not listed: {name:?}: {reason}");
                continue;
            }
        }
        count += 1;
    }
    // A listing through a compressing or encrypting layer has stored sizes; S3 clients
    // compare sizes, so each such entry gets its logical size from a head.
    let objects = std::mem::take(&mut out.objects);
    out.objects = futures::stream::iter(objects)
        .map(|m| store.resolve_size(m))
        .buffered(16)
        .try_collect()
        .await
        .map_err(to_s3)?;
    Ok(out)
}
