//! The `S3` trait over cairn stores: each operation becomes `Store` calls on the bucket's
//! store. Bodies stream both ways; uploads go through cairn's writer in the gateway's memory
//! budget.

use crate::buckets::Buckets;
use crate::checksum::{self, Declared};
use crate::errors::{bad_key, internal, to_s3, with_message};
use crate::list::{self, Query};
use crate::memory::Memory;
use crate::multipart::{self, Part, Upload, Uploads};
use bytes::Bytes;
use cairn::transfer::{put_stream, WriterOptions};
use cairn::{
    DynStore, ErrorKind, GetOptions, GetRange, Key, ObjectMeta, PutMode, PutOptions, Store,
    StoreExt,
};
use futures::{StreamExt, TryStreamExt};
use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Request, S3Response, S3Result, S3};
use std::collections::HashMap;
use std::time::SystemTime;
use tokio::io::AsyncWriteExt;

/// Part size of the writer that streams an upload into a store.
const PART: usize = 8 * 1024 * 1024;
/// Parts in flight per upload: the gateway runs many uploads at once, each kept small.
const CONCURRENCY: usize = 2;

/// The S3 service over the gateway's buckets.
#[derive(Debug)]
pub struct Gateway {
    buckets: Buckets,
    uploads: Uploads,
    memory: Memory,
}

impl Gateway {
    pub fn new(buckets: Buckets, uploads: Uploads, memory: Memory) -> Self {
        Gateway {
            buckets,
            uploads,
            memory,
        }
    }

    fn store(&self, bucket: &str) -> S3Result<DynStore> {
        self.buckets.get(bucket)
    }

    /// Streams `body` into `key`, checked, in the memory budget (`held`: the front service
    /// already reserved the body). Nothing is written unless
    /// the whole body arrived and matched what was declared.
    #[allow(clippy::too_many_arguments)]
    async fn write(
        &self,
        store: &dyn Store,
        key: &Key,
        body: impl futures::Stream<Item = cairn::Result<Bytes>> + Send + Unpin,
        size: Option<u64>,
        opts: PutOptions,
        outcome: Option<&checksum::Shared>,
        held: bool,
    ) -> S3Result<cairn::PutResult> {
        let caps = store.capabilities();
        // Part buffers plus the layers' copies of each part in flight.
        let per_part = PART as u64 * (1 + caps.part_copies as u64);
        let need = match size {
            Some(s) if s <= PART as u64 => s.max(1) * (1 + caps.part_copies as u64),
            _ => per_part * (CONCURRENCY as u64 + 1),
        };
        let _reservation = if held {
            None
        } else {
            Some(self.memory.reserve(need).await)
        };
        if let Some(s) = size.filter(|s| *s <= PART as u64) {
            // Small: one put of the body as it came (s3s hands a buffered body over as one
            // chunk, so no copy), checked to its end first.
            let mut body = body;
            let mut chunks = Vec::new();
            let mut err = None;
            while let Some(c) = body.next().await {
                match c {
                    Ok(c) => chunks.push(c),
                    Err(e) => {
                        err = Some(e);
                        break;
                    }
                }
            }
            if let Some(out) = outcome {
                if let Some(e) = out.lock().unwrap().error.take() {
                    return Err(e);
                }
            }
            if let Some(e) = err {
                return Err(to_s3(e));
            }
            let data = match chunks.len() {
                1 => chunks.pop().unwrap(),
                _ => {
                    let mut v = Vec::with_capacity(s as usize);
                    for c in chunks {
                        v.extend_from_slice(&c);
                    }
                    Bytes::from(v)
                }
            };
            return store.put_opts(key, data, opts).await.map_err(to_s3);
        }
        let wopts = WriterOptions {
            part_size: PART,
            concurrency: CONCURRENCY,
            size_hint: size,
        };
        let r = put_stream(store, key, body, opts, wopts).await;
        if let Some(out) = outcome {
            if let Some(e) = out.lock().unwrap().error.take() {
                return Err(e);
            }
        }
        r.map_err(to_s3)
    }
}

fn key(k: &str) -> S3Result<Key> {
    Key::new(k).map_err(bad_key)
}

/// An `If-Match`/`If-None-Match` header as text: `*` or the ETag's value.
fn etag_condition(c: &ETagCondition) -> &str {
    match c {
        ETagCondition::Any => "*",
        ETagCondition::ETag(e) => e.value(),
    }
}

