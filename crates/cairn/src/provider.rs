//! S3 provider names: a leaf that both config (validation) and the S3 backend (quirks) use, so
//! neither imports the other.

/// Provider names accepted by the `provider` option.
pub const PROVIDERS: &[&str] = &["aws", "r2", "minio", "garage", "ceph", "moto", "generic"];
