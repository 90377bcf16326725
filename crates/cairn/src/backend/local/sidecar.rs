//! The sidecar: an object's metadata in `.cairn/meta/<key>.json`.

use crate::store::Metadata;
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize, Default)]
pub(super) struct Sidecar {
    pub(super) size: u64,
    pub(super) mtime_ns: u128,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) content_type: Option<String>,
    #[serde(default)]
    pub(super) metadata: Metadata,
}
