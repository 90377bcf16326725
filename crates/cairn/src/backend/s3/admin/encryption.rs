//! Default bucket encryption (SSE-S3, SSE-KMS).

use super::Admin;
use crate::error::{Error, Result};
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::types;
use serde::Serialize;

/// A bucket's default encryption.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "state")]
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

impl Encryption {
    /// SSE-S3.
    pub fn aes256() -> Encryption {
        Encryption::Sse {
            algorithm: "AES256".into(),
            kms_key_id: None,
        }
    }

    /// Parses `aes256`, `aws:kms` or `off` (what `cairn bucket encryption set` takes).
    pub fn parse(name: &str, kms_key_id: Option<String>) -> Result<Encryption> {
        let algorithm = match name.to_ascii_lowercase().as_str() {
            "off" | "none" => {
                if kms_key_id.is_some() {
                    return Err(Error::invalid("a KMS key only goes with aws:kms"));
                }
                return Ok(Encryption::None);
            }
            "aes256" | "sse-s3" => "AES256",
            "aws:kms" | "kms" | "sse-kms" => "aws:kms",
            _ => {
                return Err(Error::invalid(format!("unknown encryption {name:?}"))
                    .with_hint("use aes256, aws:kms [--kms-key ID] or off"))
            }
        };
        let enc = Encryption::Sse {
            algorithm: algorithm.into(),
            kms_key_id,
        };
        if algorithm == "AES256"
            && matches!(
                &enc,
                Encryption::Sse {
                    kms_key_id: Some(_),
                    ..
                }
            )
        {
            return Err(Error::invalid("a KMS key only goes with aws:kms")
                .with_hint("drop --kms-key, or use aws:kms"));
        }
        Ok(enc)
    }
}

impl Admin {
    /// Sets default encryption to SSE-S3 (AES256).
    pub async fn put_encryption_aes256(&self) -> Result<()> {
        self.put_encryption(&Encryption::aes256()).await
    }

    /// Sets the default encryption: `Sse` with `AES256` or `aws:kms` (and its key), or
    /// `None` to remove it.
    pub async fn put_encryption(&self, want: &Encryption) -> Result<()> {
        let op = "put_bucket_encryption";
        let (algorithm, kms_key_id) = match want {
            Encryption::None => {
                self.client
                    .delete_bucket_encryption()
                    .bucket(self.bucket())
                    .send()
                    .await
                    .map_err(|e| self.err(e, "delete_bucket_encryption"))?;
                return Ok(());
            }
            Encryption::Sse {
                algorithm,
                kms_key_id,
            } => (algorithm, kms_key_id),
            Encryption::Unsupported => {
                return Err(Error::invalid("`unsupported` is a state, not a setting"))
            }
        };
        let alg = match algorithm.as_str() {
            "AES256" => types::ServerSideEncryption::Aes256,
            "aws:kms" => types::ServerSideEncryption::AwsKms,
            "aws:kms:dsse" => types::ServerSideEncryption::AwsKmsDsse,
            other => {
                return Err(Error::invalid(format!("unknown encryption {other:?}"))
                    .with_hint("use aes256 or aws:kms (with a KMS key id)"))
            }
        };
        if kms_key_id.is_some() && alg == types::ServerSideEncryption::Aes256 {
            return Err(Error::invalid("a KMS key only goes with aws:kms")
                .with_hint("drop --kms-key, or use aws:kms"));
        }
        let by_default = types::ServerSideEncryptionByDefault::builder()
            .sse_algorithm(alg)
            .set_kms_master_key_id(kms_key_id.clone())
            .build()
            .map_err(|e| self.build_err(op, e))?;
        let rule = types::ServerSideEncryptionRule::builder()
            .apply_server_side_encryption_by_default(by_default)
            .build();
        let cfg = types::ServerSideEncryptionConfiguration::builder()
            .rules(rule)
            .build()
            .map_err(|e| self.build_err(op, e))?;
        self.client
            .put_bucket_encryption()
            .bucket(self.bucket())
            .server_side_encryption_configuration(cfg)
            .send()
            .await
            .map_err(|e| self.err(e, op))?;
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
