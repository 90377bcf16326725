//! Lifecycle rules: transitions, expiration, abort of incomplete multipart uploads.

use super::Admin;
use crate::error::Error;
use crate::error::Result;
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::types;
use serde::Serialize;

/// A move to another storage class after some days.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Transition {
    /// Days after creation.
    pub days: u32,
    /// Target class, e.g. `STANDARD_IA`, `GLACIER`.
    pub storage_class: String,
}

/// One lifecycle rule, applied to keys under `prefix`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct LifecycleRule {
    /// Rule name.
    pub id: String,
    /// Key prefix the rule applies to ("" for all).
    pub prefix: String,
    /// Delete objects this many days after creation.
    pub expiration_days: Option<u32>,
    /// Storage class transitions.
    pub transitions: Vec<Transition>,
    /// Abort multipart uploads left incomplete this many days.
    pub abort_incomplete_multipart_days: Option<u32>,
}

impl Admin {
    /// Replaces the lifecycle rules.
    pub async fn put_lifecycle(&self, rules: &[LifecycleRule]) -> Result<()> {
        let op = "put_bucket_lifecycle";
        let mut out = Vec::with_capacity(rules.len());
        for r in rules {
            if r.expiration_days.is_none()
                && r.transitions.is_empty()
                && r.abort_incomplete_multipart_days.is_none()
            {
                return Err(
                    Error::invalid(format!("lifecycle rule {:?} has no action", r.id)).with_hint(
                        "give it expiration_days, transitions or abort_incomplete_multipart_days",
                    ),
                );
            }
            let mut b = types::LifecycleRule::builder()
                .id(&r.id)
                .status(types::ExpirationStatus::Enabled)
                .filter(
                    types::LifecycleRuleFilter::builder()
                        .prefix(&r.prefix)
                        .build(),
                );
            if let Some(d) = r.expiration_days {
                b = b.expiration(types::LifecycleExpiration::builder().days(d as i32).build());
            }
            for t in &r.transitions {
                b = b.transitions(
                    types::Transition::builder()
                        .days(t.days as i32)
                        .storage_class(types::TransitionStorageClass::from(
                            t.storage_class.as_str(),
                        ))
                        .build(),
                );
            }
            if let Some(d) = r.abort_incomplete_multipart_days {
                b = b.abort_incomplete_multipart_upload(
                    types::AbortIncompleteMultipartUpload::builder()
                        .days_after_initiation(d as i32)
                        .build(),
                );
            }
            out.push(b.build().map_err(|e| self.build_err(op, e))?);
        }
        let cfg = types::BucketLifecycleConfiguration::builder()
            .set_rules(Some(out))
            .build()
            .map_err(|e| self.build_err(op, e))?;
        self.client
            .put_bucket_lifecycle_configuration()
            .bucket(self.bucket())
            .lifecycle_configuration(cfg)
            .send()
            .await
            .map_err(|e| self.err(e, op))?;
        Ok(())
    }

    /// The lifecycle rules (empty when none are set).
    pub async fn get_lifecycle(&self) -> Result<Vec<LifecycleRule>> {
        let out = match self
            .client
            .get_bucket_lifecycle_configuration()
            .bucket(self.bucket())
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) => {
                let none = e.as_service_error().and_then(|s| s.code())
                    == Some("NoSuchLifecycleConfiguration");
                return if none {
                    Ok(Vec::new())
                } else {
                    Err(self.err(e, "get_bucket_lifecycle"))
                };
            }
        };
        Ok(out
            .rules()
            .iter()
            .map(|r| LifecycleRule {
                id: r.id().unwrap_or_default().to_string(),
                prefix: r
                    .filter()
                    .and_then(|f| f.prefix())
                    .unwrap_or_default()
                    .to_string(),
                expiration_days: r.expiration().and_then(|e| e.days()).map(|d| d as u32),
                transitions: r
                    .transitions()
                    .iter()
                    .map(|t| Transition {
                        days: t.days().unwrap_or(0) as u32,
                        storage_class: t
                            .storage_class()
                            .map(|c| c.as_str().to_string())
                            .unwrap_or_default(),
                    })
                    .collect(),
                abort_incomplete_multipart_days: r
                    .abort_incomplete_multipart_upload()
                    .and_then(|a| a.days_after_initiation())
                    .map(|d| d as u32),
            })
            .collect())
    }
}
