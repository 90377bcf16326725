//! `bench`: latency and throughput of any store, as a versioned JSON report, with regression
//! checks against an earlier report.
//!
//! For each object size, `ops` objects are written, read (first read = `get`, second read of
//! the same objects = `get_warm` when `cold_warm` is on), listed and deleted, `concurrency` at a
//! time; each operation's latency is kept for p50/p99. A large object then goes through the
//! transfer engine ([`upload_file`](crate::transfer::upload_file) /
//! [`download_file`](crate::transfer::download_file)) for MB/s. MB is 10^6 bytes.
//! Everything is written under a fresh prefix and deleted at the end.

pub mod history;
mod report;

pub use report::{
    compare, human_size, BenchReport, BenchResult, MachineInfo, Regression, SCHEMA_VERSION,
};

use crate::error::{Error, ErrorKind, Result};
use crate::key::Key;
use crate::ops::reporter::{Action, Item, Outcome, Reporter, Totals};
use crate::store::{Store, StoreExt};
use crate::transfer::{download_file, upload_file, TransferOptions};
use bytes::Bytes;
use chrono::Utc;
use futures::stream::{self, StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::time::Instant;

/// What to measure.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BenchOptions {
    /// Object sizes in bytes for the per-operation runs.
    pub sizes: Vec<u64>,
    /// Objects per size (each is put, read, and deleted once).
    pub ops: usize,
    /// Operations in flight at once.
    pub concurrency: usize,
    /// Size of the large object sent through the transfer engine; 0 skips it.
    pub large_object_size: u64,
    /// Read every object twice: `get` (cold, first read) and `get_warm`.
    pub cold_warm: bool,
    /// List calls per size.
    pub lists: usize,
}

