//! The sidecar: an object's content type and metadata in `.cairn/meta/<key>.json`, bound to
//! the one data file it describes.
//!
//! A sidecar names its data file by `(inode, mtime, size)`, read from the temp file before the
//! rename that places it (a rename keeps all three). A reader applies a sidecar only to the file
//! it names, so bytes the sidecar does not describe (a crash or a concurrent writer between
//! the two renames, another program's rewrite) read as an object without metadata:
//! unverifiable, never falsely corrupt. Bit rot keeps all three and is still caught.
//!
//! A commit renames the sidecar into place *before* the data, and the new sidecar also keeps
//! the record of the data it replaces (`previous`), so a crash between the two renames leaves
//! the old object with its own metadata, and after the data rename the new one has its own.

use crate::store::Metadata;
use serde::{Deserialize, Serialize};
use std::fs;
use std::os::unix::fs::MetadataExt;

/// One object's metadata and the data file it belongs to.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq, Eq)]
pub(super) struct Record {
    pub(super) size: u64,
    pub(super) mtime_ns: u64,
    /// Absent in sidecars written before the binding (size and mtime must match then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) ino: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) content_type: Option<String>,
    #[serde(default)]
    pub(super) metadata: Metadata,
}

impl Record {
    /// The record of the data file `m` with this content type and metadata.
    pub(super) fn new(m: &fs::Metadata, content_type: Option<String>, metadata: Metadata) -> Self {
        Record {
            size: m.len(),
            mtime_ns: super::files::mtime_ns(m),
            ino: Some(m.ino()),
            content_type,
            metadata,
        }
    }

    /// Whether this record was written for the data file `m`.
    pub(super) fn describes(&self, m: &fs::Metadata) -> bool {
        self.size == m.len()
            && self.mtime_ns == super::files::mtime_ns(m)
            && self.ino.is_none_or(|i| i == m.ino())
    }

    /// Whether there is anything to record.
    pub(super) fn is_empty(&self) -> bool {
        self.content_type.is_none() && self.metadata.is_empty()
    }
}

/// The file's contents: the current record and the one it replaced.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct Sidecar {
    #[serde(flatten)]
    pub(super) current: Record,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) previous: Option<Record>,
}

impl Sidecar {
    /// Parses a sidecar file; anything unreadable counts as no sidecar.
    pub(super) fn parse(bytes: &[u8]) -> Option<Sidecar> {
        serde_json::from_slice(bytes).ok()
    }

    /// The record that describes the data file `m`, if any.
    pub(super) fn describing(self, m: &fs::Metadata) -> Option<Record> {
        if self.current.describes(m) {
            return Some(self.current);
        }
        self.previous.filter(|p| p.describes(m))
    }

    pub(super) fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("sidecar serializes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta_of(dir: &std::path::Path, name: &str, body: &[u8]) -> fs::Metadata {
        let p = dir.join(name);
        let f = fs::File::create(&p).unwrap();
        std::io::Write::write_all(&mut &f, body).unwrap();
        super::super::files::stamp_and_sync(&f, true).unwrap();
        fs::metadata(&p).unwrap()
    }

    fn rec(m: &fs::Metadata, ct: &str) -> Record {
        Record::new(m, Some(ct.into()), Metadata::new())
    }

    #[test]
    fn a_record_describes_only_its_own_file() {
        let d = tempfile::tempdir().unwrap();
        let old = meta_of(d.path(), "old", b"same");
        let new = meta_of(d.path(), "new", b"same");
        let other = meta_of(d.path(), "other", b"same");
        let side = || Sidecar {
            current: rec(&new, "new"),
            previous: Some(rec(&old, "old")),
        };
        let parsed = || Sidecar::parse(&side().to_json()).unwrap();
        assert_eq!(
            parsed().describing(&new).unwrap().content_type.unwrap(),
            "new"
        );
        assert_eq!(
            parsed().describing(&old).unwrap().content_type.unwrap(),
            "old"
        );
        assert!(
            parsed().describing(&other).is_none(),
            "same size, other file"
        );
        assert_ne!(
            super::super::files::mtime_ns(&old),
            super::super::files::mtime_ns(&new),
            "stamps are unique"
        );
    }

    #[test]
    fn sidecars_without_an_inode_bind_by_size_and_mtime() {
        let d = tempfile::tempdir().unwrap();
        let m = meta_of(d.path(), "f", b"abc");
        let json = format!(
            r#"{{"size":3,"mtime_ns":{},"content_type":"text/plain","metadata":{{"a":"1"}}}}"#,
            super::super::files::mtime_ns(&m)
        );
        let r = Sidecar::parse(json.as_bytes())
            .unwrap()
            .describing(&m)
            .unwrap();
        assert_eq!(r.content_type.as_deref(), Some("text/plain"));
        let json = r#"{"size":3,"mtime_ns":1,"metadata":{}}"#;
        assert!(Sidecar::parse(json.as_bytes())
            .unwrap()
            .describing(&m)
            .is_none());
    }
}