/// Lets a cairn body (a `Send` stream) be a `StreamingBlob`, which wants `Sync`: the mutex
/// is never contended, `poll_next` has `&mut`.
struct SyncBody(std::sync::Mutex<futures::stream::BoxStream<'static, cairn::Result<Bytes>>>);

impl futures::Stream for SyncBody {
    type Item = cairn::Result<Bytes>;
    fn poll_next(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        self.get_mut().0.get_mut().unwrap().poll_next_unpin(cx)
    }
}

fn strip_quotes(s: &str) -> &str {
    s.trim().trim_start_matches("W/").trim_matches('"')
}

fn etag_of(m: &ObjectMeta) -> Option<ETag> {
    m.etag
        .as_deref()
        .map(|e| ETag::Strong(strip_quotes(e).to_string()))
}

fn ts(t: chrono::DateTime<chrono::Utc>) -> Timestamp {
    Timestamp::from(SystemTime::from(t))
}

fn system_time(t: &Timestamp) -> SystemTime {
    let odt: time::OffsetDateTime = t.clone().into();
    SystemTime::from(odt)
}

/// Whether `k` is `u…ucairn-…` (zero or more `u`): the names the escape below shifts.
fn escaped_space(k: &str) -> bool {
    k.trim_start_matches('u')
        .starts_with(cairn::RESERVED_META_PREFIX)
}

/// A client's metadata name as stored. `cairn-*` belongs to the store's layers, so a client's
/// `cairn-x` (a cairn client's own layers, say) is kept as `ucairn-x`, `ucairn-x` as
/// `uucairn-x`, and so on: one-to-one, undone by [`unescape_meta`].
fn escape_meta(k: String) -> String {
    if escaped_space(&k) {
        format!("u{k}")
    } else {
        k
    }
}

fn unescape_meta(k: &str) -> String {
    match k.strip_prefix('u') {
        Some(rest) if escaped_space(k) => rest.to_string(),
        _ => k.to_string(),
    }
}

fn user_meta(m: &ObjectMeta) -> Option<HashMap<String, String>> {
    (!m.metadata.is_empty()).then(|| {
        m.metadata
            .iter()
            .map(|(k, v)| (unescape_meta(k), v.clone()))
            .collect()
    })
}

fn put_options(
    content_type: Option<String>,
    metadata: Option<HashMap<String, String>>,
) -> S3Result<PutOptions> {
    let mut opts = PutOptions {
        content_type,
        ..Default::default()
    };
    for (k, v) in metadata.unwrap_or_default() {
        opts.metadata.insert(escape_meta(k.to_ascii_lowercase()), v);
    }
    Ok(opts)
}

/// Whether an `If-Match`/`If-None-Match` list holds `etag`.
fn etag_matches(cond: &str, etag: Option<&str>) -> bool {
    cond.split(',').any(|c| {
        let c = c.trim();
        c == "*" || etag.is_some_and(|e| strip_quotes(c) == strip_quotes(e))
    })
}

/// GET/HEAD preconditions against the object actually served (RFC 9110 order).
fn check_conditions(
    m: &ObjectMeta,
    if_match: Option<&str>,
    if_none_match: Option<&str>,
    if_modified_since: Option<&Timestamp>,
    if_unmodified_since: Option<&Timestamp>,
) -> S3Result<()> {
    let etag = m.etag.as_deref();
    // Whole seconds, as HTTP dates have.
    let modified = SystemTime::UNIX_EPOCH
        + std::time::Duration::from_secs(m.last_modified.timestamp().max(0) as u64);
    if let Some(c) = if_match {
        if !etag_matches(c, etag) {
            return Err(with_message(
                S3ErrorCode::PreconditionFailed,
                "If-Match does not hold",
            ));
        }
    } else if let Some(t) = if_unmodified_since {
        if modified > system_time(t) {
            return Err(with_message(
                S3ErrorCode::PreconditionFailed,
                "If-Unmodified-Since does not hold",
            ));
        }
    }
    if let Some(c) = if_none_match {
        if etag_matches(c, etag) {
            return Err(S3Error::new(S3ErrorCode::NotModified));
        }
    } else if let Some(t) = if_modified_since {
        if modified <= system_time(t) {
            return Err(S3Error::new(S3ErrorCode::NotModified));
        }
    }
    Ok(())
}

fn get_range(r: &Range) -> GetRange {
    match *r {
        Range::Int {
            first,
            last: Some(last),
        } => GetRange::Bounded(first..last.saturating_add(1)),
        Range::Int { first, last: None } => GetRange::Offset(first),
        Range::Suffix { length } => GetRange::Suffix(length),
    }
}

fn not_found_key(e: cairn::Error) -> S3Error {
    to_s3(e)
}

fn url_encode(s: &str) -> String {
    // S3's encoding-type=url: everything but unreserved characters and `/`.
    const SET: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~')
        .remove(b'/');
    percent_encoding::utf8_percent_encode(s, SET).to_string()
}

fn encoder(enc: &Option<EncodingType>) -> fn(&str) -> String {
    match enc {
        Some(e) if e.as_str().eq_ignore_ascii_case("url") => url_encode,
        _ => str::to_string,
    }
}

/// A page's objects and common prefixes, as both listing versions answer them.
fn entries(
    page: list::Page,
    enc: fn(&str) -> String,
) -> (Option<Vec<Object>>, Option<Vec<CommonPrefix>>) {
    let prefixes = page
        .prefixes
        .iter()
        .map(|p| CommonPrefix {
            prefix: Some(enc(p)),
        })
        .collect();
    let objects = page
        .objects
        .into_iter()
        .map(|m| to_object(m, enc))
        .collect();
    (Some(objects), Some(prefixes))
}

fn to_object(m: ObjectMeta, enc: fn(&str) -> String) -> Object {
    Object {
        key: Some(enc(m.key.as_str())),
        size: Some(m.size as i64),
        e_tag: etag_of(&m),
        last_modified: Some(ts(m.last_modified)),
        storage_class: Some(ObjectStorageClass::from_static(
            ObjectStorageClass::STANDARD,
        )),
        ..Default::default()
    }
}

fn token_encode(name: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(name)
}

fn token_decode(t: &str) -> S3Result<String> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(t)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| with_message(S3ErrorCode::InvalidArgument, "invalid continuation token"))
}

