//! Faults in a store layer: mixed operations (put, multipart, get, range, list, copy, delete,
//! sync) through cairn's layer stacks over a [`FaultStore`] that fails ~10% of backend calls.
//! The bar: no acknowledged write lost, no corrupt byte served, every failure a typed error
//! of a kind the faults explain. docs/reliability.md, "Faults in a store layer".
//!
//! Knobs: `CAIRN_FAULT_OPS` (operations per stack, default 1500), `CAIRN_FAULT_SEED`,
//! `CAIRN_FAULT_RATE` (default 0.10). bench/reliability/faults_store.sh runs 10,000 per stack.

use bytes::Bytes;
use cairn::layer::checksum::REREAD_LIMIT;
use cairn::layer::{PrefixStore, RetryPolicy, RetryStore};
use cairn::ops::reporter::NoReporter;
use cairn::ops::sync::{sync, SyncOptions};
use cairn::store::{DynStore, PutOptions, Store};
use cairn::testkit::fault::{Fault, FaultStore, Op, Rule};
use cairn::testkit::pattern;
use cairn::transfer::{put_stream, WriterOptions};
use cairn::{Config, ErrorKind, Key, StoreExt};
use futures::TryStreamExt;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn knob<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name}={v:?} is not a number"))
        })
        .unwrap_or(default)
}

fn k(s: &str) -> Key {
    Key::new(s).unwrap()
}

/// What a key may hold: one value once a write was acknowledged (None: absent), several
/// while an unacknowledged write may or may not have landed.
type Candidates = Vec<Option<Bytes>>;

#[derive(Default)]
struct Tally {
    ops: u64,
    ok: u64,
    lost: u64,
    corrupt: u64,
    typed: BTreeMap<&'static str, u64>,
    wrong: Vec<String>,
}

impl Tally {
    /// Counts a failure; kinds the faults cannot explain are wrong. `large`: the operation
    /// read an object that may be larger than the checksum layer re-reads.
    fn failed(&mut self, what: &str, e: &cairn::Error, large: bool) {
        self.failed_kind(what, e.kind(), &e.to_string(), large);
    }

    fn failed_kind(&mut self, what: &str, kind: ErrorKind, message: &str, large: bool) {
        *self.typed.entry(kind.as_str()).or_default() += 1;
        let explained = match kind {
            ErrorKind::Network
            | ErrorKind::Timeout
            | ErrorKind::RateLimited
            | ErrorKind::Unavailable
            | ErrorKind::Unexpected => true,
            // A large object streams (bytes handed over cannot be taken back), so a byte
            // flipped in transit ends its read with Integrity; a small object (and a
            // manifest) is re-read, and a fault on every one of its reads at a 10% rate
            // is too rare to explain an Integrity error. The data is checked intact at
            // the end either way.
            ErrorKind::Integrity => large,
            _ => false,
        };
        if !explained {
            self.wrong.push(format!("{what}: {message}"));
        }
    }
}

struct Model {
    keys: BTreeMap<String, Candidates>,
}

impl Model {
    fn get(&self, key: &str) -> Candidates {
        self.keys.get(key).cloned().unwrap_or_else(|| vec![None])
    }
    fn set(&mut self, key: &str, v: Option<Bytes>) {
        self.keys.insert(key.to_string(), vec![v]);
    }
    /// A write that failed may still have landed.
    fn maybe(&mut self, key: &str, v: Option<Bytes>) {
        let mut c = self.get(key);
        if !c.contains(&v) {
            c.push(v);
        }
        self.keys.insert(key.to_string(), c);
    }
    /// Whether the key may hold an object the checksum layer streams rather than re-reads.
    fn large(&self, key: &str) -> bool {
        self.get(key)
            .iter()
            .flatten()
            .any(|v| v.len() as u64 >= REREAD_LIMIT)
    }
    /// A read saw `v`: if it is a candidate, that is what the key holds.
    fn saw(&mut self, key: &str, v: Option<Bytes>) -> bool {
        let c = self.get(key);
        if c.contains(&v) {
            self.keys.insert(key.to_string(), vec![v]);
            true
        } else {
            false
        }
    }
}

