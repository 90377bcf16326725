//! Bucket administration over aws-sdk-s3: create, delete (optionally emptying first), exists,
//! versioning, default encryption, lifecycle, and a summary.
//!
//! The SDK client is built from the same resolved settings as the data plane (endpoint,
//! region, addressing, credentials, timeouts, retries), with request checksums only where an
//! operation requires them (Garage rejects the SDK's default streaming checksum trailers).
//! A server that does not implement an operation (Garage: versioning, encryption) yields
//! [`ErrorKind::Unsupported`](crate::ErrorKind::Unsupported).

use super::client::Settings;
use super::error::{classify, Failure, Scope, Transport};
use super::{Ctx, S3Store};

use crate::error::{Error, ErrorKind, Result};
use crate::store::{Store, StoreExt};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::types;
use futures::stream::{StreamExt, TryStreamExt};
use object_store::aws::AmazonS3;
use serde::Serialize;
use std::fmt;
use std::sync::Arc;

mod acl;
mod encryption;
mod lifecycle;
mod policy;
mod presign;
mod probe;
mod setup;
mod stats;
mod uploads;
mod versioning;
mod versions;

pub use acl::{check_canned_acl, CANNED_ACLS};
pub use encryption::Encryption;
pub use lifecycle::{dropped, parse_rules, LifecycleRule, Transition};
pub use policy::{check_policy, Grant, BUCKET_CANNED_ACLS};
pub use presign::{check_expiry, PresignMethod, DEFAULT_EXPIRY, MAX_EXPIRY};
pub use probe::ConditionalWrites;
pub use setup::{encryption_words, lifecycle_words, preset, presets, Change, Plan, Preset};
pub use uploads::Upload;
pub use versioning::Versioning;
pub use versions::{check_version_id, ObjectVersion};

/// Where a two-marker S3 listing (versions, multipart uploads) goes on from.
#[derive(Default)]
struct Markers {
    key: Option<String>,
    second: Option<String>,
    done: bool,
}

impl Markers {
    /// The next page's markers; a truncated page without a key marker ends the listing.
    fn next(truncated: Option<bool>, key: Option<&str>, second: Option<&str>) -> Markers {
        Markers {
            key: key.map(str::to_string),
            second: second.map(str::to_string),
            done: truncated != Some(true) || key.is_none(),
        }
    }
}

/// A listing fetched one page at a time, flattened into its items.
fn paged<T, F, Fut>(fetch: F) -> futures::stream::BoxStream<'static, Result<T>>
where
    T: Send + 'static,
    F: Fn(Markers) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<(Vec<T>, Markers)>> + Send + 'static,
{
    futures::stream::try_unfold(Markers::default(), move |m| {
        let page = (!m.done).then(|| fetch(m));
        async move {
            let Some(page) = page else {
                return Ok::<_, Error>(None);
            };
            let (items, next) = page.await?;
            Ok(Some((
                futures::stream::iter(items.into_iter().map(Ok)),
                next,
            )))
        }
    })
    .try_flatten()
    .boxed()
}

/// An SDK timestamp as chrono's.
fn sdk_time(t: &aws_sdk_s3::primitives::DateTime) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::from_timestamp(t.secs(), t.subsec_nanos())
}

/// What [`Admin::info`] reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BucketInfo {
    /// Bucket name.
    pub bucket: String,
    /// Region the client signs for.
    pub region: String,
    /// Provider whose quirks apply.
    pub provider: String,
    /// Versioning state.
    pub versioning: Versioning,
    /// Default encryption.
    pub encryption: Encryption,
}

/// Administration of one bucket.
#[derive(Clone)]
pub struct Admin {
    settings: Arc<Settings>,
    data: Arc<AmazonS3>,
    client: aws_sdk_s3::Client,
    ctx: Ctx,
}

impl fmt::Debug for Admin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Admin({:?})", self.settings)
    }
}

impl fmt::Display for Admin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.ctx.name)
    }
}

