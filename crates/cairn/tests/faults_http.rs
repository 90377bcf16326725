//! Faults in transit: cairn's S3 store, opened by URL with `endpoint=` at the HTTP fault proxy
//! (crates/cairn-faultproxy), runs mixed operations (put, multipart, get, range, list, copy,
//! delete, sync) on moto and on Garage while the proxy injects resets, 500, 503 SlowDown,
//! 503 ServiceUnavailable, 429, stalls past the client timeout, truncated and bit-flipped
//! object GET bodies into 10% of requests.
//!
//! Each worker owns its keys and keeps a model of what each may hold: a value once a write was
//! acknowledged, a set of candidates after a write failed (it may or may not have landed). The
//! test asserts that no acknowledged write is lost (checked again at the end, bypassing the
//! proxy), no read returns a byte that was not written, and every failure is a typed error of
//! a kind that a transit fault can cause.
//!
//! CI size: CAIRN_FAULTS_HTTP_OPS (default 400) per server over CAIRN_FAULTS_HTTP_WORKERS (8)
//! workers, seed CAIRN_FAULTS_HTTP_SEED; bench/reliability/faults_http.sh runs 10,000.

mod proxy_support;

use bytes::Bytes;
use cairn::ops::reporter::NoReporter;
use cairn::ops::sync::{sync, SyncOptions};
use cairn::transfer::{put_stream, WriterOptions};
use cairn::{DynStore, Error, ErrorKind, Key, PutOptions, StoreExt};
use cairn_faultproxy::{Fault, Plan};
use futures::TryStreamExt;
use proxy_support::{knob, unique_prefix, Server, GARAGE, MOTO};
use rand::{Rng, SeedableRng};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

/// Kinds a fault in transit can surface as, once retries are spent.
const TRANSIT_KINDS: [ErrorKind; 6] = [
    ErrorKind::RateLimited,
    ErrorKind::Unavailable,
    ErrorKind::Unexpected,
    ErrorKind::Network,
    ErrorKind::Timeout,
    ErrorKind::Integrity,
];

const KEYS_PER_WORKER: usize = 12;

/// Short timeouts so stalls cost little; the proxy stalls past them.
const CLIENT: [(&str, &str); 2] = [("timeout", "2s"), ("connect_timeout", "1s")];
const STALL: Duration = Duration::from_millis(2500);

/// What a key may hold: `None` is absent.
#[derive(Debug, Clone)]
enum State {
    Known(Option<Bytes>),
    Maybe(Vec<Option<Bytes>>),
}

impl State {
    fn candidates(&self) -> Vec<Option<Bytes>> {
        match self {
            State::Known(v) => vec![v.clone()],
            State::Maybe(v) => v.clone(),
        }
    }

    fn accepts(&self, v: &Option<Bytes>) -> bool {
        self.candidates().contains(v)
    }

    /// After a write of `new` that failed: it may or may not have landed.
    fn failed_write(&self, new: &[Option<Bytes>]) -> State {
        let mut c = self.candidates();
        for n in new {
            if !c.contains(n) {
                c.push(n.clone());
            }
        }
        State::Maybe(c)
    }

    fn acknowledged(&self) -> Option<&Option<Bytes>> {
        match self {
            State::Known(v) => Some(v),
            State::Maybe(_) => None,
        }
    }
}

#[derive(Debug, Default)]
struct Tally {
    ops: BTreeMap<&'static str, u64>,
    failed: BTreeMap<String, u64>,
    wrong_kind: Vec<String>,
    lost: Vec<String>,
    corrupt: Vec<String>,
}

impl Tally {
    fn merge(&mut self, o: Tally) {
        for (k, v) in o.ops {
            *self.ops.entry(k).or_default() += v;
        }
        for (k, v) in o.failed {
            *self.failed.entry(k).or_default() += v;
        }
        self.wrong_kind.extend(o.wrong_kind);
        self.lost.extend(o.lost);
        self.corrupt.extend(o.corrupt);
    }

    /// Records a failed operation; a kind no transit fault causes is a defect.
    fn fail(&mut self, op: &str, key: &str, e: &Error) {
        eprintln!(
            "DBGFAIL {op} {key}: temp={} pers={} {e:?}",
            e.is_temporary(),
            e.is_persistent()
        );
        *self
            .failed
            .entry(format!("{op} {}", e.kind().as_str()))
            .or_default() += 1;
        if !TRANSIT_KINDS.contains(&e.kind()) {
            self.wrong_kind
                .push(format!("{op} {key}: {:?}: {e}", e.kind()));
        }
    }
}

fn key(i: usize) -> Key {
    Key::new(format!("k{i:02}")).unwrap()
}

struct Worker {
    store: DynStore,
    model: HashMap<Key, State>,
    rng: rand::rngs::StdRng,
    tally: Tally,
    next_value: u64,
}

