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

#[derive(Debug)]
pub(super) struct LocalUpload {
    pub(super) store: LocalStore,
    pub(super) key: Key,
    pub(super) opts: PutOptions,
    pub(super) tmp: PathBuf,
    pub(super) file: Arc<fs::File>,
    pub(super) offset: u64,
    /// Completed or aborted: the temp file is no longer this upload's to remove.
    pub(super) done: bool,
}

impl Drop for LocalUpload {
    fn drop(&mut self) {
        // Dropped without complete (a cancelled task, a failed writer): leave no temp file.
        if !self.done {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

#[async_trait]
impl MultipartUpload for LocalUpload {
    fn put_part(&mut self, data: Bytes) -> BoxFuture<'static, Result<()>> {
        let at = self.offset;
        self.offset += data.len() as u64;
        let file = self.file.clone();
        Box::pin(blocking(move || {
            file.write_all_at(&data, at).map_err(Error::from)
        }))
    }
    async fn complete(&mut self) -> Result<PutResult> {
        let (store, key, opts, tmp, file) = (
            self.store.clone(),
            self.key.clone(),
            self.opts.clone(),
            self.tmp.clone(),
            self.file.clone(),
        );
        // Whatever the outcome the commit owns the temp file now (it removes it on failure).
        self.done = true;
        blocking(move || {
            files::stamp_and_sync(&file)?;
            store.commit(&tmp, &key, &opts)
        })
        .await
    }
    async fn abort(&mut self) -> Result<()> {
        self.done = true;
        match fs::remove_file(&self.tmp) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(self.store.err(e, "put", &self.key))
            }
            _ => Ok(()),
        }
    }
}