impl Default for BenchOptions {
    fn default() -> Self {
        BenchOptions {
            sizes: vec![1024, 10 * 1024, 100 * 1024, 1024 * 1024],
            ops: 200,
            concurrency: 16,
            large_object_size: 256 * 1024 * 1024,
            cold_warm: true,
            lists: 5,
        }
    }
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn result(
    op: &str,
    size: u64,
    per_op: u64,
    conc: usize,
    mut lat_ms: Vec<f64>,
    secs: f64,
    payload: bool,
) -> BenchResult {
    lat_ms.sort_by(|a, b| a.total_cmp(b));
    let ops = lat_ms.len() as u64;
    let secs = secs.max(1e-9);
    BenchResult {
        op: op.into(),
        size,
        ops,
        objects_per_op: per_op,
        concurrency: conc,
        seconds: secs,
        ops_per_sec: ops as f64 / secs,
        mb_per_sec: if payload {
            (ops * per_op * size) as f64 / secs / 1e6
        } else {
            0.0
        },
        p50_ms: percentile(&lat_ms, 0.50),
        p99_ms: percentile(&lat_ms, 0.99),
    }
}

/// Runs `f(0..n)`, `conc` at a time; returns each latency (ms) and the wall time (s).
async fn timed<F, Fut>(n: usize, conc: usize, f: F) -> Result<(Vec<f64>, f64)>
where
    F: Fn(usize) -> Fut + Sync,
    Fut: Future<Output = Result<()>> + Send,
{
    let start = Instant::now();
    let f = &f;
    let lat = stream::iter(0..n)
        .map(|i| async move {
            let t = Instant::now();
            f(i).await?;
            Ok::<f64, Error>(t.elapsed().as_secs_f64() * 1000.0)
        })
        .buffer_unordered(conc.max(1))
        .boxed()
        .try_collect()
        .await?;
    Ok((lat, start.elapsed().as_secs_f64()))
}

fn random_bytes(n: usize) -> Bytes {
    use rand::RngCore;
    let mut v = vec![0u8; n];
    rand::rng().fill_bytes(&mut v);
    v.into()
}

fn phase_key(op: &str, size: u64) -> Key {
    Key::new(format!("bench/{op}/{}", human_size(size))).expect("valid key")
}

/// Runs the benchmark on `store`, reporting each phase as an item, and returns the report.
/// Objects go under a fresh `cairn-bench-<random>/` prefix, removed afterwards (also on error,
/// best-effort).
pub async fn run_bench(
    store: &dyn Store,
    opts: &BenchOptions,
    reporter: &dyn Reporter,
) -> Result<BenchReport> {
    if opts.ops == 0 && opts.large_object_size == 0 {
        return Err(Error::invalid(
            "nothing to measure: ops and large_object_size are both 0",
        ));
    }
    let timestamp = Utc::now();
    let root = format!("cairn-bench-{:016x}", rand::random::<u64>());
    let phases = opts.sizes.len() as u64 * (4 + opts.cold_warm as u64)
        + 2 * (opts.large_object_size > 0) as u64;
    reporter.on_start(Totals {
        objects: Some(phases),
        bytes: None,
    });
    let r = run_phases(store, opts, reporter, &root).await;
    // Best-effort cleanup of anything a failed phase left.
    let left: Vec<Key> = store
        .list_objects(&format!("{root}/"))
        .filter_map(|m| async move { m.ok().map(|m| m.key) })
        .collect()
        .await;
    let _ = store.delete_many(left).await;
    let results = r?;
    let report = BenchReport {
        schema_version: SCHEMA_VERSION,
        timestamp,
        store: store.to_string(),
        commit: None,
        machine: MachineInfo::current(),
        options: opts.clone(),
        results,
    };
    reporter.on_finish(&Default::default());
    Ok(report)
}

async fn run_phases(
    store: &dyn Store,
    opts: &BenchOptions,
    reporter: &dyn Reporter,
    root: &str,
) -> Result<Vec<BenchResult>> {
    let mut results = Vec::new();
    let conc = opts.concurrency.max(1);
    let n = opts.ops;
    let phase = |op: &str, size: u64, res: &BenchResult| {
        let key = phase_key(op, size);
        let item = Item {
            key: &key,
            action: Action::Transfer,
            size: Some(size),
        };
        reporter.on_item_start(&item);
        reporter.on_item_done(
            &item,
            &Outcome::Transferred {
                bytes: res.ops * res.objects_per_op * size,
            },
        );
    };
    for &size in opts.sizes.iter().filter(|_| n > 0) {
        let data = random_bytes(size as usize);
        let prefix = format!("{root}/{size}/");
        let keys: Vec<Key> = (0..n)
            .map(|i| Key::new(format!("{prefix}{i:06}")))
            .collect::<Result<_>>()?;
        let keys = &keys;
        let data = &data;

        let (lat, secs) = timed(n, conc, |i| async move {
            store.put(&keys[i], data.clone()).await.map(|_| ())
        })
        .await?;
        results.push(result("put", size, 1, conc, lat, secs, true));
        phase("put", size, results.last().unwrap());

        let reads: &[&str] = if opts.cold_warm {
            &["get", "get_warm"]
        } else {
            &["get"]
        };
        for op in reads {
            let (lat, secs) = timed(n, conc, |i| async move {
                let got = store.get(&keys[i]).await?;
                if got.len() as u64 != size {
                    return Err(Error::new(
                        ErrorKind::Integrity,
                        format!("read {} bytes of a {size}-byte object", got.len()),
                    )
                    .with_key(keys[i].as_str()));
                }
                Ok(())
            })
            .await?;
            results.push(result(op, size, 1, conc, lat, secs, true));
            phase(op, size, results.last().unwrap());
        }

        let lists = opts.lists.max(1);
        let prefix = &prefix;
        let (lat, secs) = timed(lists, 1, |_| async move {
            let count = store
                .list_objects(prefix)
                .try_fold(0usize, |c, _| async move { Ok(c + 1) })
                .await?;
            if count != n {
                return Err(Error::new(
                    ErrorKind::Unexpected,
                    format!("listed {count} objects, wrote {n}"),
                ));
            }
            Ok(())
        })
        .await?;
        results.push(result("list", size, n as u64, 1, lat, secs, false));
        phase("list", size, results.last().unwrap());

        let (lat, secs) = timed(n, conc, |i| async move { store.delete(&keys[i]).await }).await?;
        results.push(result("delete", size, 1, conc, lat, secs, false));
        phase("delete", size, results.last().unwrap());
    }

    if opts.large_object_size > 0 {
        let size = opts.large_object_size;
        let dir = tempfile::tempdir().map_err(Error::from)?;
        let src = dir.path().join("large.bin");
        let dst = dir.path().join("large.out");
        let p = src.clone();
        crate::transfer::blocking(move || {
            use std::io::Write;
            let mut f = std::io::BufWriter::new(std::fs::File::create(&p)?);
            let chunk = random_bytes(1024 * 1024);
            let mut left = size;
            while left > 0 {
                let n = left.min(chunk.len() as u64) as usize;
                f.write_all(&chunk[..n])?;
                left -= n as u64;
            }
            f.flush()?;
            Ok(())
        })
        .await?;
        let key = Key::new(format!("{root}/large.bin"))?;
        let topts = TransferOptions::default();
        let quiet = crate::ops::NoReporter;
        let t = Instant::now();
        upload_file(store, &key, &src, &topts, &quiet).await?;
        let up = t.elapsed().as_secs_f64();
        results.push(result(
            "large_upload",
            size,
            1,
            topts.concurrency,
            vec![up * 1000.0],
            up,
            true,
        ));
        phase("large_upload", size, results.last().unwrap());
        let t = Instant::now();
        let meta = download_file(store, &key, &dst, &topts, &quiet).await?;
        let down = t.elapsed().as_secs_f64();
        if meta.size != size {
            return Err(Error::new(
                ErrorKind::Integrity,
                format!("downloaded {} of {size} bytes", meta.size),
            ));
        }
        results.push(result(
            "large_download",
            size,
            1,
            topts.concurrency,
            vec![down * 1000.0],
            down,
            true,
        ));
        phase("large_download", size, results.last().unwrap());
        store.delete(&key).await?;
    }
    Ok(results)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(|x| x as f64).collect();
        assert_eq!(percentile(&v, 0.5), 50.0);
        assert_eq!(percentile(&v, 0.99), 99.0);
        assert_eq!(percentile(&[7.0], 0.99), 7.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn run_bench_on_memory_measures_every_phase() {
        let store = crate::backend::memory::MemoryStore::new();
        let opts = BenchOptions {
            sizes: vec![1024, 4096],
            ops: 20,
            concurrency: 4,
            large_object_size: 3 * 1024 * 1024 + 5,
            cold_warm: true,
            lists: 2,
        };
        let rec = crate::ops::Recorder::new();
        let r = run_bench(&store, &opts, &rec).await.unwrap();
        let ops: Vec<&str> = r.results.iter().map(|r| r.op.as_str()).collect();
        assert_eq!(
            ops,
            [
                "put",
                "get",
                "get_warm",
                "list",
                "delete",
                "put",
                "get",
                "get_warm",
                "list",
                "delete",
                "large_upload",
                "large_download"
            ]
        );
        for res in &r.results {
            assert!(res.ops_per_sec > 0.0 && res.p99_ms >= res.p50_ms, "{res:?}");
        }
        assert_eq!(
            r.results[3].objects_per_op, 20,
            "a list covers every object"
        );
        assert!(
            crate::testkit::all_keys(&store, "").await.is_empty(),
            "bench cleans up"
        );
        assert_eq!(rec.done().len(), 12, "one item per phase");
        assert_eq!(r.store, "memory://");
    }
}
