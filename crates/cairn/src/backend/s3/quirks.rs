//! What each S3 provider can do, as data. The store reads this table; nothing else in the
//! backend branches on a provider's name.
//!
//! | provider | If-None-Match PUT | If-Match PUT | copy if-not-exists | verifies x-amz-checksum-sha256 | verifies x-amz-checksum-crc64nvme | path style |
//! |----------|-------------------|--------------|--------------------|--------------------------------|-----------------------------------|------------|
//! | aws      | yes               | yes          | If-None-Match      | yes                            | yes                               | no         |
//! | r2       | yes               | yes          | cf-copy-destination-if-none-match | not assumed     | not assumed                       | yes        |
//! | minio    | yes               | yes          | emulated           | yes                            | not assumed (recent releases only) | yes       |
//! | garage   | ignored           | ignored      | emulated           | yes                            | yes (2.x; tested)                 | yes        |
//! | ceph     | yes               | yes          | emulated           | not assumed (RGW >= 19 only)   | not assumed                       | yes        |
//! | moto     | yes               | yes          | If-None-Match      | no (accepts wrong sums)        | no                                | yes        |
//! | generic  | not assumed       | not assumed  | emulated           | not assumed                    | not assumed                       | yes        |
//!
//! Which row applies: the `provider` option if given; else `aws` when no endpoint is set or
//! the endpoint is AWS's own (`*.amazonaws.com`); else `generic`. An unknown server thus
//! claims no conditional put it might ignore (Garage accepts `If-None-Match` and overwrites
//! anyway); `cairn health` probes what a server really enforces.
//!
//! Every provider keeps `_` in metadata header names except moto, whose WSGI server drops
//! such headers (`underscore_headers`), and reports when a multipart upload started except
//! moto, which answers one fixed date for all (`upload_times`).
//!
//! Garage and moto were measured on this machine (see docs/design.md); AWS from its docs;
//! R2, MinIO and Ceph from their docs, conservative where unsure. "Emulated" means a
//! head-then-write check that is not atomic, so the matching capability stays `false`.

use crate::error::{Error, Result};

pub use crate::provider::PROVIDERS;

/// How the server can refuse a copy onto an existing key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyIfNotExists {
    /// A request header with value `*`; the server answers 412 when the key exists.
    Header(&'static str),
    /// The server cannot; cairn checks with a head first (not atomic).
    Emulated,
}

/// One provider's behaviour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quirks {
    /// The provider name, as in [`PROVIDERS`].
    pub name: &'static str,
    /// `If-None-Match: *` on PUT is enforced.
    pub conditional_create: bool,
    /// `If-Match` on PUT is enforced.
    pub conditional_update: bool,
    /// `If-Match` on GET is enforced.
    pub conditional_get: bool,
    /// Copy onto an existing key can be refused by the server.
    pub copy_if_not_exists: CopyIfNotExists,
    /// The server rejects an upload whose `x-amz-checksum-sha256` is wrong.
    pub server_checksum: bool,
    /// The server rejects an upload (single or multipart) whose `x-amz-checksum-crc64nvme` is
    /// wrong, so unsigned payloads keep a server-side transit check.
    pub server_crc64nvme: bool,
    /// Path-style addressing unless the config says otherwise.
    pub path_style: bool,
    /// Texts in a 403 `AccessDenied` message that mean the credentials are wrong rather than
    /// lacking permission. Garage answers an unknown key ("No such key: GK...") and a bad
    /// signature ("Invalid signature") with `403 AccessDenied` and nothing else to tell them
    /// from a real denial (checked against Garage 2.x), so only the message can.
    pub unauthenticated_messages: &'static [&'static str],
    /// The server keeps `_` in header names (moto's WSGI server drops such headers).
    pub underscore_headers: bool,
    /// ListMultipartUploads reports when each upload was really started (moto answers one
    /// fixed date, 2010-11-10, for every upload).
    pub upload_times: bool,
    /// Smallest part but the last.
    pub min_part_size: u64,
    /// Largest part.
    pub max_part_size: u64,
    /// Most parts in one upload.
    pub max_parts: u32,
    /// Bucket settings the server implements (Garage answers NotImplemented or drops them).
    pub bucket: BucketFeatures,
}

/// Which bucket settings a provider implements; `cairn bucket` and `cairn setup` say what a
/// server cannot do before changing anything, and read back what they set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BucketFeatures {
    /// Bucket versioning.
    pub versioning: bool,
    /// Default bucket encryption.
    pub encryption: bool,
    /// Bucket and object ACLs.
    pub acls: bool,
    /// Bucket policies.
    pub policy: bool,
    /// S3 Object Lock at bucket creation.
    pub object_lock: bool,
    /// Lifecycle transitions to other storage classes are kept (Garage keeps only expiry).
    pub lifecycle_transitions: bool,
}

const ALL_FEATURES: BucketFeatures = BucketFeatures {
    versioning: true,
    encryption: true,
    acls: true,
    policy: true,
    object_lock: true,
    lifecycle_transitions: true,
};

const MIB: u64 = 1024 * 1024;

const BASE: Quirks = Quirks {
    name: "aws",
    conditional_create: true,
    conditional_update: true,
    conditional_get: true,
    copy_if_not_exists: CopyIfNotExists::Header("if-none-match"),
    server_checksum: true,
    server_crc64nvme: true,
    path_style: false,
    // Garage says AccessDenied for bad keys; no server says these words for a real denial.
    unauthenticated_messages: &["No such key", "Invalid signature"],
    underscore_headers: true,
    upload_times: true,
    min_part_size: 5 * MIB,
    max_part_size: 5 * 1024 * MIB,
    max_parts: 10_000,
    bucket: ALL_FEATURES,
};