/// The declared body facts of an upload.
#[allow(clippy::too_many_arguments)]
fn declared(
    length: Option<i64>,
    content_md5: Option<String>,
    crc32: Option<String>,
    crc32c: Option<String>,
    sha1: Option<String>,
    sha256: Option<String>,
    crc64nvme: Option<String>,
    algorithm: Option<&ChecksumAlgorithm>,
) -> Declared {
    Declared {
        length,
        content_md5,
        crc32,
        crc32c,
        sha1,
        sha256,
        crc64nvme,
        algorithm: algorithm.map(|a| a.as_str().to_string()),
        payload_sha256: None,
    }
}

#[async_trait::async_trait]
impl S3 for Gateway {
    async fn list_buckets(
        &self,
        _req: S3Request<ListBucketsInput>,
    ) -> S3Result<S3Response<ListBucketsOutput>> {
        let buckets = self
            .buckets
            .list()?
            .into_iter()
            .map(|(name, time)| Bucket {
                name: Some(name),
                creation_date: Some(Timestamp::from(time.unwrap_or(SystemTime::UNIX_EPOCH))),
                ..Default::default()
            })
            .collect();
        Ok(S3Response::new(ListBucketsOutput {
            buckets: Some(buckets),
            ..Default::default()
        }))
    }

    async fn create_bucket(
        &self,
        req: S3Request<CreateBucketInput>,
    ) -> S3Result<S3Response<CreateBucketOutput>> {
        self.buckets.create(&req.input.bucket)?;
        Ok(S3Response::new(CreateBucketOutput {
            location: Some(format!("/{}", req.input.bucket)),
        }))
    }

    async fn delete_bucket(
        &self,
        req: S3Request<DeleteBucketInput>,
    ) -> S3Result<S3Response<DeleteBucketOutput>> {
        self.buckets.delete(&req.input.bucket).await?;
        Ok(S3Response::new(DeleteBucketOutput {}))
    }

    async fn head_bucket(
        &self,
        req: S3Request<HeadBucketInput>,
    ) -> S3Result<S3Response<HeadBucketOutput>> {
        self.store(&req.input.bucket)?;
        Ok(S3Response::new(HeadBucketOutput::default()))
    }

    async fn get_bucket_location(
        &self,
        req: S3Request<GetBucketLocationInput>,
    ) -> S3Result<S3Response<GetBucketLocationOutput>> {
        self.store(&req.input.bucket)?;
        // No location constraint: us-east-1, which every client accepts for a custom endpoint.
        Ok(S3Response::new(GetBucketLocationOutput::default()))
    }

    async fn head_object(
        &self,
        req: S3Request<HeadObjectInput>,
    ) -> S3Result<S3Response<HeadObjectOutput>> {
        let i = req.input;
        let store = self.store(&i.bucket)?;
        let k = key(&i.key)?;
        let m = store.head(&k).await.map_err(not_found_key)?;
        check_conditions(
            &m,
            i.if_match.as_ref().map(etag_condition),
            i.if_none_match.as_ref().map(etag_condition),
            i.if_modified_since.as_ref(),
            i.if_unmodified_since.as_ref(),
        )?;
        let (len, range) = match &i.range {
            Some(r) => {
                let r = get_range(r)
                    .resolve(m.size)
                    .map_err(|e| with_message(S3ErrorCode::InvalidRange, e.to_string()))?;
                (
                    r.end - r.start,
                    Some(format!(
                        "bytes {}-{}/{}",
                        r.start,
                        r.end.saturating_sub(1),
                        m.size
                    )),
                )
            }
            None => (m.size, None),
        };
        Ok(S3Response::new(HeadObjectOutput {
            content_length: Some(len as i64),
            content_range: range,
            content_type: m.content_type.clone(),
            e_tag: etag_of(&m),
            last_modified: Some(ts(m.last_modified)),
            metadata: user_meta(&m),
            accept_ranges: Some("bytes".into()),
            ..Default::default()
        }))
    }

