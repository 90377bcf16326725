//! Canned ACLs.

use super::Admin;
use crate::error::Error;
use crate::error::Result;
use aws_sdk_s3::types;

impl Admin {
    /// Applies a canned ACL (`public-read`, `private`, ...) to one object (its full key in the
    /// bucket). Servers without object ACLs (Garage) answer `Unsupported`.
    pub async fn put_object_acl(&self, key: &str, canned: &str) -> Result<()> {
        check_canned_acl(canned)?;
        self.client
            .put_object_acl()
            .bucket(self.bucket())
            .key(key)
            .acl(types::ObjectCannedAcl::from(canned))
            .send()
            .await
            .map_err(|e| self.err(e, "put_object_acl").with_key(key))?;
        Ok(())
    }
}

/// The canned ACLs S3 defines for objects.
pub const CANNED_ACLS: &[&str] = &[
    "private",
    "public-read",
    "public-read-write",
    "authenticated-read",
    "aws-exec-read",
    "bucket-owner-read",
    "bucket-owner-full-control",
    "log-delivery-write",
];

/// Refuses anything but a canned ACL name, before any request is made.
pub fn check_canned_acl(acl: &str) -> Result<()> {
    if CANNED_ACLS.contains(&acl) {
        Ok(())
    } else {
        Err(Error::invalid(format!("unknown ACL {acl:?}"))
            .with_hint(format!("use one of {}", CANNED_ACLS.join(", "))))
    }
}