impl Worker {
    fn value(&mut self, big: bool) -> Bytes {
        self.next_value += 1;
        let len = if big {
            5 * 1024 * 1024 + self.rng.random_range(1..256 * 1024)
        } else {
            self.rng.random_range(1..128 * 1024)
        };
        cairn::testkit::pattern(len, self.rng.random::<u64>() ^ self.next_value)
    }

    fn state(&self, k: &Key) -> State {
        self.model.get(k).cloned().unwrap_or(State::Known(None))
    }

    /// Checks what a read returned against the model, and learns from it.
    fn observed(&mut self, op: &str, k: &Key, r: cairn::Result<Bytes>) {
        let st = self.state(k);
        match r {
            Ok(b) => {
                if st.accepts(&Some(b.clone())) {
                    self.model.insert(k.clone(), State::Known(Some(b)));
                } else {
                    self.tally.corrupt.push(format!(
                        "{op} {k}: {} bytes that were never written",
                        b.len()
                    ));
                }
            }
            Err(e) if e.kind() == ErrorKind::NotFound => {
                if st.accepts(&None) {
                    self.model.insert(k.clone(), State::Known(None));
                } else {
                    self.tally.lost.push(format!("{op} {k}: not found: {e}"));
                }
            }
            Err(e) => self.tally.fail(op, k.as_str(), &e),
        }
    }

    async fn step(&mut self) {
        let k = key(self.rng.random_range(0..KEYS_PER_WORKER));
        let roll = self.rng.random_range(0..100);
        let op = match roll {
            0..30 => "put",
            30..33 => "multipart",
            33..58 => "get",
            58..70 => "range",
            70..78 => "list",
            78..86 => "copy",
            86..98 => "delete",
            _ => "sync",
        };
        *self.tally.ops.entry(op).or_default() += 1;
        match op {
            "put" | "multipart" => {
                let v = self.value(op == "multipart");
                let r = if op == "put" {
                    self.store.put(&k, v.clone()).await.map(drop)
                } else {
                    let chunks: Vec<cairn::Result<Bytes>> =
                        v.chunks(1024 * 1024).map(|c| Ok(v.slice_ref(c))).collect();
                    let opts = WriterOptions {
                        part_size: 5 * 1024 * 1024,
                        concurrency: 2,
                        size_hint: Some(v.len() as u64),
                    };
                    let s = futures::stream::iter(chunks);
                    put_stream(&*self.store, &k, s, PutOptions::default(), opts)
                        .await
                        .map(drop)
                };
                match r {
                    Ok(()) => {
                        self.model.insert(k, State::Known(Some(v)));
                    }
                    Err(e) => {
                        self.tally.fail(op, k.as_str(), &e);
                        let st = self.state(&k).failed_write(&[Some(v)]);
                        self.model.insert(k, st);
                    }
                }
            }
            "get" => {
                let r = self.store.get(&k).await;
                self.observed(op, &k, r);
            }
            "range" => {
                // Ranges of objects known to exist, small or multipart: the checksum layer
                // verifies both (a small one whole, a multipart one part by part).
                let State::Known(Some(v)) = self.state(&k) else {
                    let r = self.store.get(&k).await;
                    return self.observed("get", &k, r);
                };
                if v.len() < 2 {
                    let r = self.store.get(&k).await;
                    return self.observed("get", &k, r);
                }
                let a = self.rng.random_range(0..v.len() - 1);
                let b = self.rng.random_range(a + 1..=v.len());
                match self.store.get_range(&k, a as u64..b as u64).await {
                    Ok(got) if got == v.slice(a..b) => {}
                    Ok(got) => self.tally.corrupt.push(format!(
                        "range {k} {a}..{b}: {} bytes not as written",
                        got.len()
                    )),
                    Err(e) if e.kind() == ErrorKind::NotFound => {
                        self.tally.lost.push(format!("range {k}: not found: {e}"))
                    }
                    Err(e) => self.tally.fail(op, k.as_str(), &e),
                }
            }
            "list" => match self.store.list_objects("").try_collect::<Vec<_>>().await {
                Ok(listed) => {
                    let listed: HashMap<Key, u64> =
                        listed.into_iter().map(|m| (m.key, m.size)).collect();
                    for i in 0..KEYS_PER_WORKER {
                        let k = key(i);
                        match (self.state(&k).acknowledged(), listed.get(&k)) {
                            (Some(Some(_)), None) => {
                                self.tally.lost.push(format!("list: {k} missing"))
                            }
                            (Some(Some(v2)), Some(&size)) if size != v2.len() as u64 => {
                                self.tally.corrupt.push(format!(
                                    "list: {k} has size {size}, {} was written",
                                    v2.len()
                                ))
                            }
                            (Some(None), Some(_)) => {
                                self.tally.lost.push(format!("list: deleted {k} is listed"))
                            }
                            _ => {}
                        }
                    }
                }
                Err(e) => self.tally.fail(op, "", &e),
            },
            "copy" => {
                let dst = key(self.rng.random_range(0..KEYS_PER_WORKER));
                if dst == k {
                    return;
                }
                let src = self.state(&k);
                match self.store.copy(&k, &dst).await {
                    Ok(()) => {
                        let got: Vec<_> = src
                            .candidates()
                            .into_iter()
                            .filter(|c| c.is_some())
                            .collect();
                        if got.is_empty() {
                            self.tally
                                .corrupt
                                .push(format!("copy {k} -> {dst}: copied an absent object"));
                        }
                        let st = match got.as_slice() {
                            [one] => State::Known(one.clone()),
                            _ => State::Maybe(got),
                        };
                        self.model.insert(dst, st);
                    }
                    Err(e) if e.kind() == ErrorKind::NotFound => {
                        if !src.accepts(&None) {
                            self.tally
                                .lost
                                .push(format!("copy {k}: source not found: {e}"));
                        }
                    }
                    Err(e) => {
                        self.tally.fail(op, k.as_str(), &e);
                        let src_values: Vec<_> = src
                            .candidates()
                            .into_iter()
                            .filter(|c| c.is_some())
                            .collect();
                        let st = self.state(&dst).failed_write(&src_values);
                        self.model.insert(dst, st);
                    }
                }
            }
            "delete" => match self.store.delete(&k).await {
                Ok(()) => {
                    self.model.insert(k, State::Known(None));
                }
                Err(e) => {
                    self.tally.fail(op, k.as_str(), &e);
                    let st = self.state(&k).failed_write(&[None]);
                    self.model.insert(k, st);
                }
            },
            _ => self.sync_out().await,
        }
    }