    async fn get_object(
        &self,
        req: S3Request<GetObjectInput>,
    ) -> S3Result<S3Response<GetObjectOutput>> {
        let i = req.input;
        let store = self.store(&i.bucket)?;
        let k = key(&i.key)?;
        if i.part_number.is_some() {
            return Err(with_message(
                S3ErrorCode::NotImplemented,
                "GET by partNumber",
            ));
        }
        let opts = GetOptions {
            range: i.range.as_ref().map(get_range),
            ..Default::default()
        };
        let ranged = opts.range.is_some();
        let r = store.get_opts(&k, opts).await.map_err(|e| {
            if ranged && e.kind() == ErrorKind::InvalidInput {
                with_message(S3ErrorCode::InvalidRange, e.to_string())
            } else {
                to_s3(e)
            }
        })?;
        // Checked against the object whose bytes are served, so the answer is consistent.
        check_conditions(
            &r.meta,
            i.if_match.as_ref().map(etag_condition),
            i.if_none_match.as_ref().map(etag_condition),
            i.if_modified_since.as_ref(),
            i.if_unmodified_since.as_ref(),
        )?;
        let m = &r.meta;
        let len = r.range.end - r.range.start;
        let content_range = ranged.then(|| {
            format!(
                "bytes {}-{}/{}",
                r.range.start,
                r.range.end.saturating_sub(1),
                m.size
            )
        });
        let out = GetObjectOutput {
            content_length: Some(len as i64),
            content_range,
            content_type: m.content_type.clone(),
            e_tag: etag_of(m),
            last_modified: Some(ts(m.last_modified)),
            metadata: user_meta(m),
            accept_ranges: Some("bytes".into()),
            body: Some(StreamingBlob::wrap(SyncBody(std::sync::Mutex::new(r.body)))),
            ..Default::default()
        };
        Ok(S3Response::new(out))
    }

    async fn put_object(
        &self,
        req: S3Request<PutObjectInput>,
    ) -> S3Result<S3Response<PutObjectOutput>> {
        let trailers = req.trailing_headers;
        let (headers, signed) = (req.headers, req.credentials.is_some());
        let held = req.extensions.get::<crate::memory::Held>().is_some();
        let i = req.input;
        let store = self.store(&i.bucket)?;
        let k = key(&i.key)?;
        let mut opts = put_options(i.content_type.map(|c| c.to_string()), i.metadata)?;
        opts.mode = match (&i.if_none_match, &i.if_match) {
            (Some(ETagCondition::Any), _) => PutMode::Create,
            (Some(_), _) => {
                return Err(with_message(
                    S3ErrorCode::NotImplemented,
                    "If-None-Match on PUT takes only `*`",
                ))
            }
            (None, Some(m)) => PutMode::Update(format!("\"{}\"", strip_quotes(etag_condition(m)))),
            (None, None) => PutMode::Overwrite,
        };
        check_atomic(store.as_ref(), &opts.mode)?;
        let mut d = declared(
            i.content_length,
            i.content_md5,
            i.checksum_crc32,
            i.checksum_crc32c,
            i.checksum_sha1,
            i.checksum_sha256,
            i.checksum_crc64nvme,
            i.checksum_algorithm.as_ref(),
        );
        d.payload_from(&headers, signed);
        let size = i.content_length.map(|l| l as u64);
        let body = i.body.unwrap_or_else(|| {
            StreamingBlob::wrap(futures::stream::empty::<Result<Bytes, std::io::Error>>())
        });
        let (body, outcome) = checksum::checked(body, d, trailers)?;
        let r = self
            .write(store.as_ref(), &k, body, size, opts, Some(&outcome), held)
            .await;
        let r = r?;
        let etag = match r.etag {
            Some(e) => Some(e),
            None => store.head(&k).await.ok().and_then(|m| m.etag),
        };
        Ok(S3Response::new(PutObjectOutput {
            e_tag: etag.map(|e| ETag::Strong(strip_quotes(&e).to_string())),
            ..Default::default()
        }))
    }

    async fn delete_object(
        &self,
        req: S3Request<DeleteObjectInput>,
    ) -> S3Result<S3Response<DeleteObjectOutput>> {
        let i = req.input;
        let store = self.store(&i.bucket)?;
        let k = key(&i.key)?;
        store.delete(&k).await.map_err(to_s3)?;
        Ok(S3Response::new(DeleteObjectOutput::default()))
    }

    async fn delete_objects(
        &self,
        req: S3Request<DeleteObjectsInput>,
    ) -> S3Result<S3Response<DeleteObjectsOutput>> {
        let i = req.input;
        let store = self.store(&i.bucket)?;
        let quiet = i.delete.quiet.unwrap_or(false);
        let mut deleted = Vec::new();
        let mut errors = Vec::new();
        let mut keys = Vec::new();
        for o in i.delete.objects {
            match Key::new(o.key.clone()) {
                Ok(k) => keys.push(k),
                Err(e) => errors.push(Error {
                    key: Some(o.key),
                    code: Some("InvalidArgument".into()),
                    message: Some(e.to_string()),
                    ..Default::default()
                }),
            }
        }
        let mut results = store.delete_stream(futures::stream::iter(keys).boxed());
        while let Some((k, r)) = results.next().await {
            match r {
                Ok(()) if !quiet => deleted.push(DeletedObject {
                    key: Some(k.into_string()),
                    ..Default::default()
                }),
                Ok(()) => {}
                Err(e) => {
                    let s3 = to_s3(e);
                    errors.push(Error {
                        key: Some(k.into_string()),
                        code: Some(s3.code().as_str().to_string()),
                        message: s3.message().map(str::to_string),
                        ..Default::default()
                    })
                }
            }
        }
        Ok(S3Response::new(DeleteObjectsOutput {
            deleted: Some(deleted),
            errors: (!errors.is_empty()).then_some(errors),
            ..Default::default()
        }))
    }

