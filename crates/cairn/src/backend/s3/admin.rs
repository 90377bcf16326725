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

/// What a server really enforces of the conditional puts, found by [`Admin::probe_conditional_writes`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ConditionalWrites {
    /// A create-only put (`If-None-Match: *`) onto an existing key is refused.
    pub if_none_match: bool,
    /// A put whose `If-Match` ETag is stale is refused.
    pub if_match: bool,
}

/// Administration of one bucket.
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
                retried: super::error::client_retries(Some(se.raw().status().as_u16()), None),
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

    /// The provider whose quirks row applies (`generic` for an unknown endpoint).
    pub fn provider(&self) -> &'static str {
        self.ctx.quirks.name
    }

    /// The bucket this client administers.
    pub fn bucket(&self) -> &str {
        &self.settings.bucket
    }

    fn err<E>(
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
        let mut req = self.client.create_bucket().bucket(self.bucket());
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
                return Ok(match super::error::xml_tag(&body, "Status").as_deref() {
                    Some("Enabled") => Versioning::Enabled,
                    Some("Suspended") => Versioning::Suspended,
                    _ => Versioning::Off,
                });
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

    /// Tries both conditional puts on a probe object under `prefix` ("" or ending in `/`)
    /// and deletes it again: the quirks table says what a provider should do, this says what
    /// the server at hand does. Sent straight to the server, whatever the quirks row claims.
    pub async fn probe_conditional_writes(&self, prefix: &str) -> Result<ConditionalWrites> {
        use object_store::{
            ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion,
        };
        crate::key::validate_prefix(prefix)?;
        if !(prefix.is_empty() || prefix.ends_with('/')) {
            return Err(Error::invalid(format!(
                "probe prefix {prefix:?} is not a directory"
            )));
        }
        let key = format!("{prefix}.cairn-probe-{:016x}", rand::random::<u64>());
        let path = object_store::path::Path::parse(&key)
            .map_err(|e| Error::invalid(format!("probe key {key:?}: {e}")))?;
        let err = |e: object_store::Error| self.ctx.err(e, "probe", Some(&key), Scope::Object);
        let put = |mode: PutMode, body: &'static [u8]| {
            let opts = PutOptions {
                mode,
                ..Default::default()
            };
            self.data
                .put_opts(&path, PutPayload::from_static(body), opts)
        };
        put(PutMode::Overwrite, b"cairn probe").await.map_err(err)?;
        let probe = async {
            // Enforced: 412 (object_store reads it as AlreadyExists). Ignored: the put lands.
            let if_none_match = match put(PutMode::Create, b"create-only").await {
                Ok(_) => false,
                Err(
                    object_store::Error::AlreadyExists { .. }
                    | object_store::Error::Precondition { .. },
                ) => true,
                Err(e) => match err(e) {
                    e if e.kind() == ErrorKind::Unsupported => false,
                    e => return Err(e),
                },
            };
            let stale = UpdateVersion {
                e_tag: Some("\"00000000000000000000000000000000\"".into()),
                version: None,
            };
            let if_match = match put(PutMode::Update(stale), b"if-match").await {
                Ok(_) => false,
                Err(object_store::Error::Precondition { .. }) => true,
                Err(e) => match err(e) {
                    e if e.kind() == ErrorKind::Unsupported => false,
                    e => return Err(e),
                },
            };
            Ok(ConditionalWrites {
                if_none_match,
                if_match,
            })
        };
        let r = probe.await;
        let cleaned = self.data.delete(&path).await.map_err(err);
        let r = r?;
        cleaned?;
        Ok(r)
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