    /// Syncs the worker's keys into a memory store; whatever arrived must be as written.
    async fn sync_out(&mut self) {
        let mem = cairn::open("memory://").await.unwrap();
        let summary = match sync(&*self.store, &*mem, &SyncOptions::default(), &NoReporter).await {
            Ok(s) => s,
            Err(e) => return self.tally.fail("sync", "", &e),
        };
        let mut failed = BTreeSet::new();
        for f in &summary.failures {
            *self
                .tally
                .failed
                .entry(format!("sync {}", f.kind.as_str()))
                .or_default() += 1;
            if !TRANSIT_KINDS.contains(&f.kind) {
                self.tally
                    .wrong_kind
                    .push(format!("sync {}: {:?}: {}", f.key, f.kind, f.message));
            }
            failed.insert(f.key.clone());
        }
        for i in 0..KEYS_PER_WORKER {
            let k = key(i);
            let got = match mem.get(&k).await {
                Ok(b) => Some(b),
                Err(e) if e.kind() == ErrorKind::NotFound => None,
                Err(e) => panic!("memory store: {e}"),
            };
            let st = self.state(&k);
            match (&got, st.acknowledged()) {
                (None, Some(Some(_))) if !failed.contains(k.as_str()) => self
                    .tally
                    .lost
                    .push(format!("sync: {k} neither copied nor failed")),
                (None, _) => {}
                (Some(b), _) if !st.accepts(&Some(b.clone())) => self
                    .tally
                    .corrupt
                    .push(format!("sync: {k} arrived with bytes never written")),
                (Some(b), _) => {
                    self.model.insert(k, State::Known(Some(b.clone())));
                }
            }
        }
    }
}

/// What was injected and what came of it, for one server.
struct Figures {
    server: &'static str,
    ops: usize,
    counts: cairn_faultproxy::Counts,
    tally: Tally,
    secs: f64,
}

impl std::fmt::Display for Figures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let failed: u64 = self.tally.failed.values().sum();
        writeln!(
            f,
            "faults_http {}: {} operations in {:.1} s",
            self.server, self.ops, self.secs
        )?;
        writeln!(f, "  by op: {:?}", self.tally.ops)?;
        writeln!(f, "  proxy: {}", self.counts)?;
        writeln!(
            f,
            "  lost acknowledged writes: {}, corrupt bytes served: {}, failed ops: {failed} (wrong kind: {})",
            self.tally.lost.len(),
            self.tally.corrupt.len(),
            self.tally.wrong_kind.len()
        )?;
        write!(
            f,
            "  typed errors by operation and kind: {:?}",
            self.tally.failed
        )
    }
}