impl Failure {
    /// Reduces an aws-sdk-s3 error.
    pub(crate) fn from_sdk<E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static>(
        e: &SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
    ) -> Failure {
        match e {
            SdkError::ServiceError(se) => Failure {
                status: Some(se.raw().status().as_u16()),
                code: se.err().code().map(str::to_string),
                message: se.err().message().map(str::to_string),
                transport: None,
                // The SDK's standard retry has already had its attempts at a 5xx or 429.
                retried: super::error::client_retries(Some(se.raw().status().as_u16()), None, true),
            },
            SdkError::TimeoutError(_) => Failure {
                transport: Some(Transport::Timeout),
                ..Default::default()
            },
            SdkError::DispatchFailure(d) => Failure {
                transport: Some(if d.is_timeout() {
                    Transport::Timeout
                } else if d.is_io() {
                    Transport::Connect
                } else {
                    Transport::Other
                }),
                message: Some(aws_sdk_s3::error::DisplayErrorContext(e).to_string()),
                ..Default::default()
            },
            SdkError::ResponseError(r) => Failure {
                status: Some(r.raw().status().as_u16()).filter(|s| *s >= 300),
                transport: Some(Transport::Other),
                ..Default::default()
            },
            _ => Failure {
                message: Some(aws_sdk_s3::error::DisplayErrorContext(e).to_string()),
                ..Default::default()
            },
        }
    }
}

impl Admin {
    pub(crate) fn from_settings(settings: Arc<Settings>, data: Arc<AmazonS3>) -> Admin {
        let client = settings.sdk();
        let ctx = Ctx {
            name: format!("s3://{}", settings.bucket).into(),
            quirks: settings.quirks,
        };
        Admin {
            settings,
            data,
            client,
            ctx,
        }
    }

    /// The underlying aws-sdk-s3 client, for administration calls cairn does not wrap.
    pub fn sdk(&self) -> &aws_sdk_s3::Client {
        &self.client
    }

    /// Which bucket settings this provider implements.
    pub fn features(&self) -> super::quirks::BucketFeatures {
        self.ctx.quirks.bucket
    }

