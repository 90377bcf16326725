//! Throughput of each layer's CPU work on 8 MiB JSON-lines buffers, one core:
//! `cargo bench -p cairn --bench layers`. The linear-work check of compressed ranged
//! downloads is `cargo run --release -p cairn --example layer_linear`.

use bytes::Bytes;
use cairn::layer::compress::{compress_bytes, decompress_bytes};
use cairn::layer::encrypt::{decrypt_bytes, encrypt_bytes};
use cairn::layer::Compression;
use divan::counter::BytesCount;
use divan::Bencher;
use sha2::Digest;
use std::sync::LazyLock;

const LEN: usize = 8 * 1024 * 1024;
const KEY: [u8; 32] = [7; 32];

static DATA: LazyLock<Bytes> = LazyLock::new(|| cairn::testkit::matrix::json_lines(LEN, 1));

fn main() {
    divan::main();
}

#[divan::bench(sample_count = 10)]
fn sha256(b: Bencher) {
    b.counter(BytesCount::new(LEN))
        .bench(|| sha2::Sha256::digest(&DATA[..]));
}

#[divan::bench(sample_count = 10)]
fn aes_gcm_encrypt(b: Bencher) {
    b.counter(BytesCount::new(LEN))
        .bench(|| encrypt_bytes(&KEY, &DATA).unwrap());
}

#[divan::bench(sample_count = 10)]
fn aes_gcm_decrypt(b: Bencher) {
    let sealed = encrypt_bytes(&KEY, &DATA).unwrap();
    b.counter(BytesCount::new(LEN))
        .bench(|| decrypt_bytes(&KEY, &sealed).unwrap());
}

#[divan::bench(args = [1, 3, 9], sample_count = 5)]
fn zstd_compress(b: Bencher, level: i32) {
    b.counter(BytesCount::new(LEN))
        .bench(|| compress_bytes(Compression::Zstd(level), &DATA).unwrap());
}

#[divan::bench(sample_count = 10)]
fn zstd_decompress(b: Bencher) {
    let packed = compress_bytes(Compression::Zstd(3), &DATA).unwrap();
    b.counter(BytesCount::new(LEN))
        .bench(|| decompress_bytes("zstd", &packed).unwrap());
}

#[divan::bench(sample_count = 3)]
fn gzip6_compress(b: Bencher) {
    b.counter(BytesCount::new(LEN))
        .bench(|| compress_bytes(Compression::Gzip(6), &DATA).unwrap());
}

#[divan::bench(sample_count = 10)]
fn gzip_decompress(b: Bencher) {
    let packed = compress_bytes(Compression::Gzip(6), &DATA).unwrap();
    b.counter(BytesCount::new(LEN))
        .bench(|| decompress_bytes("gzip", &packed).unwrap());
}
