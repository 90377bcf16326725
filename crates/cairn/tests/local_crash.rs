//! A writer killed with SIGKILL at random points while it overwrites one key with same-size
//! contents, through the default layer stack (checksum on) on the local store. After every
//! kill the key reads back as exactly the last version that was committed or the one being
//! written, and it verifies: no false corruption, no lost metadata.
//!
//! The writer is this test binary run again with [`WRITER_ROOT`] set (the test function
//! becomes the writer), so no helper binary is needed. Runs alternate between a store on the
//! temp directory's filesystem (ext4 here: real fsyncs) and one on tmpfs (`/dev/shm`, where a
//! write is fast enough that kills often land between a commit's two renames).

use bytes::Bytes;
use cairn::backend::local::LocalStore;
use cairn::layer::checksum::{verify, VerifyStatus};
use cairn::{DynStore, Key, StoreExt};
use futures::TryStreamExt;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

/// Set in the writer process: the store root it writes to.
const WRITER_ROOT: &str = "CAIRN_CRASH_WRITER_ROOT";
/// Set in the writer process: the first version number it writes.
const WRITER_FIRST: &str = "CAIRN_CRASH_WRITER_FIRST";
/// The writer's line on stdout once its store is open.
const READY: &str = "crash-writer-ready";
const TEST_NAME: &str = "kill_9_mid_overwrite_leaves_the_old_or_the_new_version";
const RUNS: u64 = 100;
/// Every version has exactly this many bytes.
const SIZE: usize = 64 * 1024;
const KEY: &str = "state/current.json";

/// Version `n`'s bytes: a header naming `n`, then JSON-like rows derived from `n`.
fn version(n: u64) -> Bytes {
    let mut v = format!("{{\"version\":{n:020}}}\n").into_bytes();
    let mut x = n.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    while v.len() < SIZE {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(format!("{{\"row\":{},\"v\":{n}}}\n", x % 100_000).as_bytes());
    }
    v.truncate(SIZE);
    v.into()
}

/// The version `bytes` claim to be, if they are exactly that version.
fn version_of(bytes: &[u8]) -> Option<u64> {
    let head = std::str::from_utf8(bytes.get(..33)?).ok()?;
    let n: u64 = head
        .strip_prefix("{\"version\":")?
        .get(..20)?
        .parse()
        .ok()?;
    (version(n) == bytes).then_some(n)
}

fn key() -> Key {
    Key::new(KEY).unwrap()
}

fn open(root: &Path) -> DynStore {
    let local = Arc::new(LocalStore::new(root).unwrap());
    cairn::layer::stack::apply(local, &cairn::Config::default()).unwrap()
}

/// The writer: overwrites the key with versions first, first + 1, ... until killed.
fn writer(root: &str) -> ! {
    let first: u64 = std::env::var(WRITER_FIRST).unwrap().parse().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let store = open(Path::new(root));
    // On its own line: libtest has printed the test's name without a newline.
    println!("\n{READY}");
    rt.block_on(async {
        for n in first.. {
            store.put(&key(), version(n)).await.unwrap();
        }
    });
    unreachable!()
}

fn roots(base: &tempfile::TempDir, shm: &Option<tempfile::TempDir>) -> Vec<PathBuf> {
    let mut v = vec![base.path().join("store")];
    if let Some(s) = shm {
        v.push(s.path().join("store"));
    }
    v
}

#[test]
fn kill_9_mid_overwrite_leaves_the_old_or_the_new_version() {
    if let Ok(root) = std::env::var(WRITER_ROOT) {
        writer(&root);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let base = tempfile::tempdir().unwrap();
    let shm = tempfile::Builder::new().tempdir_in("/dev/shm").ok();
    let roots = roots(&base, &shm);
    // The version each root holds now.
    let mut current: Vec<u64> = vec![0; roots.len()];
    for r in &roots {
        rt.block_on(open(r).put(&key(), version(0))).unwrap();
    }
    let (mut kept_old, mut took_new) = (0, 0);
    for run in 0..RUNS {
        let i = (run as usize) % roots.len();
        let root = &roots[i];
        let first = (run + 1) * 1_000_000_000;
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", TEST_NAME, "--nocapture", "--test-threads=1"])
            .env(WRITER_ROOT, root)
            .env(WRITER_FIRST, first.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        while line.trim_end() != READY {
            line.clear();
            assert!(out.read_line(&mut line).unwrap() > 0, "the writer died");
        }
        // A random point: anywhere from the first write to some hundreds in.
        std::thread::sleep(Duration::from_micros(rand::random::<u64>() % 20_000));
        child.kill().unwrap();
        let status = child.wait().unwrap();
        assert!(
            !status.success(),
            "run {run}: the writer was killed, not finished"
        );

        let store = open(root);
        let got = rt
            .block_on(store.get(&key()))
            .unwrap_or_else(|e| panic!("run {run}: the read failed: {e}"));
        let n = version_of(&got).unwrap_or_else(|| {
            panic!(
                "run {run}: the key holds no whole version ({} bytes)",
                got.len()
            )
        });
        assert!(
            n == current[i] || n >= first,
            "run {run}: version {n} is neither the old {} nor a new one",
            current[i]
        );
        if n == current[i] {
            kept_old += 1;
        } else {
            took_new += 1;
        }
        current[i] = n;
        // `cairn verify` of the whole store: every object checks, none is corrupt.
        let objects: Vec<_> = rt
            .block_on(async { store.list_objects("").try_collect::<Vec<_>>().await })
            .unwrap();
        assert_eq!(objects.len(), 1, "run {run}: {objects:?}");
        for o in objects {
            let status = rt.block_on(verify(&*store, &o.key)).unwrap();
            assert_eq!(status, VerifyStatus::Ok, "run {run}: {}", o.key);
        }
    }
    eprintln!("{RUNS} kills: {kept_old} kept the old version, {took_new} the new one");
    assert!(
        took_new > 0,
        "no kill landed after a write: the test tests nothing"
    );
}