async fn run(server: Server) -> Figures {
    let ops: usize = knob("CAIRN_FAULTS_HTTP_OPS", 400);
    let workers: usize = knob("CAIRN_FAULTS_HTTP_WORKERS", 8);
    let seed: u64 = knob("CAIRN_FAULTS_HTTP_SEED", 18);
    let plan = Plan {
        stall: STALL,
        ..Plan::uniform(seed, 0.10, &Fault::ALL)
    };
    let proxy = server.proxy(plan).await;
    let prefix = unique_prefix(&format!("faults-http-{}", server.provider));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..workers {
        let p = format!("{prefix}/w{w}");
        let store = server.open(&proxy.endpoint(), &p, &CLIENT).await;
        let n = ops / workers + usize::from(w < ops % workers);
        tasks.spawn(async move {
            let mut worker = Worker {
                store,
                model: HashMap::new(),
                rng: rand::rngs::StdRng::seed_from_u64(seed ^ (w as u64) << 32),
                tally: Tally::default(),
                next_value: 0,
            };
            for _ in 0..n {
                worker.step().await;
            }
            (p, worker.model, worker.tally)
        });
    }
    let mut tally = Tally::default();
    let mut models = Vec::new();
    while let Some(r) = tasks.join_next().await {
        let (p, model, t) = r.unwrap();
        tally.merge(t);
        models.push((p, model));
    }
    let secs = started.elapsed().as_secs_f64();
    let counts = proxy.counts();
    // What the server holds, read around the proxy: every acknowledged write is there.
    for (p, model) in models {
        let direct = server.direct(&p).await;
        for (k, st) in model {
            let got = match direct.get(&k).await {
                Ok(b) => Some(b),
                Err(e) if e.kind() == ErrorKind::NotFound => None,
                Err(e) => panic!("{p}/{k} read without faults: {e}"),
            };
            if !st.accepts(&got) {
                tally.lost.push(format!(
                    "{p}/{k}: holds {:?} bytes, {} candidates were acknowledged or attempted",
                    got.map(|b| b.len()),
                    st.candidates().len()
                ));
            }
        }
    }
    Figures {
        server: server.provider,
        ops,
        counts,
        tally,
        secs,
    }
}

fn check(f: &Figures) {
    println!("{f}");
    assert!(f.tally.lost.is_empty(), "lost writes: {:#?}", f.tally.lost);
    assert!(
        f.tally.corrupt.is_empty(),
        "corrupt reads: {:#?}",
        f.tally.corrupt
    );
    assert!(
        f.tally.wrong_kind.is_empty(),
        "errors of the wrong kind: {:#?}",
        f.tally.wrong_kind
    );
    // The faults really happened, at about the rate asked.
    let rate = f.counts.total() as f64 / f.counts.requests as f64;
    assert!(
        (0.07..0.13).contains(&rate),
        "fault rate {rate:.3}: {}",
        f.counts
    );
    let kinds = Fault::ALL.iter().filter(|k| f.counts.of(**k) > 0).count();
    assert!(
        kinds >= 6,
        "only {kinds} kinds of fault injected: {}",
        f.counts
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_operations_through_faults_on_moto() {
    check(&run(MOTO).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_operations_through_faults_on_garage() {
    check(&run(GARAGE).await);
}

/// object_store sends a DELETE once when it times out or its reply breaks (DELETE is not a
/// "safe" method); the S3 store repeats it, since deleting is idempotent. 40% of the DELETEs
/// (and batch POSTs) reset or stall here: every delete still succeeds, singly and in a batch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletes_are_repeated_after_a_reset_or_a_stall() {
    let rule = |s: &str| s.parse::<cairn_faultproxy::Rule>().unwrap();
    let plan = Plan {
        seed: 7,
        rules: vec![rule("reset=0.3@DELETE,POST"), rule("stall=0.1@DELETE,POST")],
        stall: STALL,
        ..Plan::clean()
    };
    let proxy = GARAGE.proxy(plan).await;
    let prefix = unique_prefix("faults-http-deletes");
    let store = GARAGE.open(&proxy.endpoint(), &prefix, &CLIENT).await;
    let direct = GARAGE.direct(&prefix).await;
    let keys: Vec<Key> = (0..10)
        .map(|i| Key::new(format!("d{i:02}")).unwrap())
        .collect();
    for k in &keys {
        direct.put(k, Bytes::from_static(b"x")).await.unwrap();
    }
    for k in &keys[..5] {
        store
            .delete(k)
            .await
            .unwrap_or_else(|e| panic!("delete {k}: {e}"));
    }
    let failed = store.delete_many(keys[5..].to_vec()).await;
    assert!(failed.is_empty(), "batch delete failed: {failed:?}");
    let c = proxy.counts();
    assert!(
        c.of(Fault::Reset) + c.of(Fault::Stall) >= 3,
        "too few faults injected: {c}"
    );
    for k in &keys {
        assert!(!direct.exists(k).await.unwrap(), "{k} still exists");
    }
}
