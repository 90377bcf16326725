//! Bucket versioning: state, enable, suspend.

use super::Admin;
use crate::error::Result;
use aws_sdk_s3::error::SdkError;
use aws_sdk_s3::types;
use serde::Serialize;

/// A bucket's versioning state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Versioning {
    /// Never enabled.
    Off,
    /// New writes keep old versions.
    Enabled,
    /// Was enabled; new writes no longer keep versions.
    Suspended,
    /// The server does not implement versioning (only in [`BucketInfo`]).
    Unsupported,
}

impl Admin {
    /// The versioning state.
    pub async fn get_versioning(&self) -> Result<Versioning> {
        let out = match self
            .client
            .get_bucket_versioning()
            .bucket(self.bucket())
            .send()
            .await
        {
            Ok(out) => out,
            // A 200 the SDK cannot parse: moto names the root element GetBucketVersioningResponse.
            // Its one field is read from the body instead.
            Err(SdkError::ServiceError(se)) if se.raw().status().as_u16() == 200 => {
                let body = se
                    .raw()
                    .body()
                    .bytes()
                    .map(String::from_utf8_lossy)
                    .unwrap_or_default();
                return Ok(
                    match super::super::error::xml_tag(&body, "Status").as_deref() {
                        Some("Enabled") => Versioning::Enabled,
                        Some("Suspended") => Versioning::Suspended,
                        _ => Versioning::Off,
                    },
                );
            }
            Err(e) => return Err(self.err(e, "get_bucket_versioning")),
        };
        Ok(match out.status() {
            Some(types::BucketVersioningStatus::Enabled) => Versioning::Enabled,
            Some(types::BucketVersioningStatus::Suspended) => Versioning::Suspended,
            _ => Versioning::Off,
        })
    }

    /// Enables or suspends versioning.
    pub async fn put_versioning(&self, enabled: bool) -> Result<()> {
        let status = if enabled {
            types::BucketVersioningStatus::Enabled
        } else {
            types::BucketVersioningStatus::Suspended
        };
        self.client
            .put_bucket_versioning()
            .bucket(self.bucket())
            .versioning_configuration(
                types::VersioningConfiguration::builder()
                    .status(status)
                    .build(),
            )
            .send()
            .await
            .map_err(|e| self.err(e, "put_bucket_versioning"))?;
        Ok(())
    }
}
