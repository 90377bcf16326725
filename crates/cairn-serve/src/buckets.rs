//! Bucket names to stores: fixed `--bucket NAME=URL` mappings, plus (with `--root DIR`) every
//! top-level directory of DIR as a local store, created and removed by CreateBucket and
//! DeleteBucket.

use crate::errors::{internal, to_s3, with_message};
use cairn::backend::local::LocalStore;
use cairn::{DynStore, ListOptions};
use futures::StreamExt;
use s3s::{S3ErrorCode, S3Result};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// Where the gateway's buckets live.
#[derive(Debug, Default)]
pub struct Buckets {
    fixed: BTreeMap<String, DynStore>,
    root: Option<PathBuf>,
    /// Stores opened under `root`, so each bucket directory is opened once.
    opened: Mutex<HashMap<String, DynStore>>,
}

impl Buckets {
    /// Buckets from fixed mappings and an optional root directory.
    pub fn new(fixed: BTreeMap<String, DynStore>, root: Option<PathBuf>) -> Self {
        Buckets {
            fixed,
            root,
            opened: Mutex::default(),
        }
    }

    fn dir(&self, name: &str) -> Option<PathBuf> {
        let root = self.root.as_ref()?;
        if !valid_name(name) {
            return None;
        }
        Some(root.join(name))
    }

    /// The store behind `name`, or NoSuchBucket.
    pub fn get(&self, name: &str) -> S3Result<DynStore> {
        if let Some(s) = self.fixed.get(name) {
            return Ok(s.clone());
        }
        let no_such = || with_message(S3ErrorCode::NoSuchBucket, format!("no bucket {name:?}"));
        let dir = self.dir(name).ok_or_else(no_such)?;
        let mut opened = self.opened.lock().unwrap();
        if let Some(s) = opened.get(name) {
            if dir.is_dir() {
                return Ok(s.clone());
            }
            opened.remove(name);
            return Err(no_such());
        }
        if !dir.is_dir() {
            return Err(no_such());
        }
        let store: DynStore = Arc::new(LocalStore::new(&dir).map_err(to_s3)?);
        opened.insert(name.to_string(), store.clone());
        Ok(store)
    }

    /// Every bucket name, sorted, with the directory's modification time where there is one.
    pub fn list(&self) -> S3Result<Vec<(String, Option<std::time::SystemTime>)>> {
        let mut out: BTreeMap<String, Option<std::time::SystemTime>> =
            self.fixed.keys().map(|k| (k.clone(), None)).collect();
        if let Some(root) = &self.root {
            let rd = std::fs::read_dir(root).map_err(|e| internal("reading the root", e))?;
            for entry in rd.flatten() {
                let Ok(name) = entry.file_name().into_string() else {
                    continue;
                };
                if !valid_name(&name) || !entry.path().is_dir() {
                    continue;
                }
                let time = entry.metadata().ok().and_then(|m| m.modified().ok());
                out.entry(name).or_insert(time);
            }
        }
        Ok(out.into_iter().collect())
    }

    /// CreateBucket: a new directory under the root.
    pub fn create(&self, name: &str) -> S3Result<()> {
        if self.fixed.contains_key(name) {
            return Err(with_message(
                S3ErrorCode::BucketAlreadyOwnedByYou,
                format!("bucket {name:?} exists"),
            ));
        }
        if !valid_name(name) {
            return Err(with_message(
                S3ErrorCode::InvalidBucketName,
                format!("{name:?} is not a valid bucket name"),
            ));
        }
        let Some(dir) = self.dir(name) else {
            return Err(with_message(
                S3ErrorCode::NotImplemented,
                "this gateway serves fixed buckets (--bucket); start it with --root DIR to create buckets",
            ));
        };
        match std::fs::create_dir(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(with_message(
                S3ErrorCode::BucketAlreadyOwnedByYou,
                format!("bucket {name:?} exists"),
            )),
            Err(e) => Err(internal("creating the bucket directory", e)),
        }
    }

    /// DeleteBucket: only an empty bucket under the root.
    pub async fn delete(&self, name: &str) -> S3Result<()> {
        let store = self.get(name)?;
        if self.fixed.contains_key(name) {
            return Err(with_message(
                S3ErrorCode::NotImplemented,
                format!("bucket {name:?} is mapped by --bucket and cannot be deleted"),
            ));
        }
        if store
            .list(ListOptions::recursive(""))
            .next()
            .await
            .is_some()
        {
            return Err(with_message(
                S3ErrorCode::BucketNotEmpty,
                format!("bucket {name:?} is not empty"),
            ));
        }
        let dir = self.dir(name).expect("get found it under the root");
        self.opened.lock().unwrap().remove(name);
        std::fs::remove_dir_all(&dir).map_err(|e| internal("removing the bucket directory", e))
    }
}

/// S3's bucket-name rules (3-63 of lowercase letters, digits, `-` and `.`); a name starting
/// with `.` (the gateway's own state) never is one.
pub fn valid_name(name: &str) -> bool {
    s3s::path::check_bucket_name(name)
}