struct Splitmix(u64);
impl Splitmix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// The faults, about `rate` of all backend calls in sum; `down/` is always unavailable.
fn rules(rate: f64) -> Vec<Rule> {
    use ErrorKind::*;
    let share = |f: f64| rate * f;
    vec![
        Rule::new(Fault::Error(Unavailable), 1.0).prefix("down/"),
        Rule::new(Fault::Error(Network), share(0.15)),
        Rule::new(Fault::Error(Timeout), share(0.05)),
        Rule::new(Fault::ErrorAfter(Timeout), share(0.10)),
        Rule::new(Fault::Error(RateLimited), share(0.10)),
        Rule::new(Fault::Error(Unavailable), share(0.10)),
        Rule::new(Fault::Error(Unexpected), share(0.10)),
        Rule::new(Fault::Latency(Duration::from_millis(2)), share(0.05)),
        // Body faults apply to gets (cut-offs to listings too): a larger share, so that
        // about `rate` of those calls fault as well.
        Rule::new(Fault::ShortRead, share(0.15)).ops(&[Op::Get]),
        Rule::new(Fault::CutOff, share(0.15)),
        Rule::new(Fault::FlipByte, share(0.25)).ops(&[Op::Get]),
    ]
}

/// Retry fast: what matters here is that faults are retried, not how long backoff takes.
fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 4,
        base: Duration::from_millis(1),
        max_delay: Duration::from_millis(4),
        budget: Duration::from_secs(2),
    }
}

