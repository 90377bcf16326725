//! Default bucket encryption (SSE-S3, SSE-KMS).

use super::Admin;
use crate::error::Result;
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::types;
use serde::Serialize;

/// A bucket's default encryption.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Encryption {
    /// No default encryption configured.
    None,
    /// Objects are encrypted with this algorithm (`AES256`, `aws:kms`, ...).
    Sse {
        /// The algorithm.
        algorithm: String,
        /// The KMS key, for `aws:kms`.
        kms_key_id: Option<String>,
    },
    /// The server does not implement bucket encryption settings (only in [`BucketInfo`]).
    Unsupported,
}

impl Admin {
    /// Sets default encryption to SSE-S3 (AES256).
    pub async fn put_encryption_aes256(&self) -> Result<()> {
        let by_default = types::ServerSideEncryptionByDefault::builder()
            .sse_algorithm(types::ServerSideEncryption::Aes256)
            .build()
            .map_err(|e| self.build_err("put_bucket_encryption", e))?;
        let rule = types::ServerSideEncryptionRule::builder()
            .apply_server_side_encryption_by_default(by_default)
            .build();
        let cfg = types::ServerSideEncryptionConfiguration::builder()
            .rules(rule)
            .build()
            .map_err(|e| self.build_err("put_bucket_encryption", e))?;
        self.client
            .put_bucket_encryption()
            .bucket(self.bucket())
            .server_side_encryption_configuration(cfg)
            .send()
            .await
            .map_err(|e| self.err(e, "put_bucket_encryption"))?;
        Ok(())
    }

    /// The default encryption.
    pub async fn get_encryption(&self) -> Result<Encryption> {
        let out = match self
            .client
            .get_bucket_encryption()
            .bucket(self.bucket())
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) => {
                // No configuration is an error in S3's API, not an empty answer.
                let none = e.as_service_error().and_then(|s| s.code())
                    == Some("ServerSideEncryptionConfigurationNotFoundError");
                return if none {
                    Ok(Encryption::None)
                } else {
                    Err(self.err(e, "get_bucket_encryption"))
                };
            }
        };
        let rule = out
            .server_side_encryption_configuration()
            .and_then(|c| c.rules().first())
            .and_then(|r| r.apply_server_side_encryption_by_default());
        Ok(match rule {
            Some(d) => Encryption::Sse {
                algorithm: d.sse_algorithm().as_str().to_string(),
                kms_key_id: d.kms_master_key_id().map(str::to_string),
            },
            None => Encryption::None,
        })
    }
}