    async fn copy_object(
        &self,
        req: S3Request<CopyObjectInput>,
    ) -> S3Result<S3Response<CopyObjectOutput>> {
        let i = req.input;
        let (src_bucket, src_key) = match &i.copy_source {
            CopySource::Bucket {
                bucket,
                key,
                version_id,
            } => {
                if version_id.is_some() {
                    return Err(with_message(
                        S3ErrorCode::NotImplemented,
                        "copy of a version",
                    ));
                }
                (bucket.to_string(), key.to_string())
            }
            _ => {
                return Err(with_message(
                    S3ErrorCode::NotImplemented,
                    "copy from access points or outposts",
                ))
            }
        };
        let src = self.store(&src_bucket)?;
        let dst = self.store(&i.bucket)?;
        let (sk, dk) = (key(&src_key)?, key(&i.key)?);
        let replace = i
            .metadata_directive
            .as_ref()
            .is_some_and(|d| d.as_str() == MetadataDirective::REPLACE);
        let same_store = src_bucket == i.bucket;
        if same_store
            && !replace
            && i.copy_source_if_match.is_none()
            && i.copy_source_if_none_match.is_none()
        {
            if sk == dk {
                return Err(with_message(
                    S3ErrorCode::InvalidRequest,
                    "copying an object onto itself needs the REPLACE metadata directive",
                ));
            }
            dst.copy(&sk, &dk).await.map_err(to_s3)?;
        } else {
            // Across stores, or with new metadata: stream through the gateway.
            let g = src
                .get_opts(&sk, GetOptions::default())
                .await
                .map_err(to_s3)?;
            check_conditions(
                &g.meta,
                i.copy_source_if_match.as_ref().map(etag_condition),
                i.copy_source_if_none_match.as_ref().map(etag_condition),
                i.copy_source_if_modified_since.as_ref(),
                i.copy_source_if_unmodified_since.as_ref(),
            )
            .map_err(|e| {
                if *e.code() == S3ErrorCode::NotModified {
                    with_message(
                        S3ErrorCode::PreconditionFailed,
                        "copy source condition does not hold",
                    )
                } else {
                    e
                }
            })?;
            let opts = if replace {
                put_options(i.content_type.map(|c| c.to_string()), i.metadata)?
            } else {
                PutOptions {
                    content_type: g.meta.content_type.clone(),
                    metadata: g.meta.metadata.clone(),
                    ..Default::default()
                }
            };
            let size = Some(g.meta.size);
            self.write(dst.as_ref(), &dk, g.body, size, opts, None, false)
                .await?;
        }
        let m = dst.head(&dk).await.map_err(to_s3)?;
        Ok(S3Response::new(CopyObjectOutput {
            copy_object_result: Some(CopyObjectResult {
                e_tag: etag_of(&m),
                last_modified: Some(ts(m.last_modified)),
                ..Default::default()
            }),
            ..Default::default()
        }))
    }

    async fn list_objects_v2(
        &self,
        req: S3Request<ListObjectsV2Input>,
    ) -> S3Result<S3Response<ListObjectsV2Output>> {
        let i = req.input;
        let store = self.store(&i.bucket)?;
        let token = match &i.continuation_token {
            Some(t) => Some(token_decode(t)?),
            None => None,
        };
        let after = match (token, i.start_after.clone()) {
            (Some(t), Some(s)) => Some(t.max(s)),
            (t, s) => t.or(s),
        };
        let prefix = i.prefix.clone().unwrap_or_default();
        let page = list::page(
            store.as_ref(),
            Query {
                prefix: prefix.clone(),
                delimiter: i.delimiter.clone(),
                after,
                max_keys: i.max_keys,
            },
        )
        .await?;
        let enc = encoder(&i.encoding_type);
        let count = (page.objects.len() + page.prefixes.len()) as i32;
        let next_token = page.next.as_deref().map(token_encode);
        let truncated = page.next.is_some();
        let (contents, common_prefixes) = entries(page, enc);
        Ok(S3Response::new(ListObjectsV2Output {
            name: Some(i.bucket),
            prefix: Some(enc(&prefix)),
            delimiter: i.delimiter.as_deref().map(enc),
            start_after: i.start_after.as_deref().map(enc),
            continuation_token: i.continuation_token,
            max_keys: Some(i.max_keys.unwrap_or(list::MAX_KEYS)),
            encoding_type: i.encoding_type,
            key_count: Some(count),
            is_truncated: Some(truncated),
            next_continuation_token: next_token,
            contents,
            common_prefixes,
            ..Default::default()
        }))
    }

