//! `du` for a bucket prefix: counts and stored bytes, in total, by storage class and by the
//! first levels of the key, from one streamed listing (S3's own ListObjectsV2, which names
//! each object's storage class; object_store's listing does not).

use super::Admin;
use crate::error::Result;
use crate::ops::Reporter;
use crate::stats::StorageStats;

impl Admin {
    /// Totals for every object under `prefix` (full key in the bucket), grouped by the first
    /// `depth` levels of the key below `strip` (the part of `prefix` the caller does not see).
    /// Memory holds one page and one entry per group, whatever the number of objects.
    /// Each object counted is reported through `on_discovered(1, size)`.
    pub async fn stats(
        &self,
        prefix: &str,
        strip: &str,
        depth: usize,
        reporter: &dyn Reporter,
    ) -> Result<StorageStats> {
        let mut stats = StorageStats::default();
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(self.bucket())
            .prefix(prefix)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| self.err(e, "list_objects_v2"))?;
            for o in page.contents() {
                let key = o.key().unwrap_or_default();
                // The checksum layer's own records are not the user's objects.
                if key.starts_with(crate::layer::checksum::MANIFEST_PREFIX) {
                    continue;
                }
                let rel = key.strip_prefix(strip).unwrap_or(key);
                let class = o.storage_class().map(|c| c.as_str()).unwrap_or("STANDARD");
                let size = o.size().unwrap_or(0).max(0) as u64;
                stats.add(rel, size, Some(class), depth);
                reporter.on_discovered(1, size);
            }
        }
        Ok(stats)
    }
}
