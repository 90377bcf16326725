//! Linear work for compressed ranged downloads: process CPU seconds to download a compressible
//! (JSON-lines) object through the parallel ranged downloader (`transfer::download_file`, 8 MiB
//! ranges) from the memory store, with and without zstd, and to decompress it alone.
//!
//! `cargo run --release -p cairn --example layer_linear [MiB]` (default 256).

use cairn::backend::memory::MemoryStore;
use cairn::layer::compress::{compress_bytes, decompress_bytes};
use cairn::layer::Compression;
use cairn::ops::reporter::NoReporter;
use cairn::transfer::{download_file, TransferOptions};
use cairn::{Config, DynStore, Key, StoreExt};
use std::sync::Arc;

fn cpu_seconds() -> f64 {
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let t = |v: libc::timeval| v.tv_sec as f64 + v.tv_usec as f64 / 1e6;
    t(u.ru_utime) + t(u.ru_stime)
}

fn stack(compression: &str) -> DynStore {
    let config = Config {
        compression: Some(compression.into()),
        ..Default::default()
    };
    cairn::layer::stack::apply(Arc::new(MemoryStore::new()), &config).unwrap()
}

#[tokio::main]
async fn main() {
    let mib: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse().expect("size in MiB"))
        .unwrap_or(256);
    let data = cairn::testkit::matrix::json_lines(mib << 20, 1);
    let dir = tempfile::tempdir().unwrap();
    let key = Key::new("big.jsonl").unwrap();
    let opts = TransferOptions {
        durable: false,
        ..Default::default()
    };
    let mut cpu = Vec::new();
    for c in ["none", "zstd"] {
        let store = stack(c);
        store.put(&key, data.clone()).await.unwrap();
        let path = dir.path().join(c);
        let t0 = cpu_seconds();
        download_file(&*store, &key, &path, &opts, &NoReporter)
            .await
            .unwrap();
        let t = cpu_seconds() - t0;
        assert!(std::fs::read(&path).unwrap() == data, "{c}: bytes differ");
        std::fs::remove_file(&path).unwrap();
        println!("download {mib} MiB, compression {c}: {t:.2} CPU-s");
        cpu.push(t);
    }
    let packed = compress_bytes(Compression::Zstd(3), &data).unwrap();
    let t0 = cpu_seconds();
    let out = decompress_bytes("zstd", &packed).unwrap();
    let dec = cpu_seconds() - t0;
    assert_eq!(out.len(), data.len());
    println!("zstd decompression alone: {dec:.2} CPU-s");
    let ratio = cpu[1] / (cpu[0] + dec);
    println!("zstd download / (plain download + decompression) = {ratio:.2} (target <= 1.5)");
}