    async fn list_objects(
        &self,
        req: S3Request<ListObjectsInput>,
    ) -> S3Result<S3Response<ListObjectsOutput>> {
        let i = req.input;
        let store = self.store(&i.bucket)?;
        let prefix = i.prefix.clone().unwrap_or_default();
        let page = list::page(
            store.as_ref(),
            Query {
                prefix: prefix.clone(),
                delimiter: i.delimiter.clone(),
                after: i.marker.clone(),
                max_keys: i.max_keys,
            },
        )
        .await?;
        let enc = encoder(&i.encoding_type);
        let truncated = page.next.is_some();
        let next_marker = page.next.as_deref().map(enc);
        let (contents, common_prefixes) = entries(page, enc);
        Ok(S3Response::new(ListObjectsOutput {
            name: Some(i.bucket),
            prefix: Some(enc(&prefix)),
            delimiter: i.delimiter.as_deref().map(enc),
            marker: i.marker.as_deref().map(enc),
            max_keys: Some(i.max_keys.unwrap_or(list::MAX_KEYS)),
            encoding_type: i.encoding_type,
            is_truncated: Some(truncated),
            // S3 sends NextMarker only with a delimiter; sending it always is allowed.
            next_marker,
            contents,
            common_prefixes,
            ..Default::default()
        }))
    }

