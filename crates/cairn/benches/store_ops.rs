//! Per-operation latency of put/get/delete/list at 1 KiB .. 1 MiB, on the local store and,
//! when `CAIRN_BENCH_S3_URL` is set (e.g. `s3://bucket/bench?endpoint=http://127.0.0.1:3900&
//! region=garage&provider=garage`, credentials from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY),
//! on that S3 store. On demand only: `cargo bench -p cairn --bench store_ops`.

use bytes::Bytes;
use cairn::{DynStore, Key, StoreExt};
use divan::Bencher;
use futures::TryStreamExt;
use std::sync::LazyLock;
use tokio::runtime::Runtime;

const SIZES: &[usize] = &[1024, 10 * 1024, 100 * 1024, 1024 * 1024];
/// Objects in the listing benchmark.
const LIST_N: usize = 100;

static RT: LazyLock<Runtime> = LazyLock::new(|| Runtime::new().expect("tokio runtime"));

static LOCAL: LazyLock<DynStore> = LazyLock::new(|| {
    // Leaked: the directory must outlive every benchmark.
    let dir = Box::leak(Box::new(tempfile::tempdir().expect("temp dir")));
    let url = format!("file://{}", dir.path().display());
    RT.block_on(cairn::open(&url)).expect("local store")
});

static S3: LazyLock<Option<DynStore>> = LazyLock::new(|| {
    let url = std::env::var("CAIRN_BENCH_S3_URL").ok()?;
    // A fresh prefix per run, so runs never see each other's objects.
    let (base, query) = url.split_once('?').unwrap_or((&url, ""));
    let url = format!(
        "{}/{:08x}?{query}",
        base.trim_end_matches('/'),
        rand::random::<u32>()
    );
    let store = RT
        .block_on(cairn::open(&url))
        .unwrap_or_else(|e| panic!("open {url}: {e}"));
    RT.block_on(store.health_check())
        .unwrap_or_else(|e| panic!("{url}: {e}"));
    Some(store)
});

fn key(s: String) -> Key {
    Key::new(s).expect("valid key")
}

fn data(size: usize) -> Bytes {
    (0..size)
        .map(|i| (i * 31 % 251) as u8)
        .collect::<Vec<u8>>()
        .into()
}

fn put(b: Bencher, store: &DynStore, size: usize) {
    let (k, d) = (key(format!("put/{size}")), data(size));
    b.counter(divan::counter::BytesCount::new(size))
        .bench(|| RT.block_on(store.put(&k, d.clone())).expect("put"));
}

fn get(b: Bencher, store: &DynStore, size: usize) {
    let k = key(format!("get/{size}"));
    RT.block_on(store.put(&k, data(size))).expect("put");
    b.counter(divan::counter::BytesCount::new(size))
        .bench(|| RT.block_on(store.get(&k)).expect("get"));
}

fn delete(b: Bencher, store: &DynStore, size: usize) {
    let d = data(size);
    let n = std::sync::atomic::AtomicU64::new(0);
    b.with_inputs(|| {
        let i = n.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let k = key(format!("delete/{size}/{i}"));
        RT.block_on(store.put(&k, d.clone())).expect("put");
        k
    })
    .bench_values(|k| RT.block_on(store.delete(&k)).expect("delete"));
}

fn list(b: Bencher, store: &DynStore, size: usize) {
    let d = data(size);
    let prefix = format!("list/{size}/");
    RT.block_on(async {
        for i in 0..LIST_N {
            store
                .put(&key(format!("{prefix}{i:04}")), d.clone())
                .await
                .expect("put");
        }
    });
    b.counter(divan::counter::ItemsCount::new(LIST_N))
        .bench(|| {
            let n = RT.block_on(async {
                store
                    .list_objects(&prefix)
                    .try_fold(0, |n, _| async move { Ok(n + 1) })
                    .await
            });
            assert_eq!(n.expect("list"), LIST_N);
        });
}

mod local {
    use super::*;

    #[divan::bench(args = SIZES)]
    fn put(b: Bencher, size: usize) {
        super::put(b, &LOCAL, size)
    }
    #[divan::bench(args = SIZES)]
    fn get(b: Bencher, size: usize) {
        super::get(b, &LOCAL, size)
    }
    #[divan::bench(args = SIZES)]
    fn delete(b: Bencher, size: usize) {
        super::delete(b, &LOCAL, size)
    }
    #[divan::bench(args = SIZES)]
    fn list(b: Bencher, size: usize) {
        super::list(b, &LOCAL, size)
    }
}

/// Runs only with CAIRN_BENCH_S3_URL; otherwise each bench measures nothing.
mod s3 {
    use super::*;

    fn with_s3(b: Bencher, size: usize, f: fn(Bencher, &DynStore, usize)) {
        match S3.as_ref() {
            Some(s) => f(b, s, size),
            None => b.bench(|| ()),
        }
    }

    #[divan::bench(args = SIZES, sample_count = 20)]
    fn put(b: Bencher, size: usize) {
        with_s3(b, size, super::put)
    }
    #[divan::bench(args = SIZES, sample_count = 20)]
    fn get(b: Bencher, size: usize) {
        with_s3(b, size, super::get)
    }
    #[divan::bench(args = SIZES, sample_count = 20)]
    fn delete(b: Bencher, size: usize) {
        with_s3(b, size, super::delete)
    }
    #[divan::bench(args = SIZES, sample_count = 10)]
    fn list(b: Bencher, size: usize) {
        with_s3(b, size, super::list)
    }
}

fn main() {
    if S3.is_none() {
        eprintln!("CAIRN_BENCH_S3_URL is not set: the s3 benchmarks measure nothing");
    }
    divan::main();
}