    /// The provider whose quirks row applies (`generic` for an unknown endpoint).
    pub fn provider(&self) -> &'static str {
        self.ctx.quirks.name
    }

    /// Whether the server reports when each multipart upload really started (not moto).
    pub(crate) fn upload_times(&self) -> bool {
        self.ctx.quirks.upload_times
    }

    /// The bucket this client administers.
    pub fn bucket(&self) -> &str {
        &self.settings.bucket
    }

    pub(crate) fn err<E>(
        &self,
        e: SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
        op: &'static str,
    ) -> Error
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let f = Failure::from_sdk(&e);
        let c = classify(&f, Scope::Bucket, self.ctx.quirks);
        let msg = match c.kind {
            ErrorKind::Unsupported => format!(
                "{op} is not supported by this S3 server (provider {})",
                self.ctx.quirks.name
            ),
            _ => f.summary(),
        };
        let mut err = Error::new(c.kind, msg).set_temporary(c.temporary);
        if c.temporary && f.retried {
            err = err.set_persistent();
        }
        let mut err = err
            .with_operation(op)
            .with_store(&*self.ctx.name)
            .with_source(e);
        if let Some(h) = c.hint {
            err = err.with_hint(h);
        }
        err
    }

    fn build_err(&self, op: &'static str, e: impl fmt::Display) -> Error {
        Error::invalid(format!("{op}: {e}"))
            .with_operation(op)
            .with_store(&*self.ctx.name)
    }

    /// Creates the bucket in the configured region.
    pub async fn create_bucket(&self) -> Result<()> {
        self.create_bucket_with(false).await
    }

    /// Creates the bucket, with S3 Object Lock enabled if asked (which also turns on
    /// versioning; it cannot be turned off later). Servers without Object Lock answer
    /// `Unsupported` before anything is created.
    pub async fn create_bucket_with(&self, object_lock: bool) -> Result<()> {
        if object_lock && !self.ctx.quirks.bucket.object_lock {
            return Err(Error::unsupported(format!(
                "{} does not implement S3 Object Lock; no bucket was created",
                self.ctx.quirks.name
            ))
            .with_operation("create_bucket")
            .with_store(&*self.ctx.name));
        }
        let mut req = self
            .client
            .create_bucket()
            .bucket(self.bucket())
            .set_object_lock_enabled_for_bucket(object_lock.then_some(true));
        // us-east-1 is the one region that must not be named.
        if self.settings.region != "us-east-1" {
            let cfg = types::CreateBucketConfiguration::builder()
                .location_constraint(types::BucketLocationConstraint::from(
                    self.settings.region.as_str(),
                ))
                .build();
            req = req.create_bucket_configuration(cfg);
        }
        req.send().await.map_err(|e| self.err(e, "create_bucket"))?;
        Ok(())
    }

    /// Whether the bucket exists (and these credentials may see it).
    pub async fn bucket_exists(&self) -> Result<bool> {
        match self.client.head_bucket().bucket(self.bucket()).send().await {
            Ok(_) => Ok(true),
            Err(e) => {
                let e = self.err(e, "head_bucket");
                if e.kind() == ErrorKind::BucketNotFound {
                    Ok(false)
                } else {
                    Err(e)
                }
            }
        }
    }

    /// Deletes the bucket. With `force`, first deletes every object (all versions where the
    /// bucket keeps them) and aborts unfinished multipart uploads.
    pub async fn delete_bucket(&self, force: bool) -> Result<()> {
        if force {
            self.empty().await?;
        }
        self.client
            .delete_bucket()
            .bucket(self.bucket())
            .send()
            .await
            .map_err(|e| self.err(e, "delete_bucket"))?;
        Ok(())
    }

    async fn empty(&self) -> Result<()> {
        // Current objects through the data plane (batch deletes, one page in memory).
        let store = S3Store {
            s3: Arc::clone(&self.data),
            settings: Arc::clone(&self.settings),
            ctx: self.ctx.clone(),
            admin: Default::default(),
        };
        let keys = store.list_objects("").map_ok(|m| m.key);
        let mut failed = store
            .delete_stream(keys.filter_map(|k| async move { k.ok() }).boxed())
            .filter_map(|(k, r)| async move { r.err().map(|e| (k, e)) })
            .boxed();
        if let Some((_, e)) = failed.next().await {
            return Err(e);
        }
        drop(failed);
        // Old versions and delete markers, where the bucket keeps them.
        if matches!(
            self.get_versioning().await,
            Ok(Versioning::Enabled | Versioning::Suspended)
        ) {
            let (mut key_marker, mut version_marker) = (None::<String>, None::<String>);
            loop {
                let page = self
                    .client
                    .list_object_versions()
                    .bucket(self.bucket())
                    .set_key_marker(key_marker.take())
                    .set_version_id_marker(version_marker.take())
                    .send()
                    .await
                    .map_err(|e| self.err(e, "list_object_versions"))?;
                let versions = page.versions().iter().map(|v| (v.key(), v.version_id()));
                let markers = page
                    .delete_markers()
                    .iter()
                    .map(|m| (m.key(), m.version_id()));
                for (key, version) in versions.chain(markers) {
                    let Some(key) = key else { continue };
                    self.client
                        .delete_object()
                        .bucket(self.bucket())
                        .key(key)
                        .set_version_id(version.map(str::to_string))
                        .send()
                        .await
                        .map_err(|e| self.err(e, "delete_object"))?;
                }
                if page.is_truncated() != Some(true) {
                    break;
                }
                key_marker = page.next_key_marker().map(str::to_string);
                version_marker = page.next_version_id_marker().map(str::to_string);
            }
        }
        // Unfinished multipart uploads; a server without the listing has none to show.
        let uploads = self
            .client
            .list_multipart_uploads()
            .bucket(self.bucket())
            .send()
            .await;
        match uploads {
            Ok(out) => {
                for u in out.uploads() {
                    if let (Some(key), Some(id)) = (u.key(), u.upload_id()) {
                        let _ = self
                            .client
                            .abort_multipart_upload()
                            .bucket(self.bucket())
                            .key(key)
                            .upload_id(id)
                            .send()
                            .await;
                    }
                }
            }
            Err(e) => {
                let e = self.err(e, "list_multipart_uploads");
                if e.kind() != ErrorKind::Unsupported {
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// Versioning and encryption status; a setting the server lacks reads `Unsupported`.
    pub async fn info(&self) -> Result<BucketInfo> {
        let versioning = match self.get_versioning().await {
            Ok(v) => v,
            Err(e) if e.kind() == ErrorKind::Unsupported => Versioning::Unsupported,
            Err(e) => return Err(e),
        };
        let encryption = match self.get_encryption().await {
            Ok(v) => v,
            Err(e) if e.kind() == ErrorKind::Unsupported => Encryption::Unsupported,
            Err(e) => return Err(e),
        };
        Ok(BucketInfo {
            bucket: self.bucket().to_string(),
            region: self.settings.region.clone(),
            provider: self.ctx.quirks.name.to_string(),
            versioning,
            encryption,
        })
    }
}
