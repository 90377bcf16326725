//! Scopes a store to a key prefix, like `s3://bucket/prefix` or `local://prefix`.

use crate::error::{Error, Result};
use crate::key::Key;
use crate::store::*;
use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::{BoxStream, StreamExt};
use std::fmt;

/// A store whose keys all live under `prefix/`.
#[derive(Debug)]
pub struct PrefixStore<S> {
    inner: S,
    /// Without trailing `/`; never empty.
    prefix: String,
}

impl<S: Store> PrefixStore<S> {
    /// Scopes `inner` to `prefix` (a validated key path).
    pub fn new(inner: S, prefix: &str) -> Result<Self> {
        let prefix = prefix.trim_matches('/');
        Key::new(prefix)?;
        Ok(PrefixStore {
            inner,
            prefix: prefix.to_string(),
        })
    }

    fn full(&self, key: &Key) -> Result<Key> {
        Key::new(format!("{}/{}", self.prefix, key.as_str()))
    }

    fn strip(&self, key: &Key) -> Option<Key> {
        key.strip_prefix(&self.prefix)
            .and_then(|k| Key::new(k).ok())
    }

    /// Presents an inner error in this store's terms: its name, and keys without the prefix.
    fn outer_err(&self, e: Error) -> Error {
        let base = format!("{}/", self.prefix);
        e.set_store(self)
            .map_key(|k| k.strip_prefix(&base).map(str::to_string).unwrap_or(k))
    }
}

impl<S: Store> fmt::Display for PrefixStore<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}",
            self.inner.to_string().trim_end_matches('/'),
            self.prefix
        )
    }
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl<S: Store> Store for PrefixStore<S> {
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    async fn put_opts(&self, key: &Key, data: Bytes, opts: PutOptions) -> Result<PutResult> {
        self.inner
            .put_opts(&self.full(key)?, data, opts)
            .await
            .map_err(|e| self.outer_err(e))
    }
    async fn put_multipart_opts(
        &self,
        key: &Key,
        opts: PutOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        self.inner
            .put_multipart_opts(&self.full(key)?, opts)
            .await
            .map_err(|e| self.outer_err(e))
    }
    async fn get_opts(&self, key: &Key, opts: GetOptions) -> Result<GetResult> {
        let mut r = self
            .inner
            .get_opts(&self.full(key)?, opts)
            .await
            .map_err(|e| self.outer_err(e))?;
        r.meta.key = key.clone();
        Ok(r)
    }
    async fn head(&self, key: &Key) -> Result<ObjectMeta> {
        let mut m = self
            .inner
            .head(&self.full(key)?)
            .await
            .map_err(|e| self.outer_err(e))?;
        m.key = key.clone();
        Ok(m)
    }
    async fn delete(&self, key: &Key) -> Result<()> {
        self.inner
            .delete(&self.full(key)?)
            .await
            .map_err(|e| self.outer_err(e))
    }
    fn delete_stream<'a>(&'a self, keys: BoxStream<'a, Key>) -> BoxStream<'a, (Key, Result<()>)> {
        let mapped = keys
            .filter_map(move |k| async move { self.full(&k).ok() })
            .boxed();
        self.inner
            .delete_stream(mapped)
            .map(move |(k, r)| {
                (
                    self.strip(&k).unwrap_or(k),
                    r.map_err(|e| self.outer_err(e)),
                )
            })
            .boxed()
    }
    fn list(&self, opts: ListOptions) -> BoxStream<'static, Result<ListEntry>> {
        let base = format!("{}/", self.prefix);
        let inner_opts = ListOptions {
            prefix: format!("{base}{}", opts.prefix),
            delimiter: opts.delimiter,
            start_after: opts.start_after.map(|a| format!("{base}{a}")),
        };
        let name = self.to_string();
        self.inner
            .list(inner_opts)
            .map(move |e| {
                let strip = |k: String| k.strip_prefix(&base).map(str::to_string).unwrap_or(k);
                e.map_err(|err| err.set_store(&name).map_key(strip))
                    .map(|e| match e {
                        ListEntry::Object(mut m) => {
                            m.key = Key::unchecked(&m.key.as_str()[base.len()..]);
                            ListEntry::Object(m)
                        }
                        ListEntry::Prefix(p) => ListEntry::Prefix(p[base.len()..].to_string()),
                        ListEntry::Unlisted { name, reason } => ListEntry::Unlisted {
                            name: strip(name),
                            reason,
                        },
                    })
            })
            .boxed()
    }
    async fn copy_opts(&self, from: &Key, to: &Key, opts: CopyOptions) -> Result<()> {
        self.inner
            .copy_opts(&self.full(from)?, &self.full(to)?, opts)
            .await
            .map_err(|e| self.outer_err(e))
    }
    async fn rename_opts(&self, from: &Key, to: &Key, opts: CopyOptions) -> Result<()> {
        self.inner
            .rename_opts(&self.full(from)?, &self.full(to)?, opts)
            .await
            .map_err(|e| self.outer_err(e))
    }
    async fn health_check(&self) -> Result<()> {
        self.inner
            .health_check()
            .await
            .map_err(|e| self.outer_err(e))
    }

    fn digest_scheme(&self) -> crate::digest::DigestScheme {
        self.inner.digest_scheme()
    }

    fn server_side(&self) -> Option<crate::server_side::ServerSide> {
        Some(
            self.inner
                .server_side()?
                .under(&format!("{}/", self.prefix)),
        )
    }
}
