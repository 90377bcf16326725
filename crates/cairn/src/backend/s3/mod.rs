//! The S3 store (placeholder until the S3 backend lands).

use crate::config::Config;
use crate::error::{Error, Result};
use crate::store::DynStore;

/// Provider names accepted by the `provider` option.
pub const PROVIDERS: &[&str] = &["aws", "r2", "minio", "garage", "ceph", "moto"];

/// Opens an S3 store for `bucket` with `config`.
pub async fn open(_bucket: &str, _config: &Config) -> Result<DynStore> {
    Err(Error::unsupported("the S3 store is not built yet"))
}
