//! Lifecycle rules: transitions, expiration, abort of incomplete multipart uploads.

use super::Admin;
use crate::error::Error;
use crate::error::Result;
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::types;
use serde::{Deserialize, Serialize};

/// A move to another storage class after some days.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Transition {
    /// Days after creation.
    pub days: u32,
    /// Target class, e.g. `STANDARD_IA`, `GLACIER`.
    pub storage_class: String,
}

/// One lifecycle rule, applied to keys under `prefix`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LifecycleRule {
    /// Rule name.
    pub id: String,
    /// Key prefix the rule applies to ("" for all).
    #[serde(default)]
    pub prefix: String,
    /// Delete objects this many days after creation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiration_days: Option<u32>,
    /// Storage class transitions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub transitions: Vec<Transition>,
    /// Delete old (noncurrent) versions this many days after they were replaced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub noncurrent_expiration_days: Option<u32>,
    /// Abort multipart uploads left incomplete this many days.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abort_incomplete_multipart_days: Option<u32>,
}

/// A lifecycle file: `[[rule]]` tables in TOML, or `{"rules": [...]}` (or a bare array) in JSON.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesFile {
    #[serde(alias = "rules")]
    rule: Vec<LifecycleRule>,
}

/// Parses lifecycle rules from TOML or JSON text (JSON if it starts with `{` or `[`).
pub fn parse_rules(text: &str) -> Result<Vec<LifecycleRule>> {
    let t = text.trim_start();
    let hint = "rules need id, optional prefix, and expiration_days, transitions = \
                [{days, storage_class}], noncurrent_expiration_days or \
                abort_incomplete_multipart_days";
    let rules = if t.starts_with('[') && serde_json::from_str::<serde_json::Value>(t).is_ok() {
        serde_json::from_str::<Vec<LifecycleRule>>(t)
            .map_err(|e| Error::invalid(format!("lifecycle rules: {e}")).with_hint(hint))?
    } else if t.starts_with('{') {
        serde_json::from_str::<RulesFile>(t)
            .map_err(|e| Error::invalid(format!("lifecycle rules: {e}")).with_hint(hint))?
            .rule
    } else {
        toml::from_str::<RulesFile>(t)
            .map_err(|e| Error::invalid(format!("lifecycle rules: {e}")).with_hint(hint))?
            .rule
    };
    for r in &rules {
        check(r)?;
    }
    Ok(rules)
}

pub(crate) fn check(r: &LifecycleRule) -> Result<()> {
    if r.id.is_empty() {
        return Err(Error::invalid("a lifecycle rule has no id").with_hint("give every rule an id"));
    }
    if r.expiration_days.is_none()
        && r.transitions.is_empty()
        && r.noncurrent_expiration_days.is_none()
        && r.abort_incomplete_multipart_days.is_none()
    {
        return Err(
            Error::invalid(format!("lifecycle rule {:?} has no action", r.id)).with_hint(
                "give it expiration_days, transitions, noncurrent_expiration_days or \
                 abort_incomplete_multipart_days",
            ),
        );
    }
    let days = [
        r.expiration_days,
        r.noncurrent_expiration_days,
        r.abort_incomplete_multipart_days,
    ];
    if days.contains(&Some(0)) || r.transitions.iter().any(|t| t.storage_class.is_empty()) {
        return Err(Error::invalid(format!(
            "lifecycle rule {:?}: days must be at least 1 and every transition names a storage class",
            r.id
        )));
    }
    Ok(())
}

/// What a server kept differs from what was sent: the parts it dropped, one phrase each.
pub fn dropped(sent: &[LifecycleRule], kept: &[LifecycleRule]) -> Vec<String> {
    let mut out = Vec::new();
    for s in sent {
        let Some(k) = kept.iter().find(|k| k.id == s.id) else {
            out.push(format!("rule {:?}", s.id));
            continue;
        };
        for t in &s.transitions {
            if !k.transitions.contains(t) {
                out.push(format!(
                    "rule {:?}: transition to {} after {} days",
                    s.id, t.storage_class, t.days
                ));
            }
        }
        let fields = [
            ("expiration", s.expiration_days, k.expiration_days),
            (
                "noncurrent-version expiration",
                s.noncurrent_expiration_days,
                k.noncurrent_expiration_days,
            ),
            (
                "abort of incomplete multipart uploads",
                s.abort_incomplete_multipart_days,
                k.abort_incomplete_multipart_days,
            ),
        ];
        for (what, want, got) in fields {
            if want.is_some() && want != got {
                out.push(format!(
                    "rule {:?}: {what} after {} days",
                    s.id,
                    want.unwrap_or(0)
                ));
            }
        }
        if s.prefix != k.prefix {
            out.push(format!("rule {:?}: prefix {:?}", s.id, s.prefix));
        }
    }
    out
}

impl Admin {
    /// Replaces the lifecycle rules.
    pub async fn put_lifecycle(&self, rules: &[LifecycleRule]) -> Result<()> {
        let op = "put_bucket_lifecycle";
        let mut out = Vec::with_capacity(rules.len());
        let features = self.ctx.quirks.bucket;
        for r in rules {
            check(r)?;
            if !r.transitions.is_empty() && !features.lifecycle_transitions {
                return Err(Error::unsupported(format!(
                    "{} keeps no lifecycle transitions (rule {:?} moves objects to {}); \
                     nothing was changed",
                    self.ctx.quirks.name,
                    r.id,
                    r.transitions
                        .iter()
                        .map(|t| t.storage_class.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
                .with_operation(op)
                .with_store(&*self.ctx.name)
                .with_hint(
                    "drop the transitions; expiration and abort rules work on this server",
                ));
            }
        }
        for r in rules {
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
            if let Some(d) = r.noncurrent_expiration_days {
                b = b.noncurrent_version_expiration(
                    types::NoncurrentVersionExpiration::builder()
                        .noncurrent_days(d as i32)
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
        // A server may answer 200 and keep less than it was sent (Garage drops transitions).
        let lost = dropped(rules, &self.get_lifecycle().await?);
        if !lost.is_empty() {
            return Err(Error::unsupported(format!(
                "the server accepted the lifecycle but did not keep: {}",
                lost.join("; ")
            ))
            .with_operation(op)
            .with_store(&*self.ctx.name)
            .with_hint("`cairn bucket lifecycle get` shows what it kept"));
        }
        Ok(())
    }

    /// Removes every lifecycle rule.
    pub async fn delete_lifecycle(&self) -> Result<()> {
        self.client
            .delete_bucket_lifecycle()
            .bucket(self.bucket())
            .send()
            .await
            .map_err(|e| self.err(e, "delete_bucket_lifecycle"))?;
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
                noncurrent_expiration_days: r
                    .noncurrent_version_expiration()
                    .and_then(|e| e.noncurrent_days())
                    .map(|d| d as u32),
                abort_incomplete_multipart_days: r
                    .abort_incomplete_multipart_upload()
                    .and_then(|a| a.days_after_initiation())
                    .map(|d| d as u32),
            })
            .collect())
    }
}