const TABLE: &[Quirks] = &[
    BASE,
    Quirks {
        name: "r2",
        server_crc64nvme: false,
        copy_if_not_exists: CopyIfNotExists::Header("cf-copy-destination-if-none-match"),
        server_checksum: false,
        path_style: true,
        ..BASE
    },
    Quirks {
        name: "minio",
        server_crc64nvme: false,
        copy_if_not_exists: CopyIfNotExists::Emulated,
        path_style: true,
        ..BASE
    },
    Quirks {
        name: "garage",
        conditional_create: false,
        conditional_update: false,
        copy_if_not_exists: CopyIfNotExists::Emulated,
        server_checksum: true,
        path_style: true,
        unauthenticated_messages: &["No such key", "Invalid signature"],
        // Measured against Garage 2.x (errors_s3.rs, cli_bucket.rs): NotImplemented, or a
        // lifecycle saved without its transitions.
        bucket: BucketFeatures {
            versioning: false,
            encryption: false,
            acls: false,
            policy: false,
            object_lock: false,
            lifecycle_transitions: false,
        },
        ..BASE
    },
    Quirks {
        name: "ceph",
        server_crc64nvme: false,
        copy_if_not_exists: CopyIfNotExists::Emulated,
        server_checksum: false,
        path_style: true,
        ..BASE
    },
    Quirks {
        name: "moto",
        server_crc64nvme: false,
        // moto ignores If-None-Match on CopyObject.
        copy_if_not_exists: CopyIfNotExists::Emulated,
        server_checksum: false,
        path_style: true,
        underscore_headers: false,
        upload_times: false,
        ..BASE
    },
    // Any other server: claim nothing it might not do.
    Quirks {
        name: "generic",
        conditional_create: false,
        conditional_update: false,
        copy_if_not_exists: CopyIfNotExists::Emulated,
        server_checksum: false,
        server_crc64nvme: false,
        path_style: true,
        ..BASE
    },
];

impl Quirks {
    /// The row for a store: `provider` if given, else AWS's for AWS's own endpoints (none
    /// set, or a host under `amazonaws.com`), else the conservative `generic` row.
    pub fn resolve(provider: Option<&str>, endpoint: Option<&str>) -> Result<&'static Quirks> {
        match provider {
            Some(p) => Quirks::for_provider(Some(p)),
            None if endpoint.is_none_or(is_aws_endpoint) => Quirks::for_provider(Some("aws")),
            None => Quirks::for_provider(Some("generic")),
        }
    }

    /// The quirks of `provider` (`None`: AWS).
    pub fn for_provider(provider: Option<&str>) -> Result<&'static Quirks> {
        let name = provider.unwrap_or("aws").to_ascii_lowercase();
        TABLE.iter().find(|q| q.name == name).ok_or_else(|| {
            Error::invalid(format!(
                "unknown provider {name:?}; use one of {}",
                PROVIDERS.join(", ")
            ))
        })
    }
}

/// Whether `endpoint` is AWS's own S3 (`https://s3.eu-west-1.amazonaws.com`, a bucket-style
/// host, a VPC endpoint, China's `amazonaws.com.cn`).
fn is_aws_endpoint(endpoint: &str) -> bool {
    let Some(host) = url::Url::parse(endpoint)
        .ok()
        .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
    else {
        return false;
    };
    [".amazonaws.com", ".amazonaws.com.cn"]
        .iter()
        .any(|d| host.ends_with(d))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_provider_has_a_row() {
        for p in PROVIDERS {
            assert_eq!(Quirks::for_provider(Some(p)).unwrap().name, *p);
        }
        assert_eq!(TABLE.len(), PROVIDERS.len());
        assert_eq!(Quirks::for_provider(None).unwrap().name, "aws");
        assert!(Quirks::for_provider(Some("nope")).is_err());
    }

    #[test]
    fn garage_does_not_claim_conditional_puts() {
        let g = Quirks::for_provider(Some("garage")).unwrap();
        assert!(!g.conditional_create && !g.conditional_update && g.server_checksum);
        let m = Quirks::for_provider(Some("moto")).unwrap();
        assert!(m.conditional_create && m.conditional_update && !m.server_checksum);
    }

    #[test]
    fn only_aws_endpoints_get_the_aws_row() {
        let name = |p: Option<&str>, e: Option<&str>| Quirks::resolve(p, e).unwrap().name;
        assert_eq!(name(None, None), "aws");
        assert_eq!(
            name(None, Some("https://s3.eu-west-1.amazonaws.com")),
            "aws"
        );
        assert_eq!(
            name(None, Some("https://S3.cn-north-1.amazonaws.com.cn/")),
            "aws"
        );
        // Any other server, Garage-like ones that ignore If-None-Match included.
        for e in [
            "http://127.0.0.1:3900",
            "https://storage.example.com",
            "https://amazonaws.com.evil.example",
            "not a url",
        ] {
            let q = Quirks::resolve(None, Some(e)).unwrap();
            assert_eq!(q.name, "generic", "{e}");
            assert!(!q.conditional_create && !q.conditional_update, "{e}");
            assert_eq!(q.copy_if_not_exists, CopyIfNotExists::Emulated, "{e}");
        }
        // An explicit provider wins either way.
        assert_eq!(name(Some("moto"), Some("http://127.0.0.1:5000")), "moto");
        assert_eq!(name(Some("generic"), None), "generic");
    }
}