async fn run_stack(name: &str, backend: DynStore, config: &Config) {
    let ops = knob("CAIRN_FAULT_OPS", 1500u64);
    let seed = knob("CAIRN_FAULT_SEED", 0x5eed_u64);
    let rate = knob("CAIRN_FAULT_RATE", 0.10f64);
    let fault = FaultStore::new(backend, seed);
    for r in rules(rate) {
        fault.add_rule(r);
    }
    let retried: DynStore = Arc::new(RetryStore::new(fault.clone(), fast_retry()));
    let store = cairn::layer::stack::apply(retried, config).unwrap();
    let src: DynStore = Arc::new(PrefixStore::new(store.clone(), "src").unwrap());
    let dst: DynStore = Arc::new(PrefixStore::new(store.clone(), "dst").unwrap());
    let mut rng = Splitmix(seed ^ 0xa5a5);
    let mut model = Model {
        keys: BTreeMap::new(),
    };
    let mut t = Tally::default();
    let started = Instant::now();
    // Writes go to src/, a/ and b/; dst/ is written by sync only (a direct write there
    // could compare equal to its source by size and time, and sync would rightly skip it).
    let key_of = |rng: &mut Splitmix| {
        let dir = ["src", "src", "a", "b"][rng.below(4) as usize];
        format!("{dir}/{:03}", rng.below(60))
    };
    let any_key = |rng: &mut Splitmix| {
        let dir = ["src", "a", "b", "dst"][rng.below(4) as usize];
        format!("{dir}/{:03}", rng.below(60))
    };
    for i in 0..ops {
        t.ops += 1;
        let roll = rng.below(100);
        match roll {
            // put
            0..=24 => {
                let key = key_of(&mut rng);
                let size = if rng.below(50) == 0 {
                    (1 << 20) + rng.below(300_000) as usize
                } else {
                    rng.below(40_000) as usize
                };
                let data = pattern(size, rng.next());
                match store.put(&k(&key), data.clone()).await {
                    Ok(_) => {
                        t.ok += 1;
                        model.set(&key, Some(data))
                    }
                    Err(e) => {
                        t.failed("put", &e, false);
                        model.maybe(&key, Some(data))
                    }
                }
            }
            // multipart
            25..=32 => {
                let key = key_of(&mut rng);
                let size = 20_000 + rng.below(60_000) as usize;
                let data = pattern(size, rng.next());
                let chunks: Vec<_> = data
                    .chunks(7_000)
                    .map(|c| Ok(Bytes::copy_from_slice(c)))
                    .collect();
                let opts = WriterOptions {
                    part_size: 16 * 1024,
                    concurrency: 2,
                    size_hint: None,
                };
                let r = put_stream(
                    &*store,
                    &k(&key),
                    futures::stream::iter(chunks),
                    PutOptions::default(),
                    opts,
                )
                .await;
                match r {
                    Ok(_) => {
                        t.ok += 1;
                        model.set(&key, Some(data))
                    }
                    Err(e) => {
                        t.failed("multipart", &e, false);
                        model.maybe(&key, Some(data))
                    }
                }
            }
            // get
            33..=57 => {
                let key = any_key(&mut rng);
                match store.get(&k(&key)).await {
                    Ok(b) => {
                        t.ok += 1;
                        if !model.saw(&key, Some(b)) {
                            t.corrupt += 1;
                            eprintln!("{name}: op {i}: get {key}: bytes never written");
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::NotFound => {
                        t.ok += 1;
                        if !model.saw(&key, None) {
                            t.lost += 1;
                            eprintln!("{name}: op {i}: get {key}: acknowledged object missing");
                        }
                    }
                    // `get` reads a streamed check again too: Integrity never explained.
                    Err(e) => t.failed(&format!("get {key}"), &e, false),
                }
            }
            // range
            58..=69 => {
                let key = any_key(&mut rng);
                let (a, len) = (rng.below(30_000), 1 + rng.below(5_000));
                match store.get_range(&k(&key), a..a + len).await {
                    Ok(b) => {
                        t.ok += 1;
                        let fits = model.get(&key).iter().flatten().any(|v| {
                            let start = (a as usize).min(v.len());
                            let end = ((a + len) as usize).min(v.len());
                            v.slice(start..end) == b
                        });
                        if !fits {
                            t.corrupt += 1;
                            eprintln!("{name}: op {i}: range {key} {a}+{len}: bytes never written");
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::NotFound => {
                        t.ok += 1;
                        if !model.saw(&key, None) {
                            t.lost += 1;
                            eprintln!("{name}: op {i}: range {key}: acknowledged object missing");
                        }
                    }
                    // A range that starts past the end: the key holds one of its candidates
                    // that is no longer than `a` bytes.
                    Err(e) if e.kind() == ErrorKind::InvalidInput => {
                        t.ok += 1;
                        let c = model.get(&key);
                        if !c.iter().flatten().any(|v| v.len() as u64 <= a) {
                            t.wrong.push(format!("range {key} {a}+{len}: {e}"));
                        }
                    }
                    // Ranges are checked part by part and re-read: Integrity never explained.
                    Err(e) => t.failed(&format!("range {key}"), &e, false),
                }
            }
            // list
            70..=77 => {
                let dir = ["src/", "a/", "b/", "dst/"][rng.below(4) as usize];
                match store
                    .list_objects(dir)
                    .map_ok(|m| m.key.into_string())
                    .try_collect::<BTreeSet<_>>()
                    .await
                {
                    Ok(listed) => {
                        t.ok += 1;
                        for (key, c) in model.keys.range(dir.to_string()..) {
                            if !key.starts_with(dir) {
                                break;
                            }
                            let must = c.iter().all(Option::is_some);
                            let mustnt = c.iter().all(Option::is_none);
                            if (must && !listed.contains(key)) || (mustnt && listed.contains(key)) {
                                t.lost += must as u64;
                                t.corrupt += mustnt as u64;
                                eprintln!("{name}: op {i}: list {dir}: {key} wrong");
                            }
                        }
                    }
                    Err(e) => t.failed("list", &e, false),
                }
            }
            // copy
            78..=85 => {
                let (from, to) = (key_of(&mut rng), key_of(&mut rng));
                if from == to {
                    continue;
                }
                let was = model.get(&from);
                match store.copy(&k(&from), &k(&to)).await {
                    Ok(()) => {
                        t.ok += 1;
                        // The source held one of its candidates; the copy holds the same.
                        model.keys.insert(
                            to.clone(),
                            was.into_iter().filter(Option::is_some).collect(),
                        );
                    }
                    Err(e) if e.kind() == ErrorKind::NotFound => {
                        t.ok += 1;
                        if !model.saw(&from, None) {
                            t.lost += 1;
                            eprintln!("{name}: op {i}: copy {from}: acknowledged object missing");
                        }
                    }
                    Err(e) => {
                        t.failed("copy", &e, false);
                        for v in was.into_iter().flatten() {
                            model.maybe(&to, Some(v));
                        }
                    }
                }
            }
            // delete
            86..=93 => {
                let key = key_of(&mut rng);
                match store.delete(&k(&key)).await {
                    Ok(()) => {
                        t.ok += 1;
                        model.set(&key, None)
                    }
                    Err(e) => {
                        t.failed("delete", &e, false);
                        model.maybe(&key, None)
                    }
                }
            }
            // an operation on a key whose service is down for longer than the budget
            94..=95 => {
                let key = format!("down/{}", rng.below(10));
                let e = store
                    .put(&k(&key), Bytes::from_static(b"x"))
                    .await
                    .unwrap_err();
                assert_eq!(e.kind(), ErrorKind::Unavailable, "{name}: {e}");
                assert!(e.is_persistent(), "{name}: the budget was spent: {e}");
                t.failed("down", &e, false);
            }
            // sync src/ -> dst/
            _ => {
                let opts = SyncOptions {
                    delete: true,
                    ..Default::default()
                };
                let before: Vec<(String, Candidates)> = model
                    .keys
                    .iter()
                    .filter(|(k, _)| k.starts_with("src/") || k.starts_with("dst/"))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                let r = sync(&*src, &*dst, &opts, &NoReporter).await;
                let failed: Option<BTreeSet<String>> = match &r {
                    Ok(s) if s.failures.len() as u64 == s.failed => Some(
                        s.failures
                            .iter()
                            .map(|f| format!("dst/{}", f.key))
                            .collect(),
                    ),
                    _ => None,
                };
                match &r {
                    Ok(s) if s.is_success() => t.ok += 1,
                    Ok(s) => {
                        for f in &s.failures {
                            let large = model.large(&format!("src/{}", f.key));
                            t.failed_kind(&format!("sync {}", f.key), f.kind, &f.message, large);
                        }
                    }
                    Err(e) => t.failed("sync", e, false),
                }
                // Each dst key ends as its src counterpart; where sync failed or the src was
                // uncertain, as either that or what dst held.
                let src_keys: BTreeSet<String> = before
                    .iter()
                    .filter(|(k, _)| k.starts_with("src/"))
                    .map(|(k, _)| k["src/".len()..].to_string())
                    .collect();
                let dst_keys: BTreeSet<String> = before
                    .iter()
                    .filter(|(k, _)| k.starts_with("dst/"))
                    .map(|(k, _)| k["dst/".len()..].to_string())
                    .collect();
                for rel in src_keys.union(&dst_keys) {
                    let (s, d) = (format!("src/{rel}"), format!("dst/{rel}"));
                    let want = model.get(&s);
                    // Sync compares sizes and whole-second times (S3's grain), so a source
                    // rewritten with the same size within the second after its last sync
                    // is rightly skipped: the destination may keep a same-size old value.
                    let kept: Vec<Bytes> = model
                        .get(&d)
                        .into_iter()
                        .flatten()
                        .filter(|v| want.iter().flatten().any(|w| w.len() == v.len()))
                        .collect();
                    let sure = failed.as_ref().is_some_and(|f| !f.contains(&d)) && want.len() == 1;
                    if sure {
                        model.keys.insert(d.clone(), want);
                    } else {
                        for v in want {
                            model.maybe(&d, v);
                        }
                    }
                    for v in kept {
                        model.maybe(&d, Some(v));
                    }
                }
            }
        }
    }
    // The end: faults off, every key holds what was acknowledged.
    fault.clear_rules();
    let mut checked = 0;
    for (key, c) in model.keys.clone() {
        if key.starts_with("down/") {
            continue;
        }
        checked += 1;
        match store.get(&k(&key)).await {
            Ok(b) => {
                if !c.contains(&Some(b)) {
                    t.corrupt += 1;
                    eprintln!(
                        "{name}: end: {key}: bytes never written (or an acknowledged write lost)"
                    );
                }
            }
            Err(e) if e.kind() == ErrorKind::NotFound => {
                if !c.contains(&None) {
                    t.lost += 1;
                    eprintln!("{name}: end: {key}: acknowledged object missing");
                }
            }
            Err(e) => panic!("{name}: end: {key}: {e}"),
        }
    }
    let injected = fault.injected();
    let total: u64 = injected.values().sum();
    let calls = fault.calls();
    println!(
        "FIGURES stack={name} seed={seed:#x} ops={} ok={} backend_calls={calls} injected={total} ({:.1}% of calls) by_fault={injected:?} lost={} corrupt={} typed_errors={:?} wrong_kind={} keys_checked={checked} secs={:.1}",
        t.ops,
        t.ok,
        100.0 * total as f64 / calls.max(1) as f64,
        t.lost,
        t.corrupt,
        t.typed,
        t.wrong.len(),
        started.elapsed().as_secs_f64()
    );
    assert_eq!(t.lost, 0, "{name}: acknowledged writes lost");
    assert_eq!(t.corrupt, 0, "{name}: corrupt bytes served");
    assert!(
        t.wrong.is_empty(),
        "{name}: failures of unexplained kinds: {:?}",
        t.wrong
    );
    // The faults did fire, at about the rate asked for, and some writes were acknowledged.
    assert!(
        total as f64 > calls as f64 * rate * 0.5,
        "{name}: {total} of {calls}"
    );
    assert!(t.ok > t.ops / 2, "{name}: {} of {} ok", t.ok, t.ops);
    for f in ["flip_byte", "short_read", "cut_off", "error:unavailable"] {
        assert!(
            injected.get(f).copied().unwrap_or(0) > 0,
            "{name}: no {f} injected"
        );
    }
}

fn cfg(pairs: &[(&str, &str)]) -> Config {
    Config::from_pairs(pairs.iter().copied()).unwrap()
}

fn memory() -> DynStore {
    Arc::new(cairn::backend::memory::MemoryStore::new())
}

fn key_file(dir: &std::path::Path) -> String {
    let p = dir.join("key");
    std::fs::write(&p, hex::encode([7u8; 32])).unwrap();
    format!("file:{}", p.display())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_checksum() {
    run_stack("memory+checksum", memory(), &cfg(&[])).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_compress_encrypt() {
    let dir = tempfile::tempdir().unwrap();
    let key = key_file(dir.path());
    let c = cfg(&[("compression", "zstd"), ("encryption_key", &key)]);
    run_stack("memory+zstd+encrypt+checksum", memory(), &c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_checksum() {
    let dir = tempfile::tempdir().unwrap();
    let local = cairn::backend::local::LocalStore::new(dir.path()).unwrap();
    run_stack("local+checksum", Arc::new(local), &cfg(&[])).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_encrypt() {
    let dir = tempfile::tempdir().unwrap();
    let key = key_file(dir.path());
    let root = dir.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let local = cairn::backend::local::LocalStore::new(&root).unwrap();
    let c = cfg(&[("encryption_key", &key)]);
    run_stack("local+encrypt+checksum", Arc::new(local), &c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_compress() {
    let dir = tempfile::tempdir().unwrap();
    let local = cairn::backend::local::LocalStore::new(dir.path()).unwrap();
    run_stack(
        "local+zstd+checksum",
        Arc::new(local),
        &cfg(&[("compression", "zstd")]),
    )
    .await;
}