    async fn create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        let i = req.input;
        self.store(&i.bucket)?;
        key(&i.key)?;
        let opts = put_options(i.content_type.map(|c| c.to_string()), i.metadata)?;
        let u = self
            .uploads
            .create(Upload {
                id: String::new(),
                bucket: i.bucket.clone(),
                key: i.key.clone(),
                content_type: opts.content_type,
                metadata: opts.metadata,
                initiated: chrono::Utc::now(),
            })
            .await?;
        Ok(S3Response::new(CreateMultipartUploadOutput {
            bucket: Some(i.bucket),
            key: Some(i.key),
            upload_id: Some(u.id),
            ..Default::default()
        }))
    }

    async fn upload_part(
        &self,
        req: S3Request<UploadPartInput>,
    ) -> S3Result<S3Response<UploadPartOutput>> {
        let trailers = req.trailing_headers;
        let (headers, signed) = (req.headers, req.credentials.is_some());
        let i = req.input;
        if !(1..=10_000).contains(&i.part_number) {
            return Err(with_message(
                S3ErrorCode::InvalidArgument,
                "part numbers are 1 to 10000",
            ));
        }
        self.uploads.get(&i.bucket, &i.key, &i.upload_id).await?;
        let mut d = declared(
            i.content_length,
            i.content_md5,
            i.checksum_crc32,
            i.checksum_crc32c,
            i.checksum_sha1,
            i.checksum_sha256,
            i.checksum_crc64nvme,
            i.checksum_algorithm.as_ref(),
        );
        d.payload_from(&headers, signed);
        let body = i.body.unwrap_or_else(|| {
            StreamingBlob::wrap(futures::stream::empty::<Result<Bytes, std::io::Error>>())
        });
        let (mut body, outcome) = checksum::checked(body, d, trailers)?;
        let temp = self.uploads.part_temp(&i.upload_id, i.part_number)?;
        let mut file = tokio::fs::File::create(&temp)
            .await
            .map_err(|e| internal("storing the part", e))?;
        let written = async {
            while let Some(chunk) = body.next().await {
                match chunk {
                    Ok(c) => file
                        .write_all(&c)
                        .await
                        .map_err(|e| internal("storing the part", e))?,
                    Err(e) => {
                        let err = outcome.lock().unwrap().error.take();
                        return Err(err.unwrap_or_else(|| to_s3(e)));
                    }
                }
            }
            file.flush()
                .await
                .map_err(|e| internal("storing the part", e))?;
            Ok(())
        }
        .await;
        drop(file);
        if let Err(e) = written {
            let _ = tokio::fs::remove_file(&temp).await;
            return Err(e);
        }
        let (md5, size) = {
            let o = outcome.lock().unwrap();
            (o.md5.clone(), o.size)
        };
        let part = Part {
            number: i.part_number,
            etag: format!("\"{md5}\""),
            size,
            last_modified: chrono::Utc::now(),
        };
        self.uploads.commit_part(&i.upload_id, temp, part).await?;
        Ok(S3Response::new(UploadPartOutput {
            e_tag: Some(ETag::Strong(md5)),
            ..Default::default()
        }))
    }

    async fn list_parts(
        &self,
        req: S3Request<ListPartsInput>,
    ) -> S3Result<S3Response<ListPartsOutput>> {
        let i = req.input;
        self.uploads.get(&i.bucket, &i.key, &i.upload_id).await?;
        let parts = self.uploads.parts(&i.upload_id).await?;
        let marker = i.part_number_marker.unwrap_or(0);
        let max = i.max_parts.unwrap_or(1000).clamp(0, 1000) as usize;
        let mut page: Vec<&Part> = parts.values().filter(|p| p.number > marker).collect();
        let truncated = page.len() > max;
        page.truncate(max);
        let next = page.last().map(|p| p.number);
        Ok(S3Response::new(ListPartsOutput {
            bucket: Some(i.bucket),
            key: Some(i.key),
            upload_id: Some(i.upload_id),
            part_number_marker: Some(marker),
            next_part_number_marker: next,
            max_parts: Some(max as i32),
            is_truncated: Some(truncated),
            parts: Some(
                page.into_iter()
                    .map(|p| s3s::dto::Part {
                        part_number: Some(p.number),
                        e_tag: Some(ETag::Strong(strip_quotes(&p.etag).to_string())),
                        size: Some(p.size as i64),
                        last_modified: Some(ts(p.last_modified)),
                        ..Default::default()
                    })
                    .collect(),
            ),
            ..Default::default()
        }))
    }

    async fn list_multipart_uploads(
        &self,
        req: S3Request<ListMultipartUploadsInput>,
    ) -> S3Result<S3Response<ListMultipartUploadsOutput>> {
        let i = req.input;
        self.store(&i.bucket)?;
        let prefix = i.prefix.clone().unwrap_or_default();
        let uploads = self.uploads.list(&i.bucket, &prefix).await?;
        let after_key = i.key_marker.clone().unwrap_or_default();
        let max = i.max_uploads.unwrap_or(1000).clamp(0, 1000) as usize;
        let mut page: Vec<Upload> = uploads
            .into_iter()
            .filter(|u| after_key.is_empty() || u.key > after_key)
            .collect();
        let truncated = page.len() > max;
        page.truncate(max);
        let last = page.last().map(|u| (u.key.clone(), u.id.clone()));
        Ok(S3Response::new(ListMultipartUploadsOutput {
            bucket: Some(i.bucket),
            prefix: i.prefix,
            key_marker: i.key_marker,
            upload_id_marker: i.upload_id_marker,
            max_uploads: Some(max as i32),
            is_truncated: Some(truncated),
            next_key_marker: if truncated {
                last.as_ref().map(|l| l.0.clone())
            } else {
                None
            },
            next_upload_id_marker: if truncated { last.map(|l| l.1) } else { None },
            uploads: Some(
                page.into_iter()
                    .map(|u| MultipartUpload {
                        key: Some(u.key),
                        upload_id: Some(u.id),
                        initiated: Some(ts(u.initiated)),
                        ..Default::default()
                    })
                    .collect(),
            ),
            ..Default::default()
        }))
    }

    async fn abort_multipart_upload(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        let i = req.input;
        self.uploads.get(&i.bucket, &i.key, &i.upload_id).await?;
        self.uploads.remove(&i.upload_id).await?;
        Ok(S3Response::new(AbortMultipartUploadOutput::default()))
    }

    async fn complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        let i = req.input;
        let store = self.store(&i.bucket)?;
        let k = key(&i.key)?;
        let upload = self.uploads.get(&i.bucket, &i.key, &i.upload_id).await?;
        let stored = self.uploads.parts(&i.upload_id).await?;
        let wanted = i.multipart_upload.and_then(|m| m.parts).unwrap_or_default();
        if wanted.is_empty() {
            return Err(with_message(
                S3ErrorCode::MalformedXML,
                "CompleteMultipartUpload names no parts",
            ));
        }
        let mut files = Vec::with_capacity(wanted.len());
        let mut prev = 0;
        let mut total = 0u64;
        for (n, w) in wanted.iter().enumerate() {
            let num = w.part_number.unwrap_or(0);
            if num <= prev {
                return Err(with_message(
                    S3ErrorCode::InvalidPartOrder,
                    "parts must be listed in ascending order",
                ));
            }
            prev = num;
            let Some(p) = stored.get(&num) else {
                return Err(with_message(
                    S3ErrorCode::InvalidPart,
                    format!("part {num} was not uploaded"),
                ));
            };
            if let Some(e) = &w.e_tag {
                if strip_quotes(e.value()) != strip_quotes(&p.etag) {
                    return Err(with_message(
                        S3ErrorCode::InvalidPart,
                        format!("part {num} has another ETag"),
                    ));
                }
            }
            if n + 1 < wanted.len() && p.size < multipart::MIN_PART {
                return Err(with_message(
                    S3ErrorCode::EntityTooSmall,
                    format!(
                        "part {num} has {} bytes; all but the last need 5 MiB",
                        p.size
                    ),
                ));
            }
            total += p.size;
            files.push(self.uploads.part_path(&i.upload_id, num)?);
        }
        let mut opts = PutOptions {
            content_type: upload.content_type.clone(),
            metadata: upload.metadata.clone(),
            ..Default::default()
        };
        opts.mode = match (&i.if_none_match, &i.if_match) {
            (Some(_), _) => PutMode::Create,
            (None, Some(m)) => PutMode::Update(format!("\"{}\"", strip_quotes(etag_condition(m)))),
            (None, None) => PutMode::Overwrite,
        };
        check_atomic(store.as_ref(), &opts.mode)?;
        let body = parts_stream(files).map_err(|e| {
            cairn::Error::new(ErrorKind::Unexpected, format!("reading a stored part: {e}"))
        });
        let r = self
            .write(
                store.as_ref(),
                &k,
                Box::pin(body),
                Some(total),
                opts,
                None,
                false,
            )
            .await?;
        self.uploads.remove(&i.upload_id).await?;
        let etag = match r.etag {
            Some(e) => Some(e),
            None => store.head(&k).await.ok().and_then(|m| m.etag),
        };
        Ok(S3Response::new(CompleteMultipartUploadOutput {
            bucket: Some(i.bucket),
            key: Some(i.key),
            e_tag: etag.map(|e| ETag::Strong(strip_quotes(&e).to_string())),
            ..Default::default()
        }))
    }
}

