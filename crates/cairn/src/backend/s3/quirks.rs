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
//!
//! Every provider keeps `_` in metadata header names except moto, whose WSGI server drops
//! such headers (`underscore_headers`).
//!
//! Garage and moto were measured on this machine (see docs/design.md); AWS from its docs;
//! R2, MinIO and Ceph from their docs, conservative where unsure. "Emulated" means a
//! head-then-write check that is not atomic, so the matching capability stays `false`.

use crate::error::{Error, Result};

/// Provider names accepted by the `provider` option.
pub const PROVIDERS: &[&str] = &["aws", "r2", "minio", "garage", "ceph", "moto"];

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
    /// lacking permission (Garage reports unknown keys and bad signatures this way).
    pub unauthenticated_messages: &'static [&'static str],
    /// The server keeps `_` in header names (moto's WSGI server drops such headers).
    pub underscore_headers: bool,
    /// Smallest part but the last.
    pub min_part_size: u64,
    /// Largest part.
    pub max_part_size: u64,
    /// Most parts in one upload.
    pub max_parts: u32,
}

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
    min_part_size: 5 * MIB,
    max_part_size: 5 * 1024 * MIB,
    max_parts: 10_000,
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
        ..BASE
    },
];

impl Quirks {
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
}
