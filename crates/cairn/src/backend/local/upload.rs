//! Local multipart uploads: parts written in place into one temp file.

use super::{blocking, files, LocalStore};
use crate::error::{Error, Result};
use crate::key::Key;
use crate::store::*;
use async_trait::async_trait;
use bytes::Bytes;
use futures::future::BoxFuture;
use std::fs;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Arc;

/// A temp file that a multipart upload's parts are written into, each at its offset; removed
/// when dropped unless a commit took it over ([`PartFile::release`]).
#[derive(Debug)]
pub(crate) struct PartFile {
    pub(crate) tmp: PathBuf,
    pub(crate) file: Arc<fs::File>,
    offset: u64,
    done: bool,
}

impl PartFile {
    pub(crate) fn new(tmp: PathBuf, file: fs::File) -> Self {
        PartFile {
            tmp,
            file: Arc::new(file),
            offset: 0,
            done: false,
        }
    }

    /// Writes the next part after the ones before it (their futures may run concurrently).
    pub(crate) fn put_part(&mut self, data: Bytes) -> BoxFuture<'static, Result<()>> {
        let at = self.offset;
        self.offset += data.len() as u64;
        let file = self.file.clone();
        Box::pin(blocking(move || {
            file.write_all_at(&data, at).map_err(Error::from)
        }))
    }

    /// The temp file belongs to a commit from now on (which removes it if it fails).
    pub(crate) fn release(&mut self) {
        self.done = true;
    }

    /// Removes the temp file (an abort); a missing one is fine.
    pub(crate) fn remove(&mut self) -> std::io::Result<()> {
        self.done = true;
        match fs::remove_file(&self.tmp) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

impl Drop for PartFile {
    fn drop(&mut self) {
        // Dropped without complete (a cancelled task, a failed writer): leave no temp file.
        if !self.done {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

#[derive(Debug)]
pub(super) struct LocalUpload {
    pub(super) store: LocalStore,
    pub(super) key: Key,
    pub(super) opts: PutOptions,
    pub(super) part: PartFile,
}

#[async_trait]
impl MultipartUpload for LocalUpload {
    fn put_part(&mut self, data: Bytes) -> BoxFuture<'static, Result<()>> {
        self.part.put_part(data)
    }
    async fn complete(&mut self) -> Result<PutResult> {
        let (store, key, opts, tmp, file) = (
            self.store.clone(),
            self.key.clone(),
            self.opts.clone(),
            self.part.tmp.clone(),
            self.part.file.clone(),
        );
        self.part.release();
        blocking(move || {
            files::stamp_and_sync(&file, store.inner.durable)?;
            store.commit(&tmp, &key, &opts)
        })
        .await
    }
    async fn abort(&mut self) -> Result<()> {
        self.part
            .remove()
            .map_err(|e| self.store.err(e, "put", &self.key))
    }
}