/// The parts' files, one after another, as a stream of 256 KiB chunks.
fn parts_stream(
    files: Vec<std::path::PathBuf>,
) -> impl futures::Stream<Item = std::io::Result<Bytes>> + Send {
    use tokio::io::AsyncReadExt;
    let state = (files.into_iter(), None::<tokio::fs::File>);
    futures::stream::try_unfold(state, |(mut files, mut cur)| async move {
        loop {
            let f = match cur.as_mut() {
                Some(f) => f,
                None => match files.next() {
                    Some(p) => cur.insert(tokio::fs::File::open(p).await?),
                    None => return Ok(None),
                },
            };
            let mut buf = vec![0u8; 256 * 1024];
            let n = f.read(&mut buf).await?;
            if n == 0 {
                cur = None;
                continue;
            }
            buf.truncate(n);
            return Ok(Some((Bytes::from(buf), (files, cur))));
        }
    })
}

/// A conditional write is refused unless the store enforces it atomically (a gateway that
/// said yes and then raced would be worse than one that says no).
fn check_atomic(store: &dyn Store, mode: &PutMode) -> S3Result<()> {
    let caps = store.capabilities();
    let ok = match mode {
        PutMode::Overwrite => true,
        PutMode::Create => caps.conditional_create,
        PutMode::Update(_) => caps.conditional_update,
    };
    if ok {
        Ok(())
    } else {
        Err(with_message(
            S3ErrorCode::NotImplemented,
            format!("{store} cannot enforce this condition atomically"),
        ))
    }
}

/// Allows unsigned requests (`--anonymous`); signed ones are still checked by s3s.
pub struct AllowAnonymous;

#[async_trait::async_trait]
impl s3s::access::S3Access for AllowAnonymous {
    async fn check(&self, _cx: &mut s3s::access::S3AccessContext<'_>) -> S3Result<()> {
        Ok(())
    }
}

/// The service behind the in-flight limits: every operation is SlowDown.
pub struct SlowDown;

#[async_trait::async_trait]
impl S3 for SlowDown {
    async fn list_buckets(
        &self,
        _req: S3Request<ListBucketsInput>,
    ) -> S3Result<S3Response<ListBucketsOutput>> {
        Err(with_message(
            S3ErrorCode::SlowDown,
            "too many requests in flight; retry with backoff",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_escape_is_one_to_one() {
        for (client, stored) in [
            ("agent_id", "agent_id"),
            ("cairn-sha256", "ucairn-sha256"),
            ("ucairn-x", "uucairn-x"),
            ("uucairn-x", "uuucairn-x"),
            ("u", "u"),
            ("user", "user"),
        ] {
            assert_eq!(escape_meta(client.to_string()), stored);
            assert_eq!(unescape_meta(stored), client);
        }
    }

    #[test]
    fn url_encoding_matches_s3() {
        assert_eq!(url_encode("a b/c+d%e~f_g.h-i"), "a%20b/c%2Bd%25e~f_g.h-i");
        assert_eq!(url_encode("ü"), "%C3%BC");
    }

    #[test]
    fn etag_lists_and_wildcards() {
        assert!(etag_matches("*", Some("\"x\"")));
        assert!(etag_matches("\"a\", \"x\"", Some("\"x\"")));
        assert!(etag_matches("x", Some("\"x\"")));
        assert!(!etag_matches("\"a\"", Some("\"x\"")));
        assert!(!etag_matches("\"a\"", None));
    }

    #[test]
    fn continuation_tokens_round_trip() {
        for name in ["a/", "über/x y", ""] {
            assert_eq!(token_decode(&token_encode(name)).unwrap(), name);
        }
        assert_eq!(
            token_decode("!!").unwrap_err().code(),
            &S3ErrorCode::InvalidArgument
        );
    }
}
