//! What a server really enforces, found by trying it.

use super::super::error::Scope;
use super::Admin;
use crate::error::{Error, ErrorKind, Result};
use serde::Serialize;

/// What a server really enforces of the conditional puts, found by [`Admin::probe_conditional_writes`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ConditionalWrites {
    /// A create-only put (`If-None-Match: *`) onto an existing key is refused.
    pub if_none_match: bool,
    /// A put whose `If-Match` ETag is stale is refused.
    pub if_match: bool,
}

impl Admin {
    /// Tries both conditional puts on a probe object under `prefix` ("" or ending in `/`)
    /// and deletes it again: the quirks table says what a provider should do, this says what
    /// the server at hand does. Sent straight to the server, whatever the quirks row claims.
    pub async fn probe_conditional_writes(&self, prefix: &str) -> Result<ConditionalWrites> {
        use object_store::{
            ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion,
        };
        crate::key::validate_prefix(prefix)?;
        if !(prefix.is_empty() || prefix.ends_with('/')) {
            return Err(Error::invalid(format!(
                "probe prefix {prefix:?} is not a directory"
            )));
        }
        let key = format!("{prefix}.cairn-probe-{:016x}", rand::random::<u64>());
        let path = object_store::path::Path::parse(&key)
            .map_err(|e| Error::invalid(format!("probe key {key:?}: {e}")))?;
        let err = |e: object_store::Error| self.ctx.err(e, "probe", Some(&key), Scope::Object);
        let put = |mode: PutMode, body: &'static [u8]| {
            let opts = PutOptions {
                mode,
                ..Default::default()
            };
            self.data
                .put_opts(&path, PutPayload::from_static(body), opts)
        };
        put(PutMode::Overwrite, b"cairn probe").await.map_err(err)?;
        let probe = async {
            // Enforced: 412 (object_store reads it as AlreadyExists). Ignored: the put lands.
            let if_none_match = match put(PutMode::Create, b"create-only").await {
                Ok(_) => false,
                Err(
                    object_store::Error::AlreadyExists { .. }
                    | object_store::Error::Precondition { .. },
                ) => true,
                Err(e) => match err(e) {
                    e if e.kind() == ErrorKind::Unsupported => false,
                    e => return Err(e),
                },
            };
            let stale = UpdateVersion {
                e_tag: Some("\"00000000000000000000000000000000\"".into()),
                version: None,
            };
            let if_match = match put(PutMode::Update(stale), b"if-match").await {
                Ok(_) => false,
                Err(object_store::Error::Precondition { .. }) => true,
                Err(e) => match err(e) {
                    e if e.kind() == ErrorKind::Unsupported => false,
                    e => return Err(e),
                },
            };
            Ok(ConditionalWrites {
                if_none_match,
                if_match,
            })
        };
        let r = probe.await;
        let cleaned = self.data.delete(&path).await.map_err(err);
        let r = r?;
        cleaned?;
        Ok(r)
    }
}
