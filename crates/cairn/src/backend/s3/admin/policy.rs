//! Bucket policies (JSON documents) and bucket canned ACLs.

use super::Admin;
use crate::error::{Error, Result};
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::types;
use serde::Serialize;

/// The canned ACLs S3 defines for buckets.
pub const BUCKET_CANNED_ACLS: &[&str] = &[
    "private",
    "public-read",
    "public-read-write",
    "authenticated-read",
];

/// One grant of a bucket's ACL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Grant {
    /// Who: a canonical user id, a group URI (`.../global/AllUsers`), or an email.
    pub grantee: String,
    /// `READ`, `WRITE`, `FULL_CONTROL`, ...
    pub permission: String,
}

/// A policy is sent only if it is JSON: the server's own error for a typo is far less clear.
pub fn check_policy(text: &str) -> Result<()> {
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(serde_json::Value::Object(_)) => Ok(()),
        Ok(_) => Err(
            Error::invalid("a bucket policy is a JSON object").with_hint(
                "see the S3 docs for `{\"Version\": \"2012-10-17\", \"Statement\": [...]}`",
            ),
        ),
        Err(e) => Err(Error::invalid(format!("the policy is not valid JSON: {e}"))
            .with_hint("fix the file; nothing was sent")),
    }
}

impl Admin {
    /// The bucket policy, or `None` when the bucket has none.
    pub async fn get_policy(&self) -> Result<Option<String>> {
        match self
            .client
            .get_bucket_policy()
            .bucket(self.bucket())
            .send()
            .await
        {
            Ok(out) => Ok(out.policy().map(str::to_string)),
            Err(e) if e.as_service_error().and_then(|s| s.code()) == Some("NoSuchBucketPolicy") => {
                Ok(None)
            }
            Err(e) => Err(self.err(e, "get_bucket_policy")),
        }
    }

    /// Replaces the bucket policy with `policy` (checked to be a JSON object first).
    pub async fn put_policy(&self, policy: &str) -> Result<()> {
        check_policy(policy)?;
        self.client
            .put_bucket_policy()
            .bucket(self.bucket())
            .policy(policy)
            .send()
            .await
            .map_err(|e| self.err(e, "put_bucket_policy"))?;
        Ok(())
    }

    /// Removes the bucket policy (none is not an error).
    pub async fn delete_policy(&self) -> Result<()> {
        self.client
            .delete_bucket_policy()
            .bucket(self.bucket())
            .send()
            .await
            .map_err(|e| self.err(e, "delete_bucket_policy"))?;
        Ok(())
    }

    /// Applies a canned ACL to the bucket itself.
    pub async fn put_bucket_acl(&self, canned: &str) -> Result<()> {
        if !BUCKET_CANNED_ACLS.contains(&canned) {
            return Err(Error::invalid(format!("unknown bucket ACL {canned:?}"))
                .with_hint(format!("use one of {}", BUCKET_CANNED_ACLS.join(", "))));
        }
        self.client
            .put_bucket_acl()
            .bucket(self.bucket())
            .acl(types::BucketCannedAcl::from(canned))
            .send()
            .await
            .map_err(|e| self.err(e, "put_bucket_acl"))?;
        Ok(())
    }

    /// The bucket's grants.
    pub async fn get_bucket_acl(&self) -> Result<Vec<Grant>> {
        let out = self
            .client
            .get_bucket_acl()
            .bucket(self.bucket())
            .send()
            .await
            .map_err(|e| self.err(e, "get_bucket_acl"))?;
        Ok(out
            .grants()
            .iter()
            .map(|g| {
                let who = g.grantee();
                Grant {
                    grantee: who
                        .and_then(|w| w.uri().or(w.id()).or(w.email_address()))
                        .unwrap_or("?")
                        .to_string(),
                    permission: g
                        .permission()
                        .map(|p| p.as_str().to_string())
                        .unwrap_or_default(),
                }
            })
            .collect())
    }
}
