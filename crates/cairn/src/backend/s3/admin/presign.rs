//! Presigned URLs, signed by object_store's own SigV4 signer with the store's credentials.

use super::Admin;
use crate::error::{Error, Result};
use object_store::signer::{Method, Signer};
use serde::Serialize;
use std::time::Duration;

/// The request a presigned URL allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum PresignMethod {
    /// Download the object.
    Get,
    /// Upload (replace) the object.
    Put,
    /// Read the object's attributes.
    Head,
}

impl std::str::FromStr for PresignMethod {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_uppercase().as_str() {
            "GET" => Ok(PresignMethod::Get),
            "PUT" => Ok(PresignMethod::Put),
            "HEAD" => Ok(PresignMethod::Head),
            _ => Err(Error::invalid(format!("cannot presign method {s:?}"))
                .with_hint("use GET, PUT or HEAD")),
        }
    }
}

/// S3's longest validity for a SigV4 presigned URL.
pub const MAX_EXPIRY: Duration = Duration::from_secs(7 * 24 * 3600);
/// What `cairn presign` uses unless told: short, since whoever holds the URL has the access.
pub const DEFAULT_EXPIRY: Duration = Duration::from_secs(15 * 60);

/// Refuses a validity S3 would not honour, before anything is signed.
pub fn check_expiry(expires: Duration) -> Result<()> {
    if expires.is_zero() || expires > MAX_EXPIRY {
        return Err(Error::invalid(format!(
            "a presigned URL must expire after 1 s to 7 days, not {}",
            humantime::format_duration(expires)
        ))
        .with_hint("e.g. --expires 15m, 12h or 7d"));
    }
    Ok(())
}

impl Admin {
    /// A URL that allows `method` on `key` (full key in the bucket) for `expires`, to anyone
    /// holding it, without credentials.
    pub async fn presign(
        &self,
        method: PresignMethod,
        key: &str,
        expires: Duration,
    ) -> Result<url::Url> {
        check_expiry(expires)?;
        let path = object_store::path::Path::parse(key).map_err(|e| {
            Error::invalid(format!("key cannot be expressed as an S3 object path: {e}"))
                .with_key(key)
        })?;
        let method = match method {
            PresignMethod::Get => Method::GET,
            PresignMethod::Put => Method::PUT,
            PresignMethod::Head => Method::HEAD,
        };
        self.data
            .signed_url(method, &path, expires)
            .await
            .map_err(|e| self.ctx.err(e, "presign", Some(key), super::Scope::Object))
    }
}
